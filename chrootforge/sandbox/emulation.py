"""Foreign-arch payloads: the sandbox's own binfmt_misc, with QEMU's static emulator registered.

Since Linux 6.7 a user namespace may mount binfmt_misc, and its registrations are its own: the
kernel looks an executable's handler up in the nearest user namespace that has one, walking up to
the host's. PID 1 makes the instance while it is still in the sandbox's first user namespace and
can see the host's files (before the mount plan pivots), registers the emulator with the F flag
(opened there and then, so the root needs no copy), and attaches it at /proc/sys/fs/binfmt_misc.
The payload's locked namespace, and every namespace portage makes below it, inherit it. The host's
own binfmt_misc is never written to.

When the kernel refuses (older kernels, restricted hosts), a registration the host's root made for
that arch, with F, does the job, and a notice says so; else one error names the ways out.
"""

from __future__ import annotations

import errno
import os

from chrootforge.errors import CfError
from chrootforge.platforms import Platform, host_platform, runs_natively
from chrootforge.sandbox import binfmt, syscalls
from chrootforge.values import Value

HOST_BINFMT = "/proc/sys/fs/binfmt_misc"
SANDBOX_BINFMT = "/proc/sys/fs/binfmt_misc"  # where the payload sees its own
# fsopen/fsconfig errors that mean "not in a user namespace here" (EPERM: no FS_USERNS_MOUNT before
# 6.7, or a policy; ENODEV: no binfmt_misc in this kernel; ENOSYS: no new mount API, before 5.2).
REFUSED = (errno.EPERM, errno.EACCES, errno.ENODEV, errno.ENOSYS, errno.EINVAL)


class Emulation(Value):
    """How the sandbox runs a foreign platform's programs (the parent decides, PID 1 applies)."""

    __slots__ = ("platform", "qemu", "registration", "host_entry")  # noqa: RUF023 - the fields' order
    platform: str
    qemu: str
    registration: binfmt.Registration | None  # ours, when the emulator is installed here
    host_entry: str | None  # else: the host's registration's name, which the sandbox inherits

    def __init__(
        self, platform: str, qemu: str, registration: binfmt.Registration | None, host_entry: str | None
    ) -> None:
        self._init(platform, qemu, registration, host_entry)


def plan(
    platform: Platform,
    host: Platform | None = None,
    emulator_dir: str = binfmt.EMULATOR_DIR,
    host_binfmt: str = HOST_BINFMT,
):
    """None when this CPU runs `platform` natively; else the Emulation, or a CfError naming the
    package when neither the emulator nor a host registration for the arch is there."""
    if runs_natively(platform, host):
        return None
    qemu = platform.arch.qemu
    path = binfmt.emulator_path(qemu, emulator_dir)
    if os.path.isfile(path):
        return Emulation(str(platform), qemu, binfmt.registration(qemu, path), None)
    entry, why = host_registration(qemu, host_binfmt)
    if entry is not None:
        return Emulation(str(platform), qemu, None, entry.name)
    raise missing_emulator(platform, host, emulator_dir, why)


def missing_emulator(
    platform: Platform, host: Platform | None = None, emulator_dir: str = binfmt.EMULATOR_DIR, why: str = ""
) -> CfError:
    path = binfmt.emulator_path(platform.arch.qemu, emulator_dir)
    return CfError(
        f"cannot run {platform} programs on this {(host or host_platform()).architecture} machine: "
        f"no emulator {path}" + (f" ({why})" if why else ""),
        hint=f"install QEMU's static emulators: apt-get install {binfmt.EMULATOR_PACKAGE} "
        "(Debian, Ubuntu; dnf install qemu-user-static on Fedora)",
    )


def host_registration(qemu: str, directory: str = HOST_BINFMT) -> tuple[binfmt.HostEntry | None, str]:
    """The host's usable registration for `qemu`'s arch (binfmt.usable_entry), read from
    `directory`; (None, why) when there is none."""
    try:
        with open(os.path.join(directory, "status")) as handle:
            if handle.read().strip() != "enabled":
                return None, "the host's binfmt_misc is disabled"
        names = sorted(os.listdir(directory))
    except OSError:
        return None, ""
    entries = []
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(directory, name)) as handle:
                entries.append(binfmt.parse_entry(name, handle.read()))
        except (OSError, ValueError):
            continue
    return binfmt.usable_entry(entries, qemu)


def install(emulation: Emulation, notices: list[str]) -> int | None:
    """In PID 1, in the sandbox's user and mount namespaces, before the pivot: our own binfmt_misc
    with the emulator registered -> the fd of its (detached) mount; None when the host's
    registration serves. Notices for the parent go to `notices`; CfError when nothing can."""
    if emulation.registration is None:
        notices.append(
            f"running {emulation.platform} programs with the host's binfmt_misc registration "
            f"{emulation.host_entry} (no {binfmt.emulator_path(emulation.qemu)} here)"
        )
        return None
    try:
        mount_fd = syscalls.detached_mount("binfmt_misc")
    except OSError as err:
        if err.errno not in REFUSED:
            raise CfError(f"cannot mount the sandbox's binfmt_misc: {err.strerror}") from err
        _host_fallback(emulation, err, notices)
        return None
    try:
        _register(mount_fd, emulation.registration)
    except BaseException:
        os.close(mount_fd)
        raise
    return mount_fd


def _register(mount_fd: int, registration: binfmt.Registration) -> None:
    try:
        fd = os.open("register", os.O_WRONLY | os.O_CLOEXEC, dir_fd=mount_fd)
        try:
            os.write(fd, registration.line())
        finally:
            os.close(fd)
    except OSError as err:
        raise CfError(
            f"cannot register {registration.interpreter} in the sandbox's binfmt_misc: {err.strerror}",
            hint="the emulator must be a file the sandbox's root may execute (chmod a+rx), "
            "on a filesystem mounted without noexec",
        ) from err


def _host_fallback(emulation: Emulation, err: OSError, notices: list[str]) -> None:
    """The kernel refused ours: the host's registration serves (a notice), or a CfError."""
    entry, why = host_registration(emulation.qemu)
    refused = f"this kernel does not let a user namespace mount binfmt_misc ({os.strerror(err.errno or 0)})"
    if entry is not None:
        notices.append(
            f"{refused}; running {emulation.platform} programs with the host's registration {entry.name} "
            f"({entry.interpreter})"
        )
        return
    raise CfError(
        f"cannot run {emulation.platform} programs: {refused}, and the host has no registration "
        f"for {emulation.qemu} with the F flag" + (f" ({why})" if why else ""),
        hint="use Linux >= 6.7 (binfmt_misc in user namespaces); or have root register the emulators "
        f"host-wide once, with F (apt-get install {binfmt.EMULATOR_PACKAGE} binfmt-support); or "
        "run in chrootforge's QEMU guest, whose root registers it: `chrootforge build --vm on`, "
        f"`chrootforge vm run --binfmt {emulation.platform} -- ...`",
    )


def attach(mount_fd: int) -> None:
    """After the pivot: show the sandbox's binfmt_misc where programs look for it. Best effort: the
    registration works as long as PID 1 holds mount_fd, attached or not."""
    try:
        syscalls.attach_mount(mount_fd, SANDBOX_BINFMT)
    except OSError:
        pass
