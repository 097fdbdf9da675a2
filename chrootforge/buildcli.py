"""`chrootforge build`: build the images of a namespace (or print the plan)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("build", help="build images of a namespace into an OCI layout",
                       description="Build NS/IMAGE folders (or every image of a namespace folder), "
                                   "parents first; unchanged images are not rebuilt.")
    p.add_argument("targets", nargs="+", metavar="NS/IMAGE|NS",
                   help="an image folder, or a namespace folder (all its images)")
    force = p.add_mutually_exclusive_group()
    force.add_argument("--force", action="store_true", help="rebuild the named images even if up to date")
    force.add_argument("--force-all", action="store_true", help="rebuild the named images and their ancestors")
    p.add_argument("--no-deps", action="store_true", help="do not build the parents (they must be built)")
    p.add_argument("--layout", metavar="DIR", help="the OCI layout to write (default: the namespace's)")
    p.add_argument("--network", choices=("none", "host"), help="network inside the build sandbox")
    p.add_argument("--stage3", metavar="PATH", help="use this local stage3 (PATH.asc and PATH.DIGESTS beside it)")
    p.add_argument("--single-id", action="store_true",
                   help="degraded mode without a subuid range (portage runs without userpriv)")
    p.add_argument("--plan", "--dry-run", dest="plan", action="store_true",
                   help="print what would be done (graph, /etc/portage, mounts, emerge) and exit")
    p.add_argument("--json", action="store_true", help="print the build report as JSON on stdout")
    p.add_argument("--vm", choices=("on", "off", "auto"), default="auto",
                   help="build in a QEMU guest with no network: on, off, or auto (default: only when "
                        "this host blocks user namespaces); see vm/README.md")
    p.set_defaults(func=_build)
    sb = sub.add_parser("sbom", help="print the SPDX SBOM attached to an image of a layout")
    sb.add_argument("ref", metavar="LAYOUT:TAG")
    sb.set_defaults(func=_sbom)


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
        sys.stdout.write(build.plan(args.targets, args.layout))
        return 0
    from chrootforge.vm import vmbuild

    if vmbuild.want_vm(args.vm):
        report = vmbuild.build_in_vm(args.targets, vmbuild.VmBuildOptions(
            force=args.force, force_all=args.force_all, no_deps=args.no_deps, layout=args.layout,
            network=args.network, single_id=args.single_id, stage3=args.stage3))
    else:
        report = build.build(args.targets, force=args.force, force_all=args.force_all, no_deps=args.no_deps,
                             layout=args.layout, network=args.network, single_id=args.single_id,
                             stage3=args.stage3)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(build.summary_table(report))
    for result in report.images:
        if result.status == "failed":
            print(result.error, file=sys.stderr)
    return 0 if report.ok else 1
