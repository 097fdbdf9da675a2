"""The sandbox mount plan of an image build, for --plan (pure: placeholder host paths)."""

from __future__ import annotations

from pathlib import Path

from chrootforge.gentoo import repro
from chrootforge.gentoo.binhost import MOUNT
from chrootforge.gentoo.emerge import CF_MOUNT, EMERGE_ROOT
from chrootforge.gentoo.plan import ImagePlan
from chrootforge.sandbox import Bind, SandboxConfig
from chrootforge.sandbox.config import OverlayRoot
from chrootforge.sandbox.mountplan import plan_mounts
from chrootforge.spec.model import Namespace


def sandbox_config(
    *,
    root,
    network: str,
    tree: Path,
    repos: dict,
    rootfs: Path,
    cf: Path,
    distfiles: Path,
    binpkgs: Path,
    idmap=None,
    argv=None,
    env=None,
    log_file=None,
    binhost: Path | None = None,
    platform=None,
):
    """The one definition of an image build's sandbox (used by the executor and by --plan)."""

    binds = [Bind(rootfs, EMERGE_ROOT), Bind(cf, CF_MOUNT)]
    if binhost is not None:  # the build's binrepo directory (gentoo/binhost.py), file://
        binds.append(Bind(binhost, MOUNT, readonly=True))
    return SandboxConfig(
        root=root,
        argv=argv or ["/bin/sh"],
        env=env,
        network=network,
        binds=binds,
        repos={"gentoo": tree, **repos},
        portage_tmpfs_size="",
        distfiles=distfiles,
        binpkgs=binpkgs,
        idmap=idmap,
        log_file=log_file,
        hostname=repro.HOSTNAME,
        domainname=repro.DOMAINNAME,
        umask=repro.BUILD_UMASK,
        platform=platform,
    )


def describe_mounts(ns: Namespace, plan: ImagePlan) -> list[str]:
    work = Path("<work>") / plan.name
    tree = ns.tree.path or Path(f"<snapshot {ns.tree.snapshot or ns.tree.snapshot_path}>")
    config = sandbox_config(
        root=OverlayRoot([Path("<stage cache>")], work / "upper", work / "work"),
        network=ns.network,
        tree=tree,
        repos=ns.repos,
        rootfs=work / "rootfs",
        cf=work / "cf",
        distfiles=Path("<cache>/distfiles"),
        binpkgs=Path("<cache>/binpkgs/<binpkgs key>"),
        binhost=work / "binhost" if ns.binhost else None,
    )
    out: list[str] = []
    for step in plan_mounts(config):
        if step.op in ("private", "pivot", "symlink", "remount_ro"):
            if step.op == "remount_ro":
                out[-1] += " (read-only)"
            continue
        what = step.fstype if step.op == "mount" else step.source
        if step.op == "root":
            what = "overlay of the pristine stage" if step.fstype == "overlay" else step.source
        out.append(f"{step.target:<24} {step.op:<6} {what}")
    return out
