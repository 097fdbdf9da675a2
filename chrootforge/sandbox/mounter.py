"""Apply a mount plan (runs as PID 1 of the sandbox, inside its user and mount namespaces)."""

from __future__ import annotations

import errno
import os

from chrootforge.errors import CfError
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.mountplan import MountStep
from chrootforge.sandbox.rootpath import ensure_target

NET_COPIES = "/run/.chrootforge-net"

# statvfs f_flag bits -> the mount flags a read-only remount must repeat (the kernel refuses to
# drop flags it locked on mounts inherited from a more privileged namespace).
_KEEP_FLAGS = ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV),
               (os.ST_NOEXEC, sc.MS_NOEXEC), (os.ST_NOATIME, sc.MS_NOATIME),
               (os.ST_NODIRATIME, sc.MS_NODIRATIME), (os.ST_RELATIME, sc.MS_RELATIME))


def locked_flags(path: str) -> int:
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _KEEP_FLAGS if f_flag & st)


def apply_plan(steps: list[MountStep], notices: list[str]) -> None:
    """Apply `steps`; fallbacks taken are appended to `notices` for the parent to print."""
    root = None
    for step in steps:
        try:
            root = _apply(step, root, notices)
        except OSError as err:
            where = step.target or step.host or "/"
            raise CfError(f"sandbox setup failed at {step.op} {where}: {err.strerror}",
                          hint=_hint(step, err)) from None


def _hint(step: MountStep, err: OSError) -> str | None:
    if step.op == "root" and step.fstype == "overlay":
        return ("overlayfs in a user namespace needs Linux >= 5.11 and upper/work dirs on the same "
                "filesystem, not on overlayfs or NFS")
    if err.errno in (errno.EACCES, errno.EROFS) and step.create:
        return "the mount target is missing and the root is not writable here: create it first"
    return None


def _host(root: str, step: MountStep) -> str:
    return ensure_target(root, step.target, step.create or "dir")


def _apply(step: MountStep, root: str | None, notices: list[str]) -> str | None:
    op = step.op
    if op == "private":
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    elif op == "root":
        sc.mount(step.source, step.host, step.fstype, step.flags, step.data)
        return step.host
    elif op == "mount":
        target = _host(root, step)
        try:
            sc.mount(step.source, target, step.fstype, step.flags, step.data)
        except OSError as err:
            if step.fallback is None or err.errno not in (errno.EPERM, errno.EACCES):
                raise
            sc.mount(step.fallback, target, None, sc.MS_BIND | sc.MS_REC)
            if step.flags & sc.MS_RDONLY:
                for point in _mounts_under(target):  # the submounts came along: all read-only
                    _remount_ro(point)
            notices.append(f"a fresh {step.fstype} was refused on {step.target} "
                           f"({err.strerror}); bound the host's {step.fallback} instead")
    elif op == "bind":
        sc.mount(step.source, _host(root, step), None, step.flags)
    elif op == "remount_ro":
        _remount_ro(_host(root, step))
    elif op == "symlink":
        path = os.path.join(root, step.target.lstrip("/"))
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(step.source, path)
    elif op == "copy_file":
        _copy_bind(root, step)
    elif op == "pivot":
        os.chdir(root)
        sc.pivot_root(".", ".")  # the old root ends up stacked on "/", detach it
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    else:
        raise CfError(f"unknown mount step {op!r}")
    return root


def _remount_ro(target: str) -> None:
    sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | locked_flags(target))


def _mounts_under(target: str) -> list[str]:
    """Mount points at or below `target`, parents first (from our mountinfo)."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].replace("\\040", " ")
            if point == target or point.startswith(target.rstrip("/") + "/"):
                points.append(point)
    return points


def _copy_bind(root: str, step: MountStep) -> None:
    try:
        with open(step.source, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        return  # nothing to copy (a host without /etc/hosts, say)
    store = os.path.join(root, NET_COPIES.lstrip("/"))
    os.makedirs(store, mode=0o755, exist_ok=True)
    copy = os.path.join(store, os.path.basename(step.target))
    with open(copy, "wb") as handle:
        handle.write(content)
    os.chmod(copy, 0o644)
    sc.mount(copy, _host(root, step), None, sc.MS_BIND)
