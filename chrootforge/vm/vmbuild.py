"""`chrootforge build --vm`: the whole build inside a fresh guest, the results merged into the host.

The guest has no network device, so the build is offline by construction: every input is shared
read-only over 9p at the same path it has on the host (the namespace folder, the stage3 and its
signature files, keyrings, the tree and repos, distfiles, hooks), so the specs resolve unchanged.
The host's layout, image state and binpkgs are shared read-only too and copied onto the guest's ext4
scratch disk, where the build runs (9p cannot hold owners, xattrs or a build's I/O). vm/build-job
copies back what is new; merge.py checks it and merges it into the host layout.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from chrootforge import holds, log, untrusted
from chrootforge.build.engine import BuildReport
from chrootforge.build.flags import BuildOptions
from chrootforge.cache.kinds import entry
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import file_lock
from chrootforge.gentoo import state as st
from chrootforge.gentoo.inputs import binpkg_key, identify
from chrootforge.sandbox import blocked
from chrootforge.spec.graph import load_project, parse_targets
from chrootforge.vm import guestrun as runner
from chrootforge.vm import merge
from chrootforge.vm.emulators import guest_binfmt
from chrootforge.vm.job import Job, guest_ids, pycache_env
from chrootforge.vm.qemu import INSTALL_HINT, QEMU
from chrootforge.vm.recipe import SOURCE_ROOT, guest_dir
from chrootforge.vm.rootfs import SOURCE_MOUNT
from chrootforge.vm.shares import Share, check_input_dir, minimal_dirs

SCRATCH_BYTES = 64 << 30  # sparse: only what the build writes takes space
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PATH_VARS = ("CHROOTFORGE_GENTOO_KEYRING", "CHROOTFORGE_HOOKS")  # read by chrootforge, naming host paths
PLAIN_VARS = ("SOURCE_DATE_EPOCH",)


def want_vm(mode: str) -> bool:
    """--vm on|off|auto: auto builds in the guest only when this host refuses user namespaces."""
    if mode != "auto":
        return mode == "on"

    err = blocked.probe_userns()
    if err is None:
        return False
    cause, _remedy = blocked.diagnose(err)

    if shutil.which(QEMU) is None:
        raise CfError(
            f"cannot create a user namespace ({cause}), and QEMU for the VM fallback is missing",
            hint=INSTALL_HINT,
        )
    log.notice(f"user namespaces are blocked here ({cause}): building in a QEMU guest (--vm auto)")
    return True


def input_dirs(project, stage3: Path | None) -> list[Path]:
    """Host directories the build reads: shared read-only at the same guest paths."""
    ns = project.namespace
    files = [*ns.stage3.keyrings, *ns.tree.keyrings]
    dirs = [ns.root, *ns.repos.values()]
    stage = stage3 or ns.stage3.path
    if stage is None:
        raise UsageError(
            "--vm builds offline (the guest has no network), but [stage3] downloads from a mirror",
            hint="fetch it first (chrootforge fetch stage3) and give it as [stage3] path or --stage3",
        )
    files.append(stage)
    if ns.tree.path is not None:
        dirs.append(ns.tree.path)
    elif ns.tree.snapshot_path is not None:
        files.append(ns.tree.snapshot_path)
    else:
        raise UsageError(
            "--vm builds offline (the guest has no network), but [tree] downloads a snapshot",
            hint="fetch it first (chrootforge fetch snapshot) and give it as [tree] snapshot = PATH",
        )
    if ns.distfiles is not None:
        dirs.append(ns.distfiles)
    for image in project.images.values():
        files += [hook.path for hook in image.hooks]
    if any(image.check_binaries for image in project.images.values()):
        from chrootforge.gentoo.plan import check_binaries_script

        files.append(check_binaries_script())  # the stock check every image runs after its strip
    for name in PATH_VARS:
        if os.environ.get(name):
            files.append(Path(os.environ[name]))
    dirs += [f.parent for f in files]
    return [d for d in dirs if d.exists()]


def passed_env(project) -> list[tuple[str, str]]:
    """The variables the specs name as ${VAR} (with each platform's ${VAR_<ARCH>}), and the few
    chrootforge itself reads."""
    texts = [project.namespace.text, *(image.text for image in project.images.values())]
    names = {name for text in texts for name in _VAR.findall(text)}
    names |= {f"{name}_{p.env_suffix}" for name in names for p in project.namespace.platforms}
    names |= set(PATH_VARS) | set(PLAIN_VARS)
    return sorted((name, os.environ[name]) for name in names if name in os.environ)


def guest_args(targets: list[Path], options: BuildOptions, quiet: bool) -> list[str]:
    """The `chrootforge build` options for the guest (after --json --layout, which build-job adds;
    the guest has no network to choose, and sees the stage3 at its host path)."""
    stage3 = str(Path(options.stage3).resolve()) if options.stage3 else None
    guest = dataclasses.replace(options, layout=None, network=None, stage3=stage3)
    return [*(["-q"] if quiet else []), *guest.to_argv(), *(str(t) for t in targets)]


def build_in_vm(
    targets: list[str], options: BuildOptions, memory_mb: int = 4096, timeout: float | None = None
):
    """Build `targets` in a guest; merge the results into the host layout -> the BuildReport.
    What the run uses in the user cache (the binpkgs it shares, the guest's artifacts) is held
    until it ends."""

    with holds.session():
        return _build_in_vm(targets, options, memory_mb, timeout)


def _build_in_vm(targets: list[str], options: BuildOptions, memory_mb: int, timeout: float | None):
    folder, names = parse_targets(targets)
    project, _requested = load_project(folder, names)
    ns = project.namespace
    views = [load_project(folder, names, platform)[0] for platform in ns.platforms]
    if (options.network or ns.network) == "host":
        raise UsageError(
            "--vm: the guest has no network device, so --network host cannot work there",
            hint="build on the host for that, or provide the distfiles ([build] distfiles)",
        )
    stage3 = Path(options.stage3).resolve() if options.stage3 else None
    inputs = [check_input_dir(d) for d in minimal_dirs([d for v in views for d in input_dirs(v, stage3)])]
    emulators, binfmt = guest_binfmt(list(ns.platforms))  # the guest's root registers them
    guest_dir()
    layout = Path(options.layout).resolve() if options.layout else ns.layout
    bdir = st.build_dir(layout)
    # the binpkgs the guest reuses and adds to: the host's, keyed by content as a host build keys
    # them (gentoo.inputs.binpkg_key); images with their own package.env start empty in the guest
    binpkgs_name = binpkg_key(ns, identify(ns, stage3))
    # held until the guest's new packages are merged back (holds.current(): the run's)
    binpkgs = holds.current().hold(entry("binpkgs", binpkgs_name))
    try:
        bdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {bdir}: {err.strerror}", hint="choose a writable --layout") from err
    resolved = [Path(t).resolve() for t in targets]
    shares = [Share(SOURCE_ROOT, SOURCE_MOUNT, True), *emulators]
    shares += [Share(d, str(d), True) for d in inputs]
    with file_lock(bdir / ".build.lock"), runner.run_dir() as rd:
        out = rd / "out"
        out.mkdir()
        host_parts = {
            "layout": layout if (layout / "oci-layout").is_file() else None,
            "state": bdir / "state",
            "sbom": bdir / "sbom",
            "binpkgs": binpkgs,
        }
        shares += [
            Share(path, f"/cf/in/{name}", True)
            for name, path in host_parts.items()
            if path is not None and path.is_dir()
        ]
        shares.append(Share(out, "/cf/out", False))
        uid, gid = guest_ids(os.getuid(), os.getgid())
        env = [*pycache_env(SOURCE_ROOT), *passed_env(project), ("XDG_CACHE_HOME", "/scratch/cache")]
        argv = (
            "sh",
            f"{SOURCE_MOUNT}/vm/build-job",
            binpkgs_name,
            *guest_args(resolved, options, log.is_quiet()),
        )
        job = Job(
            argv=argv,
            uid=uid,
            gid=gid,
            as_root=os.getuid() == 0,
            cwd="/",
            env=tuple(env),
            shares=tuple(shares),
            binfmt=tuple(binfmt),
        )
        log.info(f"vm: building {' '.join(t.name for t in resolved)} in a QEMU guest (no network)")
        result = runner.run_job(
            job,
            runner.Resources(timeout=timeout, memory_mb=memory_mb, scratch_bytes=SCRATCH_BYTES),
        )
        merged = merge.merge_results(out, layout, bdir, binpkgs)
        if merged:
            log.info(f"vm: merged {len(merged)} tag(s) into {layout}")
        report_text = (out / "report.json").read_text() if (out / "report.json").is_file() else ""
    assert result.status is not None  # run_job raises for a result without one
    return _report(report_text, result.status, layout)


def _report(text: str, status: int, layout: Path):
    """The guest's build report, its layout path replaced by the host's. Exit 0 or 1 come with a
    report (1: an image failed); any other status means the build or the copy-out broke off."""
    if status in (0, 1):
        try:
            report = BuildReport.from_json(untrusted.loads_json(text, "the guest's build report"))
            report.layout = str(layout)
            return report
        except ValueError as err:
            log.warn(f"the guest's build report is unreadable: {err}")
    error = UsageError if status == 2 else CfError
    raise error(f"the build in the guest failed (exit {status}) before it could report; its error is above")
