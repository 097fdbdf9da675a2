"""The registry commands: push and pull. Implementations (and requests) import lazily."""

from __future__ import annotations

from chrootforge.registry.options import add_registry_options


def register(sub) -> None:
    for name, summary, source, dest, func in (
        (
            "push",
            "push an image of a layout (and its SBOM) to a registry",
            "LAYOUT:TAG",
            "docker://HOST[:PORT]/REPO[:TAG]",
            _push,
        ),
        (
            "pull",
            "pull an image (and its SBOM) from a registry into a layout",
            "docker://HOST[:PORT]/REPO(:TAG|@sha256:HEX)",
            "LAYOUT[:TAG]",
            _pull,
        ),
    ):
        p = sub.add_parser(name, help=summary)
        p.add_argument("source", metavar=source)
        p.add_argument("dest", metavar=dest)
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "pull":
            p.add_argument(
                "--platform",
                metavar="OS/ARCH[/VARIANT]",
                help="only this platform's image of a multi-platform one (default: the whole "
                "OCI image index, with every image)",
            )
        add_registry_options(p)
        p.set_defaults(func=func)


def _interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so temp files are removed on the way out (exit 130)."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _push(args) -> int:
    import dataclasses
    import json

    from chrootforge.errors import UsageError
    from chrootforge.oci.refs import split_layout_ref
    from chrootforge.registry.image_push import push
    from chrootforge.registry.options import options_from_args

    _interrupt_on_sigterm()
    layout, tag = split_layout_ref(args.source)
    if not tag:
        raise UsageError(f"{args.source!r} names no tag", hint="write LAYOUT:TAG")
    result = push(layout, tag, args.dest, options_from_args(args))
    print(json.dumps(dataclasses.asdict(result), indent=2) if args.json else result.digest)
    return 0


def _pull(args) -> int:
    import json

    from chrootforge.oci.refs import split_layout_ref
    from chrootforge.registry.image_pull import layout_tag, pull
    from chrootforge.registry.options import options_from_args
    from chrootforge.registry.reference import parse_ref

    _interrupt_on_sigterm()
    layout, tag = split_layout_ref(args.dest)
    ref = parse_ref(args.source)
    tag = layout_tag(ref, tag)
    platform = None
    if args.platform:
        from chrootforge.platforms import parse_platform

        platform = parse_platform(args.platform, "--platform")
    digest = pull(ref, layout, tag, options_from_args(args), platform=platform)
    if args.json:
        print(json.dumps({"reference": str(ref), "digest": digest, "layout": layout, "tag": tag}, indent=2))
    else:
        print(digest)
    return 0
