"""The registry commands: push and pull. Implementations (and requests) import lazily."""

from __future__ import annotations

from chrootforge.registry.options import add_registry_options


def register(sub) -> None:
    for name, summary, description, source, dest, func in (
        (
            "push",
            "push an image of a layout (and its SBOM) to a registry",
            "Push TAG of LAYOUT, with its referrers (the SBOM), to a registry as REPO:TAG (default "
            "TAG: latest), and print the manifest digest. Blobs the registry has are not uploaded "
            "again. docs/registry.md describes auth, TLS and failures.",
            "LAYOUT:TAG",
            "docker://HOST[:PORT]/REPO[:TAG]",
            _push,
        ),
        (
            "pull",
            "pull an image (and its SBOM) from a registry into a layout",
            "Pull an image by tag (default latest) or digest, with its referrers, into LAYOUT "
            "(created if missing) under TAG (default HOST[:PORT]/REPO:TAG; a pull by digest needs "
            "one). Every blob is checked before the tag is published. docs/registry.md describes "
            "auth, TLS and failures.",
            "docker://HOST[:PORT]/REPO(:TAG|@sha256:HEX)",
            "LAYOUT[:TAG]",
            _pull,
        ),
    ):
        p = sub.add_parser(name, help=summary, description=description)
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
        _add_signature_options(p, name)
        p.set_defaults(func=func)


def _add_signature_options(p, command: str) -> None:
    """push signs; pull enforces a containers-policy.json (docs/registry.md, Signatures)."""
    from chrootforge.registry.signing.signoptions import add_registries_d_option, add_sign_options

    if command == "push":
        add_sign_options(p)
        return
    g = p.add_argument_group("signature policy (docs/registry.md, Signatures)")
    g.add_argument(
        "--policy",
        metavar="FILE",
        help="containers-policy.json(5) to enforce (default: ~/.config/containers/policy.json if it "
        "exists, else /etc/containers/policy.json)",
    )
    add_registries_d_option(g)


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
    from chrootforge.registry.options import options_from_args
    from chrootforge.registry.signing.sign import Signing, push_signed
    from chrootforge.registry.signing.signoptions import sign_options_from_args

    _interrupt_on_sigterm()
    layout, tag = split_layout_ref(args.source)
    if not tag:
        raise UsageError(f"{args.source!r} names no tag", hint="write LAYOUT:TAG")
    signing = Signing.prepare(sign_options_from_args(args))  # keys unlocked before any upload
    result = push_signed(layout, tag, args.dest, options_from_args(args), signing)
    print(json.dumps(dataclasses.asdict(result), indent=2) if args.json else result.digest)
    return 0


def _pull(args) -> int:
    import json

    from chrootforge.imageref import parse_ref
    from chrootforge.oci.refs import split_layout_ref
    from chrootforge.registry import policy
    from chrootforge.registry.image_pull import layout_tag, pull
    from chrootforge.registry.options import options_from_args

    _interrupt_on_sigterm()
    layout, tag = split_layout_ref(args.dest)
    ref = parse_ref(args.source)
    tag = layout_tag(ref, tag)
    platform = None
    if args.platform:
        from chrootforge.platforms import parse_platform

        platform = parse_platform(args.platform, "--platform")
    options = options_from_args(args)
    # signatures are checked before anything is downloaded; the pull then takes the verified digest
    # (of the index, for a multi-platform tag: its child of `platform` is then chosen)
    admitted = policy.admit(ref, options, policy.load(args.policy), args.registries_d)
    digest = pull(admitted, layout, tag, options, platform=platform)
    if args.json:
        print(json.dumps({"reference": str(ref), "digest": digest, "layout": layout, "tag": tag}, indent=2))
    else:
        print(digest)
    return 0
