"""The thin command-line layer.

Each package owns a small `cli` module whose `register(subparsers)` adds its commands. Those modules
import nothing heavy at module level, so `chrootforge run` starts fast: the handlers import what they
need when they run. Exit codes: 0 ok, 1 build or verification failure, 2 usage or spec error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from chrootforge import __version__, log
from chrootforge.errors import CfError

# Modules providing register(subparsers); the order is the order of `chrootforge --help`.
COMMAND_MODULES = (
    "chrootforge.buildcli",
    "chrootforge.sources.cli",
    "chrootforge.sandbox.cli",
    "chrootforge.oci.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chrootforge",
        description="Build slim Gentoo-based OCI images with no daemon and no root.",
    )
    parser.add_argument("--version", action="version", version=f"chrootforge {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet:
        log.set_quiet(True)
    try:
        result = args.func(args)
    except CfError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("chrootforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
