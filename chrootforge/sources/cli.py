"""`chrootforge fetch stage3|snapshot`: discover, download, verify and cache Gentoo sources."""

from __future__ import annotations


def _common(parser) -> None:
    parser.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="a mirror (https://, file:// or a local directory); repeatable, tried in "
        "order; default $GENTOO_MIRRORS, then https://distfiles.gentoo.org",
    )
    parser.add_argument(
        "--keyring",
        action="append",
        default=[],
        metavar="FILE",
        help="an OpenPGP public key file; its keys are trusted for this run (repeatable)",
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="source cache (default ~/.cache/chrootforge/sources)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="no network: use the newest cached file (or the cached --date)"
    )
    parser.add_argument(
        "--insecure-skip-verify",
        action="store_true",
        help="DANGEROUS: do not check signatures (the result is marked insecure)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def register(sub) -> None:
    fetch = sub.add_parser(
        "fetch",
        help="download and verify a stage3 or a portage snapshot",
        description="Download a Gentoo stage3 or portage snapshot from a mirror (or take a local "
        "file), verify its OpenPGP signature (and the stage3's DIGESTS) and keep it in the source "
        "cache; print where it is.",
    )
    kinds = fetch.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    stage = kinds.add_parser(
        "stage3",
        help="a Gentoo stage3 tarball (signature + DIGESTS verified)",
        description="Fetch and verify a stage3 of --arch and --variant: the latest release, or "
        "the one of --date.",
    )
    stage.add_argument("--arch", default="amd64", help="release arch directory (default amd64)")
    stage.add_argument("--variant", default="openrc", help="e.g. openrc, systemd, musl (default openrc)")
    stage.add_argument(
        "--date", metavar="STAMP", help="a dated release, e.g. 20240101T170000Z (default: latest)"
    )
    stage.add_argument(
        "--stage3", metavar="PATH", help="air-gapped: a local tarball with PATH.asc and PATH.DIGESTS"
    )
    _common(stage)
    stage.set_defaults(func=_fetch_stage3)
    snap = kinds.add_parser(
        "snapshot",
        help="a portage tree snapshot (signature verified)",
        description="Fetch and verify a portage tree snapshot: the latest, or the one of --date.",
    )
    snap.add_argument("--date", metavar="YYYYMMDD", help="a dated snapshot (default: latest)")
    snap.add_argument("--snapshot", metavar="PATH", help="air-gapped: a local snapshot with PATH.gpgsig")
    _common(snap)
    snap.set_defaults(func=_fetch_snapshot)


def _report(result, as_json: bool) -> int:
    import json

    if as_json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print(result.path)
    return 0


def _fetch_stage3(args) -> int:
    from chrootforge.sources import fetch

    if args.stage3:
        result = fetch.use_local_stage(args.stage3, args.keyring, args.insecure_skip_verify, args.cache_dir)
    else:
        result = fetch.fetch_stage3(
            args.arch,
            args.variant,
            args.mirror or None,
            args.date,
            args.keyring,
            args.cache_dir,
            args.insecure_skip_verify,
            args.offline,
        )
    return _report(result, args.json)


def _fetch_snapshot(args) -> int:
    from chrootforge.sources import fetch

    if args.snapshot:
        result = fetch.use_local_snapshot(
            args.snapshot, args.keyring, args.insecure_skip_verify, args.cache_dir
        )
    else:
        result = fetch.fetch_snapshot(
            args.date,
            args.mirror or None,
            args.keyring,
            args.cache_dir,
            args.insecure_skip_verify,
            args.offline,
        )
    return _report(result, args.json)
