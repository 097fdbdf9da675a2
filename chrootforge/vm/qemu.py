"""The QEMU command line of a guest, as a pure value (unit-tested without QEMU).

The machine has no network device at all (`-nodefaults -nic none`): only `lo` exists inside. The
kernel is the ELF vmlinux, entered through PVH by qboot (`-M q35 -bios qboot.rom`). Serial ports:
ttyS0 the console (a log), ttyS1/ttyS2 the job's stdout/stderr (files the host streams). The guest
writes its status to isa-debug-exit; QEMU then exits with (status << 1) | 1.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.vm.job import share_tag
from chrootforge.vm.shares import Share

QEMU = "qemu-system-x86_64"
BIOS_DIRS = ("/usr/share/qemu", "/usr/share/qemu-kvm", "/usr/local/share/qemu")
KERNEL_CMDLINE = "console=ttyS0 quiet panic=-1 8250.nr_uarts=4"
DEBUG_EXIT_PORT = 0xF4
INSTALL_HINT = "install QEMU: sudo apt-get install qemu-system-x86 qemu-system-data"


@dataclass(frozen=True)
class Machine:
    kernel: Path
    initramfs: Path
    rootfs: Path
    job_file: Path
    console_log: Path
    stdout_log: Path
    stderr_log: Path
    bios: Path
    accel: str = "tcg"  # "tcg" | "kvm"
    cpus: int = 1
    memory_mb: int = 2048
    shares: tuple[Share, ...] = ()
    scratch: Path | None = None  # a raw ext4 image, the guest's /scratch
    qemu: str = QEMU
    extra_cmdline: tuple[str, ...] = field(default_factory=tuple)


def find_qemu() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise CfError(f"{QEMU} is not installed: the VM needs QEMU", hint=INSTALL_HINT)
    return path


def find_bios() -> Path:
    for folder in BIOS_DIRS:
        path = Path(folder) / "qboot.rom"
        if path.is_file():
            return path
    raise CfError("qboot.rom (QEMU's minimal firmware) was not found", hint=INSTALL_HINT)


def argv(m: Machine) -> list[str]:
    cpu = "host" if m.accel == "kvm" else "max"
    out = [
        m.qemu,
        "-nodefaults",
        "-no-user-config",
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
        "-M",
        "q35",
        "-bios",
        str(m.bios),
        "-accel",
        m.accel,
        "-cpu",
        cpu,
        "-smp",
        str(m.cpus),
        "-m",
        f"{m.memory_mb}M",
        "-kernel",
        str(m.kernel),
        "-initrd",
        str(m.initramfs),
        "-append",
        " ".join((KERNEL_CMDLINE, *m.extra_cmdline)),
    ]
    for name, path in (("console", m.console_log), ("stdout", m.stdout_log), ("stderr", m.stderr_log)):
        out += ["-chardev", f"file,id={name},path={_opt(path)}", "-serial", f"chardev:{name}"]
    out += [
        "-device",
        f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
        "-fw_cfg",
        f"name=opt/chrootforge/job,file={_opt(m.job_file)}",
        "-drive",
        f"file={_opt(m.rootfs)},format=raw,if=none,id=root,readonly=on",
        "-device",
        "virtio-blk-pci,drive=root,serial=cfroot",
    ]
    if m.scratch is not None:
        out += [
            "-drive",
            f"file={_opt(m.scratch)},format=raw,if=none,id=scratch,cache=unsafe,discard=unmap",
            "-device",
            "virtio-blk-pci,drive=scratch,serial=cfscratch",
        ]
    for index, share in enumerate(m.shares):
        tag = share_tag(index)
        fsdev = f"local,id={tag},path={_opt(share.source)},security_model=none,multidevs=remap"
        out += [
            "-fsdev",
            fsdev + (",readonly=on" if share.readonly else ""),
            "-device",
            f"virtio-9p-pci,fsdev={tag},mount_tag={tag}",
        ]
    return out


def _opt(path: Path) -> str:
    """A path as a QEMU option value: commas are doubled (QEMU's escape)."""
    return str(path).replace(",", ",,")


def exit_status(qemu_code: int) -> int | None:
    """The guest's status from QEMU's exit code: odd codes carry it; anything else carries none."""
    if qemu_code > 0 and qemu_code & 1:
        return qemu_code >> 1
    return None
