"""The OCI commands: commit, verify, gc, inspect, export, load. Implementations import lazily."""

from __future__ import annotations

CONFIG_MAX = 4 << 20  # a --config file (what a config blob may be)


def _label(text: str) -> tuple[str, str]:
    import argparse

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not KEY=VALUE")
    return key, value


def register(sub) -> None:
    p = sub.add_parser(
        "commit",
        help="write a root filesystem as an image into an OCI layout",
        description="Write the directory ROOTFS as a new image TAG of the OCI layout --layout: one "
        "layer, its config and manifest, published atomically. With --parent, ROOTFS is the "
        "child's full tree and only what differs from the parent becomes the new layer. Times: "
        "SOURCE_DATE_EPOCH when set, else the parent's `created`, else 0 (1970), so the same tree "
        "gives the same digest. The parent's runtime config is inherited; its name, title and "
        "build-key labels are not. A multi-platform parent gives its image of --platform.",
    )
    p.add_argument("rootfs", metavar="ROOTFS", help="the image's root directory")
    p.add_argument("--layout", required=True, metavar="DIR", help="OCI layout directory (created if missing)")
    p.add_argument(
        "--tag", required=True, help="NAME or NAME:TAG (NAME alone means NAME:latest to other tools)"
    )
    p.add_argument(
        "--parent", metavar="TAG", help="a tag in the same layout; ROOTFS is the child's full tree"
    )
    p.add_argument(
        "--compression", choices=("gzip", "zstd"), default="gzip", help="layer compression (default gzip)"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="JSON object of image config fields, in the image-spec's formats: Env, Entrypoint, Cmd, "
        "WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal",
    )
    p.add_argument(
        "--label", action="append", type=_label, default=[], metavar="K=V", help="a label (repeatable)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument(
        "--single-id",
        action="store_true",
        help="ROOTFS was written in single-id mode (run/shell --single-id, umoci unpack --rootless): "
        "its files belong to id 0 of that mode, and the owners recorded in user.rootlesscontainers "
        "xattrs are the image's",
    )
    _platform_option(
        p, "the image's platform: the config's os, architecture and variant (default: this machine's)"
    )
    p.set_defaults(func=_commit)

    p = sub.add_parser(
        "verify",
        help="check every blob, digest, size and diff_id of a layout",
        description="Check a whole OCI layout: every reference resolves, every document has the "
        "right shape, every blob matches its digest and size, every diff_id matches its layer, and "
        "every layer would unpack inside the root. Exit 1 with one line per problem; blobs that "
        "nothing references are only a notice (gc removes them).",
    )
    p.add_argument("layout", metavar="LAYOUT")
    p.set_defaults(func=_verify)

    p = sub.add_parser(
        "gc",
        help="remove the blobs of a layout that no tag or referrer reaches",
        description="Remove the blobs of LAYOUT that no tag or referrer reaches, and the temp files "
        "of commits that died, under the layout lock (never a blob a concurrent commit is "
        "publishing). --dry-run lists them and their sizes and removes nothing.",
    )
    p.add_argument("layout", metavar="LAYOUT")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_gc)

    p = sub.add_parser(
        "inspect",
        help="show the tags, platforms, layers, sizes and config of a layout",
        description="Show every tag of LAYOUT, or only TAG: its manifest digest, layers and sizes, "
        "config and referrers; a multi-platform tag shows its index and each platform's image. TAG "
        "may be a short name (hello, hello:1) that matches one tag.",
    )
    p.add_argument("target", metavar="LAYOUT[:TAG]")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=_inspect)

    p = sub.add_parser(
        "export",
        help="write a tag as an oci-archive (the default) or docker-archive tar",
        description="Write TAG of LAYOUT as a tar that podman load, skopeo (oci-archive:FILE), "
        "containerd and docker load read. oci-archive, the default, carries the image's referrers "
        "(its SBOM) inside an image index, so that the archive holds one image; docker-archive "
        "adds Docker's manifest.json and never carries referrers. -o FILE must be a new or a "
        "regular file (never a device, FIFO, socket, directory or symlink); -o - writes to stdout.",
    )
    p.add_argument("target", metavar="LAYOUT:TAG")
    p.add_argument(
        "--format",
        choices=("oci-archive", "docker-archive"),
        default="oci-archive",
        help="archive format (default oci-archive)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the archive to write; - for stdout")
    p.add_argument(
        "--no-referrers",
        action="store_true",
        help="oci-archive: leave out the image's referrers (its SBOM); the archive's tag then names "
        "the image manifest itself",
    )
    _platform_option(
        p,
        "of a multi-platform tag, this platform's image (docker-archive holds one image: default the "
        "only one, else this machine's; oci-archive: default the whole index)",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "load",
        help="load a tag into podman or docker through their CLI",
        description="Export TAG of LAYOUT (oci-archive for podman, docker-archive for docker, "
        "without referrers) to a temp file and run `podman load` or `docker load` on it.",
    )
    p.add_argument("target", metavar="LAYOUT:TAG")
    p.add_argument(
        "--into", choices=("podman", "docker"), default="podman", help="the consumer (default podman)"
    )
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
    from chrootforge import log, untrusted
    from chrootforge.errors import UsageError
    from chrootforge.oci.imageconfig import normalise
    from chrootforge.oci.mapped_io import CommitRequest, commit_request

    config = None
    if args.config:
        where = f"--config {args.config}"
        from chrootforge.fsutil import read_input

        try:
            data = read_input(args.config, CONFIG_MAX)  # a pipe is fine: <(...)
        except OSError as err:
            raise UsageError(f"cannot read {where}: {err.strerror}") from err
        try:
            config = untrusted.loads_json(data, where)
        except untrusted.BadDocument as err:
            raise UsageError(str(err)) from err
        if not isinstance(config, dict):
            raise UsageError(f"{where} must hold a JSON object")
        config = normalise(config, where)
    if args.quiet:
        log.set_quiet(True)
    request = CommitRequest(
        (args.tag,),
        parent=args.parent,
        compression=args.compression,
        config=config,
        labels=dict(args.label) or None,
        quiet=args.quiet or log.is_quiet(),
        platform=_platform(args),
    )
    if args.single_id:
        from chrootforge.oci.mapped_io import commit_as
        from chrootforge.sandbox.idmap import detect_idmap

        result = commit_as(detect_idmap(single_id=True), args.rootfs, args.layout, request)
    else:
        result = commit_request(args.rootfs, args.layout, request)
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

    from chrootforge.cache.cli import human
    from chrootforge.oci.layout import gc

    removed = gc(args.layout, dry_run=args.dry_run)
    freed = sum(size for _, size in removed)
    files = [(str(path.relative_to(args.layout)), size) for path, size in removed]
    if args.json:
        rows = [{"path": path, "bytes": size} for path, size in files]
        print(
            json.dumps(
                {
                    "layout": args.layout,
                    "dry_run": args.dry_run,
                    "removed": len(files),
                    "bytes_freed": freed,
                    "files": rows,
                }
            )
        )
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for path, size in files:
        print(f"{verb} {path} ({human(size)})")
    print(f"{args.layout}: {verb} {len(files)} unreferenced files, {human(freed)}")
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
