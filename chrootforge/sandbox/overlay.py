"""Can a user namespace mount overlayfs (userxattr) with its upper/work dirs on a given filesystem?

    overlay_supported(workdir, idmap=None) -> bool

The answer depends on the kernel and on workdir's filesystem, so it is probed once per device and
remembered for the process: a tiny overlay is mounted and unmounted inside a mapped user namespace
(sandbox.call_mapped).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from chrootforge.errors import CfError

_known: dict[int, bool] = {}


def overlay_supported(workdir: Path, idmap=None) -> bool:
    """`workdir` must be writable by the namespace's root (sandbox.owned_dir)."""
    dev = Path(workdir).stat().st_dev
    if dev not in _known:
        from chrootforge.sandbox.mapped import call_mapped

        try:
            _known[dev] = call_mapped(idmap, _probe, os.fspath(workdir))
        except (CfError, OSError):
            _known[dev] = False
    return _known[dev]


def _probe(workdir: str) -> bool:
    """In the namespace: does a userxattr overlay mount on workdir's filesystem?"""
    from chrootforge.sandbox import syscalls
    from chrootforge.sandbox.mountplan import OVERLAY_OPTIONS

    base = tempfile.mkdtemp(prefix=".ovl-probe-", dir=workdir)
    try:
        for name in ("lower", "upper", "work", "mnt"):
            os.mkdir(os.path.join(base, name))
        options = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work,{OVERLAY_OPTIONS}"
        try:
            syscalls.mount("overlay", f"{base}/mnt", "overlay", 0, options)
        except OSError:
            return False
        syscalls.umount2(f"{base}/mnt", syscalls.MNT_DETACH)
        return True
    finally:
        shutil.rmtree(base, ignore_errors=True)
