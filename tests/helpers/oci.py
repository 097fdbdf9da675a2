"""Fixtures and helpers for the OCI writer tests: trees, snapshots, private podman stores."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "ls", "id", "test", "stat", "readlink", "true")
EPOCH = 1700000000


def make_busybox_rootfs(root: Path, busybox: Path = BUSYBOX) -> Path:
    """A tiny runnable root: Debian's busybox-static (or another arch's `busybox`) plus applet
    symlinks."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("tmp", "etc", "proc", "sys", "dev"):
        (root / d).mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc" / "motd").write_text("made by chrootforge\n")
    os.link(root / "etc" / "motd", root / "etc" / "motd.link")
    return root


@contextlib.contextmanager
def fixed_epoch(epoch: int = EPOCH):
    """SOURCE_DATE_EPOCH=epoch for what commits meanwhile (restored afterwards)."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def open_to_all(root: Path) -> None:
    """Directories 0755 and files 0644 (0755 if executable): every test identity may read them."""
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirs, files in os.walk(root):
        os.lchown(dirpath, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def without_devices(snap: dict) -> dict:
    """A snapshot as unpack reproduces it: unpack never creates device nodes."""
    return {path: d for path, d in snap.items() if not (stat.S_ISCHR(d["kind"]) or stat.S_ISBLK(d["kind"]))}


def snapshot(root: Path, epoch: int = EPOCH, owners: bool = True) -> dict:
    """path -> comparable description (kind, mode, owner, clamped mtime, content, link, xattrs,
    hardlink group). The root itself is left out."""
    out = {}
    first_of_inode: dict[tuple[int, int], str] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            desc = {"kind": kind, "mode": stat.S_IMODE(st.st_mode)}
            if owners:
                desc["owner"] = (st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode):
                desc["mtime"] = min(int(st.st_mtime), epoch)
            if stat.S_ISREG(st.st_mode):
                desc["sha"] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    desc["group"] = first_of_inode.setdefault(key, rel)
            elif stat.S_ISLNK(st.st_mode):
                desc["link"] = os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                desc["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                names = os.listxattr(full, follow_symlinks=False)
            except OSError:
                names = []
            desc["xattrs"] = {
                n: os.getxattr(full, n, follow_symlinks=False)
                for n in sorted(names)
                if n.startswith("user.") or n == "security.capability"
            }
            out[rel] = desc
    return out


def umoci_comparable(snap: dict) -> dict:
    """What `umoci unpack` can reproduce of a snapshot(), to compare on both sides. Rootless, umoci
    keeps the image's owners in an xattr of its own (user.rootlesscontainers) and cannot set xattrs
    on read-only files (it logs "ignoring EPERM on setxattr"): both are left out. As root: all."""
    if os.getuid() == 0:
        return snap
    out = {}
    for path, desc in snap.items():
        xattrs = {k: v for k, v in desc.get("xattrs", {}).items() if k != "user.rootlesscontainers"}
        out[path] = dict(desc, xattrs=xattrs if desc["mode"] & 0o200 else {})
    return out


def manifest_of(layout: Path, tag: str) -> dict:
    import json

    index = json.loads((layout / "index.json").read_text())
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_text())
    raise KeyError(tag)


class Podman:
    """podman with private storage under `base`, as `identity` (root or rootless)."""

    def __init__(self, identity, base: Path):
        self.identity = identity
        self.base = base
        self.tmpdir = base / "tmp"
        for d in ("root", "tmp"):
            (base / d).mkdir(exist_ok=True)
            if os.getuid() == 0:
                os.chown(base / d, identity.uid, identity.gid)
        # podman refuses a runroot longer than 50 characters
        self.runroot = Path(tempfile.mkdtemp(prefix="cfp.", dir="/tmp"))
        if os.getuid() == 0:
            os.chown(self.runroot, identity.uid, identity.gid)
        self.globals = [
            "--root",
            str(base / "root"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.tmpdir),
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.identity.run(["podman", *self.globals, *args], **kwargs)

    def run_image(self, image: str, *cmd: str) -> subprocess.CompletedProcess:
        return self.run(
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            image,
            *cmd,
        )

    def load_args(self) -> list[str]:
        return [f"--podman-arg={a}" for a in self.globals]

    def cleanup(self) -> None:
        if self.identity.is_root:
            shutil.rmtree(self.base, ignore_errors=True)
            shutil.rmtree(self.runroot, ignore_errors=True)
            return
        self.run("unshare", "rm", "-rf", str(self.base / "root"), str(self.runroot))
        pidfile = self.tmpdir / "pause.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
