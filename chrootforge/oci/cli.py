"""The OCI commands: commit, verify, gc, inspect, export, load. Implementations import lazily."""

from __future__ import annotations


def _label(text: str) -> tuple[str, str]:
    import argparse

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not KEY=VALUE")
    return key, value


def register(sub) -> None:
    p = sub.add_parser("commit", help="write a root filesystem as an image into an OCI layout")
    p.add_argument("rootfs")
    p.add_argument("--layout", required=True, help="OCI layout directory (created if missing)")
    p.add_argument("--tag", required=True, help="NAME or NAME:TAG")
    p.add_argument("--parent", help="a tag in the same layout; ROOTFS is the child's full tree")
    p.add_argument("--compression", choices=("gzip", "zstd"), default="gzip")
    p.add_argument("--config", help="JSON file with image config fields (Env, Entrypoint, Cmd, ...)")
    p.add_argument("--label", action="append", type=_label, default=[], metavar="K=V")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _platform_option(
        p, "the image's platform: the config's os, architecture and variant (default: this machine's)"
    )
    p.set_defaults(func=_commit)

    p = sub.add_parser("verify", help="check every blob, digest, size and diff_id of a layout")
    p.add_argument("layout")
    p.set_defaults(func=_verify)

    p = sub.add_parser("gc", help="remove the blobs of a layout that no tag or referrer reaches")
    p.add_argument("layout")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_gc)

    p = sub.add_parser("inspect", help="show the tags, platforms, layers, sizes and config of a layout")
    p.add_argument("target", metavar="LAYOUT[:TAG]")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("export", help="write a tag as an oci-archive or docker-archive tar")
    p.add_argument("target", metavar="LAYOUT:TAG")
    p.add_argument("--format", choices=("oci-archive", "docker-archive"), default="oci-archive")
    p.add_argument("-o", "--output", required=True)
    p.add_argument(
        "--no-referrers",
        action="store_true",
        help="oci-archive: leave out the image's referrers (its SBOM); podman load needs this",
    )
    _platform_option(
        p,
        "of a multi-platform tag, this platform's image (docker-archive holds one image: default the "
        "only one, else this machine's; oci-archive: default the whole index)",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser("load", help="load a tag into podman or docker through their CLI")
    p.add_argument("target", metavar="LAYOUT:TAG")
    p.add_argument("--into", choices=("podman", "docker"), default="podman")
    p.add_argument(
        "--podman-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra global podman argument (repeatable), e.g. --podman-arg=--root=/x",
    )
    p.add_argument(
        "--docker-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra global docker argument (repeatable), e.g. --docker-arg=-H=unix:///s",
    )
    _platform_option(
        p, "of a multi-platform tag, this platform's image (default: the only one, else this machine's)"
    )
    p.set_defaults(func=_load)


def _platform_option(parser, help_text: str) -> None:
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help=help_text)


def _platform(args):
    if not getattr(args, "platform", None):
        return None
    from chrootforge.platforms import parse_platform

    return parse_platform(args.platform, "--platform")


def _target(text: str, need_tag: bool):
    from chrootforge.errors import UsageError
    from chrootforge.oci.refs import split_layout_ref

    layout, tag = split_layout_ref(text)
    if need_tag and not tag:
        raise UsageError(f"{text!r} names no tag", hint="write LAYOUT:TAG")
    return layout, tag


def _commit(args) -> int:
    import json

    from chrootforge import log
    from chrootforge.errors import UsageError
    from chrootforge.oci.writer import commit

    config = None
    if args.config:
        try:
            with open(args.config) as handle:
                config = json.load(handle)
        except OSError as err:
            raise UsageError(f"cannot read --config {args.config}: {err.strerror}") from None
        except ValueError as err:
            raise UsageError(f"--config {args.config} is not valid JSON: {err}") from None
        if not isinstance(config, dict):
            raise UsageError(f"--config {args.config} must hold a JSON object")
    if args.quiet:
        log.set_quiet(True)
    result = commit(
        args.rootfs,
        args.layout,
        args.tag,
        parent=args.parent,
        compression=args.compression,
        config=config,
        labels=dict(args.label) or None,
        quiet=args.quiet or log.is_quiet(),
        platform=_platform(args),
    )
    print(result.digest)
    return 0


def _verify(args) -> int:
    from chrootforge import log
    from chrootforge.oci.checker import check, raise_problems

    problems, notices = check(args.layout)
    for notice in notices:
        log.notice(notice)
    if problems:
        raise_problems(args.layout, problems)
    print(f"{args.layout}: ok")
    return 0


def _gc(args) -> int:
    import json

    from chrootforge.oci.layout import gc

    files, freed = gc(args.layout)
    if args.json:
        print(json.dumps({"layout": args.layout, "removed": files, "bytes_freed": freed}))
    else:
        print(f"{args.layout}: removed {files} unreferenced files, {freed / 1e6:.1f} MB freed")
    return 0


def _inspect(args) -> int:
    import json

    from chrootforge.oci.inspect import describe, render

    layout, tag = _target(args.target, need_tag=False)
    info = describe(layout, tag)
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0


def _export(args) -> int:
    from chrootforge.oci.archive import export

    layout, tag = _target(args.target, need_tag=True)
    export(
        layout, tag, args.format, args.output, with_referrers=not args.no_referrers, platform=_platform(args)
    )
    return 0


def _load(args) -> int:
    from chrootforge.oci.archive import load

    layout, tag = _target(args.target, need_tag=True)
    load(
        layout, tag, args.into, args.podman_arg if args.into == "podman" else args.docker_arg, _platform(args)
    )
    return 0
