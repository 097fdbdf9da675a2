"""Thin ctypes wrappers for the Linux calls Python 3.11 lacks (unshare, mount, pivot_root, ...)."""

from __future__ import annotations

import ctypes
import errno
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000

MNT_DETACH = 0x2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
# pivot_root(2) has no libc wrapper; its number differs per architecture.
_PIVOT_ROOT_NR = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# mount_setattr(2) (Linux 5.12) has the same number on every architecture (the new syscall table).
SYS_MOUNT_SETATTR = 442
SYS_CLOSE_RANGE = 436  # Linux 5.9, also the same everywhere
# The new mount API (Linux 5.2), the same numbers everywhere too.
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 0x1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
CLOSE_RANGE_CLOEXEC = 0x4  # Linux 5.11
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NODEV = 0x4
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280}
KEYCTL_JOIN_SESSION_KEYRING = 1


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


_libc = libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
        return
    _check(_libc.unshare(flags), "unshare")


def mount(source, target, fstype=None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root, put_old) -> None:
    nr = _PIVOT_ROOT_NR.get(os.uname().machine)
    if nr is None:  # guessing a number would call some other syscall
        raise OSError(errno.ENOSYS, f"pivot_root: unknown syscall number on {os.uname().machine}")
    _check(_libc.syscall(nr, _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def mount_setattr(fd: int, attr_set: int) -> None:
    """Set the MOUNT_ATTR_* bits `attr_set` on the mount at fd (an O_PATH fd of its root) and
    every mount below it."""
    attr = _MountAttr(attr_set, 0, 0, 0)
    _check(
        _libc.syscall(
            SYS_MOUNT_SETATTR,
            fd,
            b"",
            AT_EMPTY_PATH | AT_RECURSIVE,
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        "mount_setattr",
    )


def _fd(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def detached_mount(fstype: str) -> int:
    """A new filesystem of `fstype`, mounted nowhere yet: the fd of its mount (close-on-exec).
    It lives as long as a descriptor or an attachment (move_mount) holds it."""
    fs = _fd(_libc.syscall(SYS_FSOPEN, fstype.encode(), FSOPEN_CLOEXEC), f"fsopen {fstype}")
    try:
        _fd(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0), f"fsconfig {fstype}")
        return _fd(_libc.syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0), f"fsmount {fstype}")
    finally:
        os.close(fs)


def attach_mount(mount_fd: int, target: str) -> None:
    """Attach a detached mount (detached_mount) at `target`."""
    _check(
        _libc.syscall(SYS_MOVE_MOUNT, mount_fd, b"", AT_FDCWD, os.fsencode(target), MOVE_MOUNT_F_EMPTY_PATH),
        f"move_mount {target}",
    )


def join_new_session_keyring() -> None:
    """Replace the session keyring we inherited by a new, empty one (keyctl(2)
    KEYCTL_JOIN_SESSION_KEYRING with no name): whoever we start no longer possesses the caller's
    keys. OSError when the kernel or a seccomp filter refuses keyctl."""
    nr = SYS_KEYCTL.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, f"keyctl: unknown syscall number on {os.uname().machine}")
    _fd(_libc.syscall(nr, KEYCTL_JOIN_SESSION_KEYRING, None), "keyctl")


def cloexec_from(first: int) -> None:
    """Mark every descriptor from `first` on close-on-exec (close_range(2), else one by one)."""
    if (
        _libc.syscall(
            SYS_CLOSE_RANGE,
            ctypes.c_uint(first),
            ctypes.c_uint(0xFFFFFFFF),
            ctypes.c_uint(CLOSE_RANGE_CLOEXEC),
        )
        == 0
    ):
        return
    for name in os.listdir("/proc/self/fd"):
        if int(name) >= first:
            try:
                os.set_inheritable(int(name), False)
            except OSError:
                pass  # the directory listing's own descriptor, closed meanwhile


def set_dumpable(on: bool) -> None:
    _check(_libc.prctl(PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def set_pdeathsig(sig: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


AT_FDCWD = -100
RENAME_NOREPLACE = 0x1
RENAME_EXCHANGE = 0x2


def renameat2(src, dst, flags: int) -> None:
    """rename(2) with flags (glibc 2.28+). Filesystems without them (9p, NFS) fail with EINVAL."""
    func = getattr(_libc, "renameat2", None)
    if func is None:
        raise OSError(errno.ENOSYS, "renameat2 is not in this libc")
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if func(AT_FDCWD, _b(src), AT_FDCWD, _b(dst), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fspath(dst))
