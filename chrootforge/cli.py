"""The thin command-line layer.

Each package owns a small `cli` module whose `register(subparsers)` adds its commands. Those modules
import nothing heavy at module level, so `chrootforge run` starts fast: the handlers import what they
need when they run. A module may also parse the words of some commands itself (it names them in
OWN_WORDS and provides handle_words(command, words)): `run` and `shell` do, so that they never import
argparse. Exit codes: 0 ok, 1 build or verification failure, 2 usage or spec error.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

from chrootforge import __version__, envvars, log
from chrootforge.errors import CfError, UsageError

# Modules providing register(subparsers); the order is the order of `chrootforge --help`.
COMMAND_MODULES = (
    "chrootforge.build.cli",
    "chrootforge.sources.cli",
    "chrootforge.sandbox.cli",
    "chrootforge.oci.cli",
    "chrootforge.registry.cli",
    "chrootforge.spec.cli",
    "chrootforge.vm.cli",
    "chrootforge.cache.cli",
    "chrootforge.importers.cli",
)

# Which module registers which command. When argv names a known command, only its module is
# imported: `chrootforge run` then starts without loading the others (tests check this table).
COMMAND_OWNERS = {
    "build": "chrootforge.build.cli",
    "sbom": "chrootforge.build.cli",
    "provenance": "chrootforge.build.cli",
    "lock": "chrootforge.build.cli",
    "fetch": "chrootforge.sources.cli",
    "run": "chrootforge.sandbox.cli",
    "shell": "chrootforge.sandbox.cli",
    "commit": "chrootforge.oci.cli",
    "verify": "chrootforge.oci.cli",
    "gc": "chrootforge.oci.cli",
    "inspect": "chrootforge.oci.cli",
    "export": "chrootforge.oci.cli",
    "load": "chrootforge.oci.cli",
    "push": "chrootforge.registry.cli",
    "pull": "chrootforge.registry.cli",
    "new": "chrootforge.spec.cli",
    "vm": "chrootforge.vm.cli",
    "cache": "chrootforge.cache.cli",
    "import": "chrootforge.importers.cli",
}


def _first_positional(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if arg == "--":
            return None
    return None


# What may precede a command that parses its own words without argparse having to look at them.
PLAIN_GLOBALS = ("-q", "--quiet", "--debug")


def build_parser(argv: list[str] | None = None):
    """The full parser, or only the named command's when argv names a known one."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="chrootforge",
        description="Build slim Gentoo-based OCI images with no daemon and no root.",
    )
    parser.add_argument("--version", action="version", version=f"chrootforge {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error (also CHROOTFORGE_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    owner = COMMAND_OWNERS.get(_first_positional(argv or []) or "")
    for name in (owner,) if owner else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
    debug = debug or bool(os.environ.get("CHROOTFORGE_DEBUG"))
    try:
        envvars.warn_misspelled(os.environ)
        result = _dispatch(argv)
    except CfError as err:
        _traceback(debug)
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("chrootforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as err:  # ENOSPC, EIO, EACCES on a file we were not expecting trouble with
        _traceback(debug)
        where = f"{err.filename}: " if err.filename else ""
        print(f"chrootforge: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence: never a bare traceback
        _traceback(debug)
        print(
            f"chrootforge: internal error: {type(err).__name__}: {err}"
            + ("" if debug else " (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 1
    return int(result or 0)


def _dispatch(argv: list[str]) -> int:
    command = _first_positional(argv)
    owner = COMMAND_OWNERS.get(command or "")
    module = importlib.import_module(owner) if owner else None
    if module is not None and command is not None and command in getattr(module, "OWN_WORDS", ()):
        at = argv.index(command)
        globals_ = argv[:at]
        if all(arg in PLAIN_GLOBALS for arg in globals_):
            quiet = "-q" in globals_ or "--quiet" in globals_
        else:  # --version, -h, -qq, abbreviations, mistakes: argparse's, up to the command name
            quiet = build_parser(argv[: at + 1]).parse_args(argv[: at + 1]).quiet
        if quiet:
            log.set_quiet(True)
        return module.handle_words(command, argv[at + 1 :])
    _refuse_empty(argv)
    args = build_parser(argv).parse_args(argv)
    if args.quiet:
        log.set_quiet(True)
    return args.func(args)


def _refuse_empty(argv: list[str]) -> None:
    """No argument of a command (before `--`) is ever empty: an empty `--parent "$P"` or LAYOUT
    would otherwise mean the default, or the current directory, without a word."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    for at, word in enumerate(words):
        name, eq, value = word.partition("=")
        if word == "" or (word.startswith("--") and eq and not value):
            option = name if eq else (words[at - 1] if at and words[at - 1].startswith("-") else "")
            what = f"argument {option}" if option else "an argument"
            raise UsageError(f"{what} is empty", hint="give a value, or leave the option out")


def _traceback(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


def _skip_charset_detection(command: str | None) -> None:
    """requests imports chardet or charset_normalizer as it loads, only to guess the encoding of
    `Response.text`. chrootforge reads every answer as bytes (JSON through untrusted.loads_json),
    so its own process loads neither: 5-20 ms off the start of every command that talks HTTP
    (push, pull, build). requests warns that it found none, and would decode `.text` as UTF-8.
    Only here, in the CLI's process: a program that imports chrootforge keeps its modules."""
    for name in ("chardet", "charset_normalizer"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "import fails"
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")


def entry() -> None:
    """The console script and `python -m chrootforge`."""
    argv = sys.argv[1:]
    _skip_charset_detection(_first_positional(argv))
    code = main(argv)
    if _first_positional(argv) in ("run", "shell", "push", "pull"):
        # The sandbox has exited (or the transfer is done, its files closed and renamed) and nothing
        # is left to do: skip the interpreter's teardown, which costs a fair share of a short run.
        # Nothing on these paths registers atexit work.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
