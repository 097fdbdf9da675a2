"""The synthetic stage3 of another architecture (arm64), built without any host setup.

The same Debian rootfs and the same portage as stage.py's; only the way there differs, because the
rootfs's own programs (dpkg's maintainer scripts, its python3 for pip) must run under emulation,
and nothing may be registered on the host:

1. `mmdebstrap --variant=extract --architectures=ARCH` downloads and unpacks what `minbase` plus
   stage.PACKAGES would install (the essential set, priority required, the packages, and their
   dependencies) and keeps the .debs. No foreign program runs (`--skip=check/qemu`).
2. chrootforge's extractor unpacks that tarball under the build's id mapping.
3. In chrootforge's own sandbox with `platform=linux/ARCH` (QEMU's static emulator in the
   sandbox's binfmt_misc): `dpkg --install` the essential set, then the rest, as mmdebstrap does
   for a native root; then stage_setup.py, as a customize hook would run it, on ROOTFS=/.
4. What makes a rootfs differ between runs goes (mmdebstrap's cleanup/reproducible list, the .debs);
   tar with numeric owners in name order, mtimes clamped to SOURCE_DATE_EPOCH; zstd; signed.

The result sits beside the amd64 one in the cache: `stage-<key>/stage3-<arch>-cfworld-<key>.tar.zst`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.world.cache import HERE, SUITE, Step
from tests.world.stage import PACKAGES, StageError, _run_logged

# What mmdebstrap's cleanup/reproducible removes, and the .debs this recipe kept for step 3.
MACHINE_FILES = (
    "var/log/dpkg.log",
    "var/log/apt/history.log",
    "var/log/apt/term.log",
    "var/log/alternatives.log",
    "var/cache/ldconfig/aux-cache",
    "var/log/apt/eipp.log.xz",
    "var/lib/dbus/machine-id",
)
CONFIGURE = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8
cd /var/cache/apt/archives
# as mmdebstrap's essential step, then its install step: essential first, everything else after
dpkg --install --force-depends $(cat /cf/in/essential)
dpkg --install --force-depends --skip-same-version *.deb
dpkg --configure --pending
dpkg --audit
python3 /cf/setup/stage_setup.py / /cf/wheel/"$CF_WHEEL" "$CF_REPO" "$CF_PROFILE" "$CF_CHOST"
"""


def mmdebstrap_argv(arch: str, out: Path) -> list[str]:
    return [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=extract",
        f"--architectures={arch}",
        "--skip=check/qemu",
        "--skip=cleanup/apt/cache",
        "--include=?essential",
        "--include=?priority(required)",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(out),
    ]


def essential_debs(archives: Path) -> list[str]:
    """The .debs of Essential:yes packages (read on the host: dpkg-deb -f is arch-independent)."""
    names = []
    for deb in sorted(archives.glob("*.deb")):
        proc = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Essential"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise StageError(f"dpkg-deb -f {deb.name} failed: {proc.stderr.strip()}")
        if proc.stdout.strip().lower() == "yes":
            names.append(deb.name)
    return names


def build(
    dest: Path,
    arch: str,
    wheel: Path,
    repo_name: str,
    profile: str,
    chost: str,
    tarball: Path,
    step: Step,
) -> None:
    from chrootforge.platforms import parse_platform
    from chrootforge.sandbox import (
        Bind,
        SandboxConfig,
        detect_idmap,
        owned_dir,
        remove_tree,
        run_mapped,
        run_sandboxed,
    )
    from chrootforge.sources.extract import extract

    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
    dest.chmod(0o711)  # (a private temp dir) as root, the sandbox's range must pass through it
    work = dest / ".work"
    work.mkdir()
    idmap = detect_idmap()
    owned_dir(work, idmap)  # the namespace's root extracts and packs there (as root: a range)
    try:
        raw = work / "extract.tar"
        _run_logged(mmdebstrap_argv(arch, raw), step, env)
        step("extracting under the build's id mapping")
        root = work / "root"
        extract(raw, root, idmap)
        raw.unlink()
        archives = root / "var/cache/apt/archives"
        cf = work / "cf"
        cf.mkdir()
        (cf / "essential").write_text(" ".join(essential_debs(archives)) + "\n")
        step(f"configuring the {arch} rootfs under emulation (dpkg, then portage): minutes")
        log = dest / f"configure-{arch}.log"
        config = SandboxConfig(
            root,
            ["/bin/sh", "-c", CONFIGURE],
            env={
                "SOURCE_DATE_EPOCH": env["SOURCE_DATE_EPOCH"],
                "CF_WHEEL": wheel.name,
                "CF_REPO": repo_name,
                "CF_PROFILE": profile,
                "CF_CHOST": chost,
            },
            binds=[
                Bind(cf, "/cf/in", readonly=True),
                Bind(HERE, "/cf/setup", readonly=True),
                Bind(wheel.parent, "/cf/wheel", readonly=True),
            ],
            idmap=idmap,
            platform=parse_platform(f"linux/{arch}"),
            log_file=log,
        )
        code = run_sandboxed(config)
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise StageError(f"configuring the {arch} rootfs failed ({code}):\n" + "\n".join(tail))
        log.unlink()
        step("cleaning and packing")
        packed = work / "stage.tar"
        script = (
            f"set -e; rm -rf -- {' '.join(_q(root / p) for p in MACHINE_FILES)} {_q(archives)}/*.deb; "
            f"if [ -e {_q(root / 'etc/machine-id')} ]; then : > {_q(root / 'etc/machine-id')}; fi; "
            f"tar --create --file {_q(packed)} --directory {_q(root)} --sort=name "
            f"--numeric-owner --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "
            f"--mtime=@{env['SOURCE_DATE_EPOCH']} --clamp-mtime --xattrs --xattrs-include=security.capability ."
        )
        code = run_mapped(["/bin/sh", "-c", script], idmap=idmap)
        if code != 0:
            raise StageError(f"packing the {arch} rootfs failed ({code})")
        proc = subprocess.run(
            ["zstd", "-q", "-T1", "-o", str(tarball), str(packed)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StageError(f"zstd failed: {proc.stderr.strip()}")
    finally:
        if work.exists():
            remove_tree(work, idmap)
            shutil.rmtree(work, ignore_errors=True)


def _q(path) -> str:
    import shlex

    return shlex.quote(str(path))
