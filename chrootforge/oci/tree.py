"""Scan a root filesystem into sorted, normalised entries: the pure input of a layer.

Paths are relative, '/'-separated, without a leading './'. Siblings are ordered by their bytes, a
directory comes before its contents (depth first), so every parent precedes its children and the
order is the same on every machine.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.ownerxattr import XATTR as RECORD_XATTR
from chrootforge.ownerxattr import Records

# Kinds, as in tar: regular file, directory, symlink, char/block device, fifo.
FILE, DIR, SYMLINK, CHAR, BLOCK, FIFO = "f", "d", "l", "c", "b", "p"
_KIND_OF = {
    stat.S_IFREG: FILE,
    stat.S_IFDIR: DIR,
    stat.S_IFLNK: SYMLINK,
    stat.S_IFCHR: CHAR,
    stat.S_IFBLK: BLOCK,
    stat.S_IFIFO: FIFO,
}

# Host ids -> image ids, None when not covered (an IdMap's to_inside): real root commits trees that
# its sandbox wrote as an unprivileged range (sandbox/idmap.py).
Owners = Callable[[int, int], tuple[int, int] | None]

# Host-specific labels that must not leak into an image.
_DROPPED_XATTRS = {"security.selinux"}
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str
    kind: str
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    mtime: int
    size: int = 0
    link: str = ""  # symlink target
    rdev: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    inode: tuple[int, int] | None = None  # (dev, ino) of regular files with nlink > 1

    def meta(self) -> tuple:
        """Everything but content and inode identity: what a diff compares first."""
        return (
            self.kind,
            self.mode,
            self.uid,
            self.gid,
            self.mtime,
            self.size,
            self.link,
            self.rdev,
            self.xattrs,
        )


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH as an int; 0 when unset (reproducible by default)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError as err:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer") from err
    if value < 0:
        raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is negative")
    return value


def normalise_capability(value: bytes) -> bytes:
    """security.capability v3 (written in a user namespace, carries the namespace root uid) -> v2."""
    if len(value) >= 24 and int.from_bytes(value[:4], "little") & 0xFF000000 == VFS_CAP_REVISION_3:
        flags = int.from_bytes(value[:4], "little") & 0x00FFFFFF
        return (VFS_CAP_REVISION_2 | flags).to_bytes(4, "little") + value[4:20]
    return value


def read_xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out = []
    for name in names:
        if name in _DROPPED_XATTRS:
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue  # e.g. trusted.* when not privileged
        if not value:
            continue  # a zero-length PAX record means "unset": it cannot carry an empty xattr
        if name == "security.capability":
            value = normalise_capability(value)
        out.append((name, value))
    return tuple(sorted(out))


def entry_from_stat(
    rel: str,
    full: str,
    st: os.stat_result,
    epoch: int,
    owners: Owners | None = None,
    records: Records | None = None,
) -> Entry | None:
    """records: the tree was written in single-id mode, its owners are recorded (ownerxattr)."""
    kind = _KIND_OF.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        log.notice(f"skipping {rel}: sockets (and other special files) cannot go in a layer")
        return None
    link = os.readlink(full) if kind == SYMLINK else ""
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in (CHAR, BLOCK) else (0, 0)
    inode = (st.st_dev, st.st_ino) if kind == FILE and st.st_nlink > 1 else None
    uid, gid = st.st_uid, st.st_gid
    if owners is not None:
        mapped = owners(uid, gid)
        if mapped is None:
            raise UsageError(
                f"{full} belongs to host ids {uid}:{gid}, outside the id range the image was built with",
                hint="only the build's sandbox should write into its root",
            )
        uid, gid = mapped
    xattrs = read_xattrs(full)
    if records is not None:
        value = dict(xattrs).get(RECORD_XATTR)
        recorded = records.owner(rel, link, uid, gid, value)
        if recorded is None:
            raise UsageError(
                f"{full}: its {RECORD_XATTR} xattr is not a valid owner record",
                hint="remove the xattr (setfattr -x) or chown the file inside the build",
            )
        uid, gid = recorded
        xattrs = tuple(item for item in xattrs if item[0] != RECORD_XATTR)
    return Entry(
        rel,
        kind,
        stat.S_IMODE(st.st_mode),
        uid,
        gid,
        min(int(st.st_mtime), epoch),
        st.st_size if kind == FILE else 0,
        link,
        rdev,
        xattrs,
        inode,
    )


def sort_key(name: str) -> bytes:
    return os.fsencode(name)


def walk(root: str | os.PathLike, epoch: int, owners: Owners | None = None, records: Records | None = None):
    """Yield the Entries under `root` in layer order (depth first, siblings by bytes)."""
    root = os.fspath(root)
    try:
        st = os.stat(root)  # the root itself may be a symlink to the tree
    except FileNotFoundError as err:
        raise UsageError(f"rootfs {root} does not exist") from err
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"rootfs {root} is not a directory")
    yield from _walk_dir(root, "", st.st_dev, epoch, owners, records)


def _walk_dir(
    full_dir: str, rel_dir: str, root_dev: int, epoch: int, owners: Owners | None, records: Records | None
):
    try:
        with os.scandir(full_dir) as it:
            names = sorted((e.name for e in it), key=sort_key)
    except PermissionError as err:
        raise UsageError(
            f"cannot read {full_dir}: {err.strerror}",
            hint="commit as the owner of the tree (or inside its user namespace)",
        ) from err
    for name in names:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        if name.startswith(".wh."):
            log.notice(f"skipping {rel}: consumers would read a .wh.* name as a whiteout")
            continue
        full = os.path.join(full_dir, name)
        est = os.lstat(full)
        entry = entry_from_stat(rel, full, est, epoch, owners, records)
        if entry is None:
            continue
        yield entry
        if entry.kind == DIR:
            if est.st_dev != root_dev:
                log.notice(f"{rel} is a mount point of another file system: committed empty")
                continue
            yield from _walk_dir(full, rel, root_dev, epoch, owners, records)
