"""`chrootforge build`: build the images of a namespace (or print the plan)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build images of a namespace into an OCI layout",
        description="Build NS/IMAGE folders (or every image of a namespace folder), "
        "parents first; unchanged images are not rebuilt.",
    )
    p.add_argument(
        "targets",
        nargs="+",
        metavar="NS/IMAGE|NS",
        help="an image folder, or a namespace folder (all its images)",
    )
    force = p.add_mutually_exclusive_group()
    force.add_argument("--force", action="store_true", help="rebuild the named images even if up to date")
    force.add_argument(
        "--force-all", action="store_true", help="rebuild the named images and their ancestors"
    )
    p.add_argument("--no-deps", action="store_true", help="do not build the parents (they must be built)")
    p.add_argument("--layout", metavar="DIR", help="the OCI layout to write (default: the namespace's)")
    p.add_argument("--network", choices=("none", "host"), help="network inside the build sandbox")
    p.add_argument(
        "--stage3", metavar="PATH", help="use this local stage3 (PATH.asc and PATH.DIGESTS beside it)"
    )
    p.add_argument(
        "--single-id",
        action="store_true",
        help="degraded mode without a subuid range (portage runs without userpriv)",
    )
    p.add_argument(
        "--plan",
        "--dry-run",
        dest="plan",
        action="store_true",
        help="print what would be done (graph, /etc/portage, mounts, emerge) and exit",
    )
    p.add_argument("--json", action="store_true", help="print the build report as JSON on stdout")
    p.add_argument(
        "--vm",
        choices=("on", "off", "auto"),
        default="auto",
        help="build in a QEMU guest with no network: on, off, or auto (default: only when "
        "this host blocks user namespaces); see vm/README.md",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        metavar="N",
        help="build up to N independent images at the same time (default 1)",
    )
    shell = p.add_mutually_exclusive_group()
    shell.add_argument(
        "--shell",
        action="store_true",
        help="ready the parents, then open a login shell in the image's build sandbox instead of building it",
    )
    shell.add_argument(
        "--shell-on-failure", action="store_true", help="open that shell when emerge or a hook fails"
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="with --shell/--shell-on-failure: keep the work dir after leaving the shell",
    )
    dist = p.add_argument_group("sharing between machines (README: CI runners)")
    dist.add_argument(
        "--push",
        action="store_true",
        help="after a successful build, push every image to [output] registry (REGISTRY/IMAGE:TAG)",
    )
    dist.add_argument(
        "--remote-cache",
        metavar="docker://HOST/REPO",
        help="pull images found there by build key instead of building them; store what is built",
    )
    dist.add_argument(
        "--binhost", metavar="URL", help="take binary packages from this binhost (overrides [build] binhost)"
    )
    from chrootforge.registry.options import add_registry_options

    add_registry_options(p)
    p.set_defaults(func=_build)
    lk = sub.add_parser(
        "lock",
        help="resolve, fetch and verify a namespace's inputs; pin them in NS/chrootforge.lock",
        description='Resolve every input of the namespace ("latest" included), fetch and '
        "verify it into the source cache, and write NS/chrootforge.lock. Builds "
        "then use exactly those inputs, offline when they are cached.",
    )
    lk.add_argument("namespace", metavar="NS")
    lk.add_argument("--update", action="store_true", help='re-resolve "latest" and rewrite an existing lock')
    lk.set_defaults(func=_lock)
    sb = sub.add_parser("sbom", help="print the SPDX SBOM attached to an image of a layout")
    sb.add_argument("ref", metavar="LAYOUT:TAG")
    sb.set_defaults(func=_sbom)


def _lock(args) -> int:
    from pathlib import Path

    from chrootforge import lockfile, log
    from chrootforge.errors import UsageError
    from chrootforge.gentoo.inputs import resolve_lock
    from chrootforge.spec.namespace import load_namespace

    ns = load_namespace(Path(args.namespace))
    old = lockfile.load(ns.root)
    if old is not None and not args.update:
        raise UsageError(
            f"{ns.root / lockfile.FILENAME} already exists",
            hint=f'`chrootforge lock {args.namespace} --update` resolves "latest" again',
        )
    new = resolve_lock(ns)
    if len(ns.platforms) > 1:  # each platform's stage3, one lock entry per arch
        import dataclasses

        more = tuple(
            resolve_lock(load_namespace(Path(args.namespace), platform)).stage3
            for platform in ns.platforms[1:]
        )
        new = dataclasses.replace(new, more_stages=more)
    path = lockfile.write(ns.root, new, ns.name)
    if old == new:
        log.info(f"{path}: unchanged")
    print(path)
    return 0


def _sbom(args) -> int:
    import sys

    from chrootforge.gentoo.sbomread import read_sbom

    sys.stdout.write(read_sbom(args.ref))
    return 0


def _build(args) -> int:
    import json
    import sys

    from chrootforge import build

    if args.plan:
        sys.stdout.write(build.plan(args.targets, args.layout, args.binhost))
        return 0
    from chrootforge.errors import UsageError

    shell = None
    if args.shell or args.shell_on_failure:
        from chrootforge.gentoo.executor import ShellRequest

        shell = ShellRequest(now=args.shell, on_failure=args.shell_on_failure, keep=args.keep)
    elif args.keep:
        raise UsageError("--keep goes with --shell or --shell-on-failure")
    from chrootforge.vm import vmbuild

    dist = _dist_options(args)
    if vmbuild.want_vm(args.vm):
        if shell is not None:
            raise UsageError(
                "--shell and --shell-on-failure need the host's terminal: not with --vm", hint="use --vm off"
            )
        if args.push or args.remote_cache or args.binhost:
            raise UsageError(
                "--push, --remote-cache and --binhost need the network: the --vm guest has none",
                hint="use --vm off",
            )
        report = vmbuild.build_in_vm(
            args.targets,
            vmbuild.VmBuildOptions(
                force=args.force,
                force_all=args.force_all,
                no_deps=args.no_deps,
                layout=args.layout,
                network=args.network,
                single_id=args.single_id,
                stage3=args.stage3,
                jobs=args.jobs,
            ),
        )
    else:
        report = build.build(
            args.targets,
            force=args.force,
            force_all=args.force_all,
            no_deps=args.no_deps,
            layout=args.layout,
            network=args.network,
            single_id=args.single_id,
            stage3=args.stage3,
            jobs=args.jobs,
            shell=shell,
            dist=dist,
        )
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(build.summary_table(report))
    for result in report.images:
        if result.error and result.status != "skipped":  # a failed build, or a failed push
            print(result.error, file=sys.stderr)
    return 0 if report.ok else 1


def _dist_options(args):
    if not (args.push or args.remote_cache or args.binhost):
        return None
    from chrootforge.builddist import DistOptions
    from chrootforge.registry.options import options_from_args

    return DistOptions(
        push=args.push, remote_cache=args.remote_cache, binhost=args.binhost, registry=options_from_args(args)
    )
