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
    p.add_argument(
        "--layout",
        metavar="DIR",
        help="the OCI layout to write (default: the namespace's [output] layout, out/layout)",
    )
    p.add_argument(
        "--network",
        choices=("none", "host"),
        help="network inside the build sandbox (default: the namespace's [build] network, none)",
    )
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
    p.add_argument(
        "--json",
        action="store_true",
        help="print the build report as JSON on stdout (with --plan: the image graph, for CI)",
    )
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
        help="build up to N independent images at the same time (default 1); how many packages "
        "each image's emerge builds at once is [build] jobs in chrootforge.toml",
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
    dist.add_argument(
        "--policy",
        metavar="FILE",
        help="containers-policy.json(5) that remote cache entries must satisfy (default: "
        "~/.config/containers/policy.json, else /etc/containers/policy.json)",
    )
    from chrootforge.registry.options import add_registry_options
    from chrootforge.registry.signing.signoptions import add_sign_options

    add_registry_options(p)
    add_sign_options(p)
    p.set_defaults(func=_build)
    lk = sub.add_parser(
        "lock",
        help="resolve, fetch and verify a namespace's inputs; pin them in NS/chrootforge.lock",
        description='Resolve every input of the namespace ("latest" included), fetch and '
        "verify it into the source cache, and write NS/chrootforge.lock. Builds "
        "then use exactly those inputs, offline when they are cached. Run again, it keeps "
        'the releases an existing lock took for "latest" (it re-pins only what the spec changed) '
        "and says when nothing changed; --update takes the new latest.",
    )
    lk.add_argument("namespace", metavar="NS")
    lk.add_argument(
        "--update",
        action="store_true",
        help='resolve "latest" again (and replace a lock that cannot be read)',
    )
    lk.set_defaults(func=_lock)
    sb = sub.add_parser(
        "sbom",
        help="print the SPDX SBOM attached to an image of a layout",
        description="Print the SPDX 2.3 JSON SBOM that build attached to TAG of LAYOUT (as an OCI "
        "referrer) on stdout.",
    )
    sb.add_argument("ref", metavar="LAYOUT:TAG")
    sb.set_defaults(func=_sbom)
    pv = sub.add_parser(
        "provenance",
        help="print the in-toto/SLSA provenance attached to an image of a layout",
        description="Print the in-toto Statement (SLSA provenance v1) that build attached to TAG of "
        "LAYOUT on stdout; --envelope prints its signed DSSE envelope instead (docs/pipeline.md, "
        "Provenance).",
    )
    pv.add_argument("ref", metavar="LAYOUT:TAG")
    pv.add_argument("--envelope", action="store_true", help="the DSSE envelope a signing build attached")
    pv.set_defaults(func=_provenance)


def _lock(args) -> int:
    from pathlib import Path

    from chrootforge import lockfile, log
    from chrootforge.errors import UsageError
    from chrootforge.gentoo.inputs import resolve_lock
    from chrootforge.spec.namespace import load_namespace

    ns = load_namespace(Path(args.namespace))
    try:
        old = lockfile.load(ns.root)
    except UsageError as err:
        if not args.update:
            raise
        log.notice(f"replacing a lock file that cannot be read: {err}")
        old = None
    keep = None if args.update else old
    new = resolve_lock(ns, keep=keep)
    if len(ns.platforms) > 1:  # each platform's stage3, one lock entry per arch
        import dataclasses

        more = tuple(
            resolve_lock(load_namespace(Path(args.namespace), platform), keep=keep).stage3
            for platform in ns.platforms[1:]
        )
        new = dataclasses.replace(new, more_stages=more)
    path = ns.root / lockfile.FILENAME
    if old == new:  # an unchanged lock is left as it is: a second run is a no-op (exit 0)
        log.info(f"{path}: unchanged")
    else:
        lockfile.write(ns.root, new, ns.name)
        for change in lockfile.changes(old, new):
            log.info(f"{path}: {change}")
    print(path)
    return 0


def _sbom(args) -> int:
    import sys

    from chrootforge.gentoo.sbomread import read_sbom

    sys.stdout.write(read_sbom(args.ref))
    return 0


