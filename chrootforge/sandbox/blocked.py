"""Explain why the kernel refused a user namespace, with the exact remedy."""

from __future__ import annotations

import errno
import os

from chrootforge.errors import CfError

VM_HINT = "or build in chrootforge's QEMU guest: `chrootforge build --vm on` (see vm/README.md)"


def _sysctl(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _seccomp_mode() -> str | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Seccomp:"):
                    return line.split()[1]
    except OSError:
        pass
    return None


def diagnose(err: int, uid: int | None = None) -> tuple[str, str]:
    """(cause, remedy) for an unshare(CLONE_NEWUSER) failure with errno `err`."""
    uid = os.getuid() if uid is None else uid
    max_ns = _sysctl("/proc/sys/user/max_user_namespaces")
    if err == errno.ENOSPC or max_ns == "0":
        return (
            f"user namespaces are disabled or exhausted (user.max_user_namespaces={max_ns})",
            "sudo sysctl -w user.max_user_namespaces=15000, " + VM_HINT,
        )
    if uid != 0 and _sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        cause = (
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)"
        )
        remedy = (
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or add an AppArmor "
            "profile with `userns,` for the python interpreter running chrootforge, "
        )
        return cause, remedy + VM_HINT
    if uid != 0 and _sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return (
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1, " + VM_HINT,
        )
    if _seccomp_mode() == "2":
        cause = (
            "a seccomp filter refuses unshare (this looks like a container that blocks "
            f"user namespaces: {os.strerror(err)})"
        )
        remedy = (
            "run the container with a seccomp profile allowing unshare/clone with "
            "CLONE_NEWUSER (e.g. --security-opt seccomp=unconfined), "
        )
        return cause, remedy + VM_HINT
    return (
        f"the kernel refused a new user namespace: {os.strerror(err)}",
        "check user.max_user_namespaces, AppArmor/SELinux policy and seccomp, " + VM_HINT,
    )


def probe_userns() -> int | None:
    """None if this process may create a user namespace, else the errno the kernel gave.

    A forked child tries unshare(CLONE_NEWUSER) and exits with the errno, so this process's own
    namespaces stay as they are. Costs about a millisecond.
    """
    from chrootforge.sandbox.syscalls import CLONE_NEWUSER, unshare

    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            unshare(CLONE_NEWUSER)
            code = 0
        except OSError as err:
            code = err.errno or 255
        finally:
            os._exit(min(code, 255))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return None if code == 0 else code


def userns_blocked_error(err: int) -> CfError:
    cause, remedy = diagnose(err)
    return CfError(f"cannot create a user namespace: {cause}", hint=remedy)
