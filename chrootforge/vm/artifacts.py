"""The guest artifacts (vmlinux, initramfs.cpio, rootfs.sqfs), cached by the hash of their recipe.

    $CHROOTFORGE_VM_ARTIFACTS or $XDG_CACHE_HOME/chrootforge/vm/<key>/
        vmlinux  initramfs.cpio  rootfs.sqfs  manifest.json  build.log

An entry is built in a temp dir beside it, under a lock, and renamed into place when complete: a
killed build leaves no half entry, and the next one removes its temp dir. Once built, an entry is
only read (QEMU opens the root image read-only), so one entry serves many guests at once, also of
other users when the directory is shared (the tests do that).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from chrootforge import holds, log, untrusted
from chrootforge.cache.kinds import confined, kind_root
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.sandbox.blocked import probe_userns
from chrootforge.vm import recipe as rcp
from chrootforge.vm.kernel import build_kernel
from chrootforge.vm.rootfs import build_rootfs

FILES = ("vmlinux", "initramfs.cpio", "rootfs.sqfs")


@dataclass(frozen=True)
class Artifacts:
    key: str
    dir: Path
    manifest: dict

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def initramfs(self) -> Path:
        return self.dir / "initramfs.cpio"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs.sqfs"


def cache_root() -> Path:
    explicit = os.environ.get("CHROOTFORGE_VM_ARTIFACTS")
    return Path(explicit) if explicit else kind_root("vm")


def _load(entry: Path, key: str) -> Artifacts | None:
    try:
        manifest = untrusted.read_json(entry / "manifest.json")
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key or not all((entry / name).is_file() for name in FILES):
        return None
    return Artifacts(key, entry, manifest)


def rootfs_mode() -> str:
    """mmdebstrap's mode: unshare where user namespaces work, else fakechroot."""
    return "unshare" if probe_userns() is None else "fakechroot"


def ensure(recipe: rcp.Recipe | None = None) -> Artifacts:
    """The cached artifacts of `recipe` (default: this host's), built first if missing."""
    recipe = recipe or rcp.resolve()
    key = recipe.key()
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CfError(
            f"cannot create the VM cache {root}: {err.strerror}",
            hint="set CHROOTFORGE_VM_ARTIFACTS or XDG_CACHE_HOME to a writable directory",
        ) from err
    # held for the run (holds.current()) before it is looked at: prune leaves a guest's image alone
    entry = holds.current().hold(confined(root, key, what="VM artifacts key"))
    found = _load(entry, key)
    if found:
        return found
    with file_lock(root / f".{key}.lock"):
        found = _load(entry, key)  # another process may have built it while we waited
        if found:
            return found
        for stale in root.glob(f".{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".{key}.tmp-{os.getpid()}"
        try:
            manifest = _build(recipe, tmp)
            atomic_write(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
            shutil.rmtree(tmp / "work")
            for path in [tmp, *tmp.iterdir()]:
                path.chmod(0o755 if path.is_dir() else 0o644)  # readable by other users' guests
            os.replace(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Artifacts(key, entry, manifest)


def _build(recipe: rcp.Recipe, tmp: Path) -> dict:
    guest = rcp.guest_dir()
    work = tmp / "work"
    work.mkdir(parents=True)
    build_log = tmp / "build.log"
    mode = rootfs_mode()
    log.info(
        f"vm: building the guest ({recipe.kernel_package}, {recipe.suite} root by mmdebstrap "
        f"--mode={mode}); once per recipe, log in {build_log}"
    )
    seconds = {}
    started = time.monotonic()
    build_kernel(recipe, guest, work, tmp, build_log)
    seconds["kernel"] = round(time.monotonic() - started, 1)
    log.info(f"vm: [1/2] kernel and initramfs ready ({seconds['kernel']}s)")
    started = time.monotonic()
    build_rootfs(recipe, guest, work, tmp, build_log, mode)
    seconds["rootfs"] = round(time.monotonic() - started, 1)
    log.info(f"vm: [2/2] root image ready ({seconds['rootfs']}s)")
    sizes = {name: (tmp / name).stat().st_size for name in FILES}
    return {
        "key": recipe.key(),
        "recipe": untrusted.loads_json(json.dumps(recipe.__dict__), "the vm recipe"),
        "mode": mode,
        "seconds": seconds,
        "sizes": sizes,
        "built": int(time.time()),
    }
