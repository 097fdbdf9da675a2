"""`chrootforge import`: adopt a namespace of another image builder (kubler, for now)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "import",
        help="write a chrootforge namespace from another tool's (kubler)",
        description="Convert another image builder's namespace into a chrootforge namespace.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    k = kinds.add_parser(
        "kubler",
        help="a kubler namespace (kubler.conf, images/, builder/)",
        description="Write the chrootforge namespace NS (a new folder) from the kubler namespace DIR: "
        "chrootforge.toml, a folder per image with its image.toml and hooks, and IMPORT.md, which "
        "says what became of every line. build.conf and build.sh are run by bash in the sandbox "
        "(no network, nothing written) with recording stand-ins for kubler's helpers; static "
        "helper calls become spec keys, the rest stays in hooks. docs/import.md has the details.",
    )
    k.add_argument("source", metavar="DIR", help="the kubler namespace folder")
    k.add_argument("target", metavar="NS", help="the chrootforge namespace folder to write (must not exist)")
    k.add_argument(
        "--namespace",
        metavar="NAME",
        help="the kubler namespace's name, as its image ids use it (default: DIR's folder name, as kubler)",
    )
    k.set_defaults(func=_import_kubler)


def _import_kubler(args) -> int:
    from pathlib import Path

    from chrootforge.importers.kubler.importer import import_kubler

    command = f"chrootforge import kubler {args.source} {args.target}"
    if args.namespace:
        command += f" --namespace {args.namespace}"
    summary = import_kubler(Path(args.source), Path(args.target), args.namespace, command)
    print(
        f"wrote {summary.target}: {summary.images} images ({summary.hooks} with kubler hooks), "
        f"{summary.builders} builders; {summary.target / 'IMPORT.md'} says what became of each line"
    )
    return 0
