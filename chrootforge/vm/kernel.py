"""The guest kernel and its stage-1 initramfs, from Debian's packages, without root.

`apt-get download` fetches the generic kernel and busybox-static, `dpkg-deb -x` unpacks them. The
ELF vmlinux is taken out of the bzImage (its XZ payload) so that QEMU boots it through the PVH entry:
that skips ~11 s of decompression under TCG. The initramfs holds busybox, vm/initramfs-init and the
modules of vm/modules.txt with their dependencies, in the order modprobe would load them.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import subprocess
from pathlib import Path

from chrootforge.errors import CfError

XZ_MAGIC = b"\xfd7zXZ\x00"


def run_logged(argv: list[str], log: Path, cwd: Path | None = None, what: str = "") -> None:
    """Run a build step with its output appended to `log`; a failure names the log's tail.

    The step gets SIGTERM if chrootforge dies (mmdebstrap then cleans up after itself)."""
    if shutil.which(argv[0]) is None:
        raise CfError(
            f"{argv[0]} is not installed ({what or 'building the VM guest'})",
            hint="scripts/bootstrap installs what the guest build needs (mmdebstrap, "
            "squashfs-tools-ng, kmod, e2fsprogs, qemu-system-x86)",
        )
    with open(log, "ab") as handle:
        handle.write(f"$ {' '.join(argv)}\n".encode())
        handle.flush()
        proc = subprocess.run(
            ["setpriv", "--pdeathsig", "TERM", "--", *argv],
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise CfError(
            f"{what or argv[0]} failed (exit {proc.returncode}); log {log}:\n    " + "\n    ".join(tail)
        )


def download(packages: list[str], dest: Path, log: Path) -> list[Path]:
    """`apt-get download PKG=VERSION...` into dest -> the .deb paths, in the order given."""
    dest.mkdir(parents=True, exist_ok=True)
    run_logged(["apt-get", "download", "-q", *packages], log, cwd=dest, what="apt-get download")
    debs = sorted(dest.glob("*.deb"))
    out = []
    for spec in packages:
        name = spec.split("=", 1)[0]
        match = [d for d in debs if d.name.startswith(f"{name}_")]
        if len(match) != 1:
            raise CfError(f"apt-get download gave no single .deb for {name} in {dest}")
        out.append(match[0])
    return out


def unpack_deb(deb: Path, dest: Path, log: Path) -> None:
    run_logged(["dpkg-deb", "-x", str(deb), str(dest)], log, what=f"dpkg-deb -x {deb.name}")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage whose payload is XZ-compressed (Debian's)."""
    offset = bzimage.find(XZ_MAGIC)
    while offset >= 0:
        decomp = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            data = decomp.decompress(bzimage[offset:])
        except lzma.LZMAError:
            data = b""
        if decomp.eof and data.startswith(b"\x7fELF"):
            return data
        offset = bzimage.find(XZ_MAGIC, offset + 1)
    raise CfError(
        "no XZ-compressed ELF kernel found in the bzImage",
        hint="the guest needs Debian's amd64 kernel (XZ payload, CONFIG_PVH)",
    )


def module_order(root: Path, release: str, names: tuple[str, ...], log: Path) -> list[Path]:
    """The .ko files for `names` and their dependencies, each once, dependencies first."""
    run_logged(["depmod", "-b", str(root), release], log, what="depmod")
    order: list[Path] = []
    for name in names:
        proc = subprocess.run(
            ["modprobe", "-d", str(root), "-S", release, "--show-depends", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise CfError(
                f"kernel module {name} not found in {release}: {proc.stderr.strip()}",
                hint="check vm/modules.txt",
            )
        for line in proc.stdout.splitlines():
            fields = line.split()
            if fields[:1] == ["insmod"]:
                path = Path(fields[1])
                if path not in order:
                    order.append(path)
    return order


def _newc_entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    out = header + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive (what the kernel unpacks as an initramfs) of (name, mode, data) entries:
    owners 0, mtimes 0, so the same inputs give the same bytes."""
    out = b"".join(_newc_entry(name, mode, data, ino) for ino, (name, mode, data) in enumerate(entries, 1))
    return out + _newc_entry("TRAILER!!!", 0, b"", 0)


def initramfs_entries(busybox: bytes, init: bytes, modules: list[tuple[str, bytes]]) -> list:
    dirs = [(d, stat.S_IFDIR | 0o755, b"") for d in ("bin", "dev", "modules", "proc", "sys")]
    files = [
        ("bin/busybox", stat.S_IFREG | 0o755, busybox),
        ("init", stat.S_IFREG | 0o755, init),
        ("modules.order", stat.S_IFREG | 0o644, "".join(f"{n}\n" for n, _ in modules).encode()),
    ]
    files += [(f"modules/{name}", stat.S_IFREG | 0o644, data) for name, data in modules]
    return dirs + files


def build_kernel(recipe, guest: Path, work: Path, out: Path, log: Path) -> None:
    """out/vmlinux and out/initramfs.cpio from the recipe's kernel and busybox packages."""
    kdeb, bdeb = download(
        [f"{recipe.kernel_package}={recipe.kernel_version}", f"busybox-static={recipe.busybox_version}"],
        work / "debs",
        log,
    )
    kroot, broot = work / "kernel", work / "busybox"
    unpack_deb(kdeb, kroot, log)
    unpack_deb(bdeb, broot, log)
    release = recipe.kernel_release
    bzimage = kroot / "boot" / f"vmlinuz-{release}"
    (out / "vmlinux").write_bytes(extract_vmlinux(bzimage.read_bytes()))
    modules = module_order(kroot, release, recipe.modules, log)
    if len({m.name for m in modules}) != len(modules):
        raise CfError("two kernel modules of the guest share one file name")
    entries = initramfs_entries(
        (broot / "bin" / "busybox").read_bytes(),
        (guest / "initramfs-init").read_bytes(),
        [(m.name, m.read_bytes()) for m in modules],
    )
    (out / "initramfs.cpio").write_bytes(cpio_newc(entries))
    os.chmod(out / "vmlinux", 0o644)
