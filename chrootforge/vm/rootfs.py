"""The guest's root: Debian's essential packages + vm/packages.txt by mmdebstrap, as a squashfs.

mmdebstrap runs in `unshare` mode (no root needed), or in `fakechroot` mode where this host refuses
user namespaces. chrootforge's own dependencies are not Debian's (too old): the host downloads them
as a wheelhouse for the guest's Python with pip, installs them into a plain directory, and
mmdebstrap copies that in together with the stage-2 init. tar2sqfs turns the tarball into the
read-only root image, with no root either.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.vm.kernel import run_logged

SITE_DIR = "opt/chrootforge/site"  # the wheelhouse, installed
SOURCE_MOUNT = "/opt/chrootforge/src"  # where the guest mounts the host's chrootforge source
INIT_PATH = "usr/lib/chrootforge-vm/guest-init"
PTH_FILE = "usr/lib/python3/dist-packages/chrootforge-vm.pth"
# manylinux tags the guest's glibc (bookworm: 2.36) can load
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")


def pip_target_args(python: str) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def wheelhouse_argv(requirements: tuple[str, ...], dest: Path, python: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        *pip_target_args(python),
        *requirements,
    ]


def site_argv(requirements: tuple[str, ...], wheelhouse: Path, dest: Path, python: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--target",
        str(dest),
        *pip_target_args(python),
        *requirements,
    ]


def mmdebstrap_argv(
    mode: str, suite: str, packages: tuple[str, ...], staging: Path, out_tar: Path
) -> list[str]:
    """mmdebstrap in `mode` (unshare | fakechroot): essential + packages, staging synced over /."""
    argv = [
        "mmdebstrap",
        f"--mode={mode}",
        "--variant=essential",
        "--format=tar",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(packages)}",
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    argv += [f"--customize-hook=sync-in {staging} /", suite, str(out_tar)]
    return argv


def stage_guest_files(guest: Path, site: Path, staging: Path) -> None:
    """The files mmdebstrap copies into the root: the stage-2 init, the site dir, the .pth file."""
    shutil.copytree(site, staging / SITE_DIR, symlinks=True)
    init = staging / INIT_PATH
    init.parent.mkdir(parents=True)
    shutil.copyfile(guest / "guest-init", init)
    init.chmod(0o755)
    (staging / SOURCE_MOUNT.lstrip("/")).mkdir(parents=True)
    pth = staging / PTH_FILE
    pth.parent.mkdir(parents=True)
    pth.write_text(f"/{SITE_DIR}\n{SOURCE_MOUNT}\n")
    for path in [staging, *staging.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.stat().st_mode & 0o111 else 0o644)


def build_rootfs(recipe, guest: Path, work: Path, out: Path, log: Path, mode: str) -> None:
    """out/rootfs.sqfs: the guest's root image."""
    wheels, site, staging = work / "wheelhouse", work / "site", work / "staging"
    run_logged(wheelhouse_argv(recipe.requirements, wheels, recipe.python), log, what="pip download")
    run_logged(site_argv(recipe.requirements, wheels, site, recipe.python), log, what="pip install --target")
    stage_guest_files(guest, site, staging)
    tar = work / "rootfs.tar"
    run_logged(
        mmdebstrap_argv(mode, recipe.suite, recipe.packages, staging, tar),
        log,
        what=f"mmdebstrap --mode={mode}",
    )
    with open(tar, "rb") as stdin, open(log, "ab") as handle:
        try:
            proc = subprocess.run(
                ["tar2sqfs", "-q", "-f", "-c", "lz4", str(out / "rootfs.sqfs")],
                stdin=stdin,
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            )
        except FileNotFoundError as err:
            raise CfError("tar2sqfs is not installed", hint="apt-get install squashfs-tools-ng") from err
    if proc.returncode != 0:
        raise CfError(f"tar2sqfs failed (exit {proc.returncode}); log {log}")
    tar.unlink()