def _provenance(args) -> int:
    import json
    import sys

    from chrootforge.errors import CfError, UsageError
    from chrootforge.gentoo import provenance
    from chrootforge.oci.refs import split_layout_ref

    layout, tag = split_layout_ref(args.ref)
    if not tag:
        raise UsageError(f"{args.ref}: give LAYOUT:TAG", hint="e.g. out/layout:localhost/ns/hello:latest")
    kind = provenance.ENVELOPE_TYPE if args.envelope else provenance.MEDIA_TYPE
    data = provenance.read(layout, tag, kind)
    if data is None:
        what = "signed provenance (DSSE envelope)" if args.envelope else "provenance"
        raise CfError(
            f"{tag}: no {what} is attached to this image",
            hint="images built by chrootforge build have one; a build pushing with a signing key signs it",
        )
    from chrootforge import untrusted

    doc = untrusted.loads_json(data, f"the provenance attached to {tag}")
    sys.stdout.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return 0


def _build(args) -> int:
    import json
    import sys

    from chrootforge.build import engine as build
    from chrootforge.build.flags import BuildOptions

    shell, dist = _checked(args)
    if args.plan:
        if args.json:  # the stable graph for CI (docs/pipeline.md, "The build graph for CI")
            from chrootforge.build import plangraph as buildplan

            graph = buildplan.graph(
                args.targets, args.layout, dist=dist, shell=shell, network=args.network, stage3=args.stage3
            )
            sys.stdout.write(buildplan.render(graph))
            return 0
        sys.stdout.write(build.plan(args.targets, args.layout, dist=dist, shell=shell, network=args.network))
        return 0
    from chrootforge.errors import UsageError
    from chrootforge.vm import vmbuild

    if vmbuild.want_vm(args.vm):
        if shell is not None or dist is not None:
            raise UsageError(
                "this host builds in a QEMU guest (--vm auto), which has no terminal and no network: "
                "not with --shell, --shell-on-failure, --push, --remote-cache or --binhost",
                hint="use --vm off where user namespaces work",
            )
        report = vmbuild.build_in_vm(args.targets, BuildOptions.from_args(args))
    else:
        report = build.build(args.targets, BuildOptions.from_args(args), shell=shell, dist=dist)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(build.summary_table(report))
    for result in report.images:
        if result.error and result.status != "skipped":  # a failed build, or a failed push
            print(result.error, file=sys.stderr)
    return 0 if report.ok else 1


def _checked(args):
    """Every check of the arguments, the same for --plan and a build -> (shell, dist options).
    (What needs the namespace, build.prepare checks, for both as well.)"""
    from pathlib import Path

    from chrootforge.build.engine import check_jobs
    from chrootforge.errors import UsageError
    from chrootforge.registry.options import options_from_args

    check_jobs(args.jobs)
    registry = options_from_args(args)  # --timeout, --retry-times, --creds: checked even when unused
    if args.stage3 and not Path(args.stage3).is_file():
        raise UsageError(f"--stage3 {args.stage3}: no such file", hint="give a stage3 tarball")
    shell = None
    if args.shell or args.shell_on_failure:
        from chrootforge.gentoo.executor import ShellRequest

        shell = ShellRequest(now=args.shell, on_failure=args.shell_on_failure, keep=args.keep)
    elif args.keep:
        raise UsageError("--keep goes with --shell or --shell-on-failure")
    dist = _dist_options(args, registry)
    if args.vm == "on" and (shell is not None or dist is not None):
        raise UsageError(
            "--vm on builds in a QEMU guest, which has no terminal and no network: not with "
            "--shell, --shell-on-failure, --push, --remote-cache or --binhost",
            hint="use --vm off",
        )
    return shell, dist


def _dist_options(args, registry):
    from chrootforge.registry.signing.signoptions import sign_options_from_args

    signing = sign_options_from_args(args)
    if not (args.push or args.remote_cache or args.binhost or signing.enabled):
        return None
    from chrootforge.build.distribution import DistOptions

    return DistOptions(
        push=args.push,
        remote_cache=args.remote_cache,
        binhost=args.binhost,
        registry=registry,
        signing=signing,
        policy=args.policy,
    )
