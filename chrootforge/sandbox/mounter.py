"""Apply a mount plan (runs as PID 1 of the sandbox, inside its user and mount namespaces).

Every path inside the new root goes through chrootforge.rootpath (resolved in the root, created
through directory fds, mounted onto an fd of exactly the resolved object): no symlink in the rootfs
can point a mount, a created directory or a copied file at the host. What the plan had to create in
the rootfs is recorded so the sandbox can take it away again when it ends (runner.py).
"""

from __future__ import annotations

import errno
import os

from chrootforge.errors import CfError
from chrootforge.rootpath import Created, RootDir
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.mountplan import MountStep

NET_COPIES = "/run/.chrootforge-net"

# statvfs f_flag bits -> the mount flags a read-only remount must repeat (the kernel refuses to
# drop flags it locked on mounts inherited from a more privileged namespace).
_KEEP_FLAGS = (
    (os.ST_NOSUID, sc.MS_NOSUID),
    (os.ST_NODEV, sc.MS_NODEV),
    (os.ST_NOEXEC, sc.MS_NOEXEC),
    (os.ST_NOATIME, sc.MS_NOATIME),
    (os.ST_NODIRATIME, sc.MS_NODIRATIME),
    (os.ST_RELATIME, sc.MS_RELATIME),
)


def locked_flags(path: str) -> int:
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _KEEP_FLAGS if f_flag & st)


def apply_plan(steps: list[MountStep], notices: list[str], created: list[Created]) -> None:
    """Apply `steps`; fallbacks taken are appended to `notices` for the parent to print, and what
    had to be created inside the root to `created`."""
    mounter = _Mounter(notices)
    try:
        for number, step in enumerate(steps):
            try:
                mounter.apply(step)
            except OSError as err:
                where = step.target or step.host or "/"
                raise CfError(
                    f"sandbox setup failed at {step.op} {where}: {err.strerror}", hint=_hint(step, err)
                ) from err
            finally:
                created += [c.replace(step=number) for c in mounter.created]
                mounter.created = []
    finally:
        mounter.close()


def _hint(step: MountStep, err: OSError) -> str | None:
    if step.op == "root" and step.fstype == "overlay":
        return (
            "overlayfs in a user namespace needs Linux >= 5.11 and upper/work dirs on the same "
            "filesystem, not on overlayfs or NFS"
        )
    if err.errno in (errno.EACCES, errno.EROFS) and step.create:
        return "the mount target is missing and the root is not writable here: create it first"
    return None


