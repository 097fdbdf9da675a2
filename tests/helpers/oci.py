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


def unmount_below(*paths: Path) -> None:
    """Unmount whatever is mounted at or below `paths` (deepest first): podman's overlay driver,
    run as root, leaves its storage directory bind-mounted onto itself after it exits."""
    roots = [str(Path(p).resolve()) for p in paths]
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4].replace("\\040", " ") for line in handle]
    below = [m for m in points if any(m == r or m.startswith(r + "/") for r in roots)]
    for point in sorted(set(below), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


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
            unmount_below(self.base, self.runroot)
            shutil.rmtree(self.base, ignore_errors=True)
            shutil.rmtree(self.runroot, ignore_errors=True)
            return
        self.run("unshare", "rm", "-rf", str(self.base / "root"), str(self.runroot))
        pidfile = self.tmpdir / "pause.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


def layer_bytes(entries) -> bytes:
    """An uncompressed layer of (TarInfo, data) entries."""
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return raw.getvalue()


def store_image(layout: Path, tag: str, layers: list[list]) -> None:
    """Write an image of these raw layers (gzip) into `layout`, tagged `tag`."""
    import gzip

    from chrootforge.oci import layout as lo
    from chrootforge.oci import mediatypes as mt
    from chrootforge.oci.writer import retag

    lo.ensure_layout(layout)
    with lo.Staging(layout) as staging:
        descs, diff_ids = [], []
        for entries in layers:
            raw = layer_bytes(entries)
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            digest, size = staging.add_bytes(gzip.compress(raw, mtime=0))
            descs.append({"mediaType": mt.LAYER_GZIP, "digest": digest, "size": size})
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cdigest, csize = staging.add_bytes(lo.canonical_json(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.MANIFEST,
            "config": {"mediaType": mt.CONFIG, "digest": cdigest, "size": csize},
            "layers": descs,
        }
        mdigest, msize = staging.add_bytes(lo.canonical_json(manifest))
        staging.publish(retag(tag, mdigest, msize))


def layers_of(layout: Path, tag: str) -> list[dict[str, tuple]]:
    """Each (gzip) layer of the image tagged `tag`: name -> (uid, gid, mode, link, PAX keys)."""
    import gzip
    import io
    import json
    import tarfile

    index = json.loads((layout / "index.json").read_text())
    desc = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_bytes())
    out = []
    for layer in manifest["layers"]:
        data = gzip.decompress((layout / "blobs/sha256" / layer["digest"][7:]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            out.append(
                {
                    m.name.rstrip("/"): (
                        m.uid,
                        m.gid,
                        m.mode & 0o7777,
                        m.linkname,
                        tuple(sorted(m.pax_headers)),
                    )
                    for m in tar.getmembers()
                }
            )
    return out


def merged(layers: list[dict]) -> dict:
    """The tree the layers make (whiteouts are kept as names; enough to compare owners)."""
    tree: dict = {}
    for layer in layers:
        tree.update(layer)
    return tree


def rewrite_image(
    layout: Path, tag: str, *, manifest=None, config=None, media_type: str | None = None
) -> str:
    """Store the image tagged `tag` again with its config and/or manifest changed, as another tool
    might have written it: `config`/`manifest` map the parsed document to a new one (a dict, or raw
    bytes); the new blobs are hashed properly and `tag` is repointed (its descriptor's media type
    set to `media_type` if given). Returns the new manifest digest."""
    import json

    from chrootforge.oci import layout as lo

    def store(doc) -> tuple[str, int]:
        return lo.write_blob(layout, doc if isinstance(doc, bytes) else json.dumps(doc).encode())

    index = json.loads((layout / "index.json").read_text())
    desc = next(
        d
        for d in index["manifests"]
        if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    doc = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())
    if config is not None:
        old = json.loads((layout / "blobs" / "sha256" / doc["config"]["digest"][7:]).read_bytes())
        digest, size = store(config(old))
        doc["config"] = dict(doc["config"], digest=digest, size=size)
    digest, size = store(manifest(doc) if manifest is not None else doc)
    desc.update(digest=digest, size=size, mediaType=media_type or desc["mediaType"])
    (layout / "index.json").write_text(json.dumps(index))
    return digest
