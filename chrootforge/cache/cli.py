"""`chrootforge cache ls|prune`: what the user cache holds, and removing what is old and unused."""

from __future__ import annotations


def register(sub) -> None:
    cache = sub.add_parser(
        "cache",
        help="show or prune the user cache (stages, trees, downloads, ...)",
        description="The user cache is $XDG_CACHE_HOME/chrootforge (~/.cache/chrootforge).",
    )
    verbs = cache.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser(
        "ls",
        help="the size of each kind of cache entry",
        description="Show how many entries of each kind the user cache holds and their size.",
    )
    ls.add_argument("--json", action="store_true", help="print the sizes as JSON")
    ls.set_defaults(func=_ls)
    prune = verbs.add_parser(
        "prune",
        help="remove entries not used recently (never one a running build holds)",
        description="Remove cache entries whose last use is older than --older-than (default 30d) "
        "and, with --keep N, that are not among the N most recently used of their kind. "
        "Entries a running build holds are skipped.",
    )
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        help="last used longer ago than AGE: 45s, 90m, 12h, 30d, 2w (default 30d; 0: any age)",
    )
    prune.add_argument(
        "--keep", type=int, metavar="N", help="keep the N most recently used entries of each kind"
    )
    prune.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="only this kind (repeatable): sources, stages, trees, distfiles, binpkgs, vm",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    prune.add_argument("--json", action="store_true", help="print the result as JSON")
    prune.set_defaults(func=_prune)


def human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _ls(args) -> int:
    import json

    from chrootforge.cache.kinds import cache_home, usage

    rows, other = usage()
    total = sum(r.size for r in rows) + other
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(cache_home()),
                    "total_bytes": total,
                    "other_bytes": other,
                    "kinds": [
                        {"kind": r.kind, "path": str(r.path), "entries": r.entries, "bytes": r.size}
                        for r in rows
                    ],
                },
                indent=1,
            )
        )
        return 0
    table = [("KIND", "ENTRIES", "SIZE", "PATH")]
    table += [(r.kind, str(r.entries), human(r.size), str(r.path)) for r in rows]
    table += [
        ("other", "", human(other), "(digest memos, locks)"),
        ("total", "", human(total), str(cache_home())),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    return 0


def _prune(args) -> int:
    import json

    from chrootforge import log
    from chrootforge.cache.kinds import BY_NAME
    from chrootforge.cache.prune import Policy, parse_age, prune
    from chrootforge.errors import UsageError

    for kind in args.kind or ():
        if kind not in BY_NAME:
            raise UsageError(f"unknown cache kind {kind!r}", hint="one of: " + ", ".join(BY_NAME))
    older = parse_age(args.older_than) if args.older_than is not None else None
    if older is None and args.keep is None:
        older = parse_age("30d")
    result = prune(Policy(older_than=older, keep=args.keep), args.kind, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        verb = "would remove" if args.dry_run else "removed"
        for entry in result.removed:
            why = ", left by an interrupted run" if entry.stale else ""
            log.info(f"{verb} {entry.name} ({human(entry.size)}{why})")
        for entry in result.held:
            log.info(f"kept {entry.name}: in use by a running build")
        for entry, why in result.failed:
            log.warn(f"could not remove {entry.name}: {why}")
        freed = "would free" if args.dry_run else "freed"
        print(
            f"{freed} {human(result.freed)} in {len(result.removed)} entries"
            + (f"; {len(result.held)} in use kept" if result.held else "")
        )
    return 1 if result.failed else 0