class _Mounter:
    def __init__(self, notices: list[str]):
        self.notices = notices
        self.created: list[Created] = []  # by the current step
        self.root: RootDir | None = None

    def close(self) -> None:
        if self.root is not None:
            self.root.close()

    @property
    def rootdir(self) -> RootDir:
        if self.root is None:  # a plan always starts with its "root" step (mountplan.py)
            raise CfError("the mount plan uses the new root before mounting it")
        return self.root

    def target(self, step: MountStep, kind: str | None = None):
        return self.rootdir.target(step.target, kind or step.create or "dir", self.created)

    def apply(self, step: MountStep) -> None:
        op = step.op
        if op == "private":
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        elif op == "root":
            host = _field(step, step.host, "host")
            sc.mount(step.source, host, step.fstype, step.flags, step.data)
            # A bind ignores MS_RDONLY: set it afterwards (nothing is on it yet). Device nodes in
            # the rootfs stay inert (nodev): the sandbox's /dev binds its few harmless ones.
            restrict_tree(host, readonly=bool(step.flags & sc.MS_RDONLY), nodev=True)
            self.root = RootDir(host)  # an fd of the new root's top, not of what it covers
        elif op == "mount":
            self._fresh_mount(step)
        elif op == "bind":
            with self.target(step) as target:
                sc.mount(step.source, target, None, step.flags)
        elif op == "remount_ro":
            with self.target(step) as target:  # resolved again: now the bind's own root
                readonly_tree(target)
        elif op == "symlink":
            with self.rootdir.locate(
                step.target, follow=True, make_parents=True, created=self.created, what="symlink"
            ) as loc:
                try:
                    os.unlink(loc.entry, dir_fd=loc.dirfd)
                except FileNotFoundError:
                    pass
                os.symlink(_field(step, step.source, "source"), loc.entry, dir_fd=loc.dirfd)
        elif op == "copy_file":
            self._copy_bind(step)
        elif op == "pivot":
            os.chdir(self.rootdir.root)
            self.close()
            sc.pivot_root(".", ".")  # the old root ends up stacked on "/", detach it
            sc.umount2(".", sc.MNT_DETACH)
            os.chdir("/")
        else:
            raise CfError(f"unknown mount step {op!r}")

    def _fresh_mount(self, step: MountStep) -> None:
        fresh = True
        with self.target(step) as target:
            try:
                sc.mount(step.source, target, step.fstype, step.flags, step.data)
            except OSError as err:
                if step.fallback is None or err.errno not in (errno.EPERM, errno.EACCES):
                    raise
                sc.mount(step.fallback, target, None, sc.MS_BIND | sc.MS_REC)
                fresh = False
                self.notices.append(
                    f"a fresh {step.fstype} was refused on {step.target} "
                    f"({err.strerror}); bound the host's {step.fallback} instead"
                )
        with self.target(step) as target:  # resolved again: now the new filesystem's root
            if fresh:  # nothing made in it outlives the sandbox: no need to record it for undoing
                self.rootdir.ephemeral_devs.add(os.stat(target).st_dev)
            if step.flags & sc.MS_RDONLY:
                readonly_tree(target)  # the submounts came along: all read-only

    def _copy_bind(self, step: MountStep) -> None:
        try:
            with open(_field(step, step.source, "source"), "rb") as handle:
                content = handle.read()
        except FileNotFoundError:
            return  # nothing to copy (a host without /etc/hosts, say)
        # The copy lives on the sandbox's own /run tmpfs (mounted by an earlier step).
        copy = f"{NET_COPIES}/{os.path.basename(step.target)}"
        with self.rootdir.locate(copy, follow=True, make_parents=True, what="copy") as loc:
            fd = os.open(
                loc.entry,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=loc.dirfd,
            )
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.chmod(loc.entry, 0o644, dir_fd=loc.dirfd)
        with self.rootdir.target(copy, "file") as source, self.target(step, "file") as target:
            sc.mount(source, target, None, sc.MS_BIND)


def _field(step: MountStep, value: str | None, name: str) -> str:
    if value is None:  # mountplan.py always fills it for this op
        raise CfError(f"mount step {step.op} {step.target}: no {name}")
    return value


def readonly_tree(target: str) -> None:
    """Make a bind and every mount below it read-only (one mount_setattr call on Linux >= 5.12;
    otherwise a remount per mount point). The sandbox then locks the flags (runner.py)."""
    restrict_tree(target, readonly=True)


def restrict_tree(target: str, readonly: bool = False, nodev: bool = False) -> None:
    """Make a mount and every mount below it read-only and/or nodev (as readonly_tree)."""
    attrs = (sc.MOUNT_ATTR_RDONLY if readonly else 0) | (sc.MOUNT_ATTR_NODEV if nodev else 0)
    fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
    try:
        try:
            sc.mount_setattr(fd, attrs)
            return
        except OSError as err:
            if err.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
                raise
        where = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    extra = (sc.MS_RDONLY if readonly else 0) | (sc.MS_NODEV if nodev else 0)
    for point in _mounts_under(where):
        _remount(point, extra)


def _remount(target: str, extra: int) -> None:
    keep = sc.MS_RDONLY if os.statvfs(target).f_flag & os.ST_RDONLY else 0  # never made writable
    sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | extra | keep | locked_flags(target))


def _mounts_under(target: str) -> list[str]:
    """Mount points at or below `target`, parents first (from our mountinfo)."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].replace("\\040", " ")
            if point == target or point.startswith(target.rstrip("/") + "/"):
                points.append(point)
    return points
