"""Write a deterministic layer tar (PAX format) from planned items, streaming file contents.

An item is an Entry of tree.py, or a whiteout (kind WHITEOUT). Hardlinked files (same inode) become
typeflag '1' entries pointing at the first path written with that inode.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterable

from chrootforge import log
from chrootforge.oci import tree

WHITEOUT = "w"
_TYPES = {
    tree.FILE: tarfile.REGTYPE,
    tree.DIR: tarfile.DIRTYPE,
    tree.SYMLINK: tarfile.SYMTYPE,
    tree.CHAR: tarfile.CHRTYPE,
    tree.BLOCK: tarfile.BLKTYPE,
    tree.FIFO: tarfile.FIFOTYPE,
}
CHUNK = 1 << 20
_ZEROS = bytes(512)


def whiteout(path: str, epoch: int) -> tree.Entry:
    return tree.Entry(path, WHITEOUT, 0o644, 0, 0, epoch)


def header(entry: tree.Entry, hardlink_to: str | None = None) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime
    if entry.kind == WHITEOUT:
        info.type = tarfile.REGTYPE
    elif hardlink_to is not None:
        info.type = tarfile.LNKTYPE
        info.linkname = hardlink_to
    else:
        info.type = _TYPES[entry.kind]
        info.size = entry.size
        info.linkname = entry.link
        info.devmajor, info.devminor = entry.rdev
    if entry.xattrs:
        info.pax_headers = {
            **info.pax_headers,
            **{"SCHILY.xattr." + n: v.decode("utf-8", "surrogateescape") for n, v in entry.xattrs},
        }
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class _Buffered:
    """Coalesce small writes into ~1 MiB pieces: fewer calls into hashing and compression."""

    def __init__(self, out: Callable[[bytes], object]):
        self.out = out
        self.buf = bytearray()

    def write(self, data) -> None:
        if len(data) >= CHUNK:
            self.flush()
            self.out(data)
            return
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.out(bytes(self.buf))
            self.buf = bytearray()


def _copy_file(full: str, size: int, out: _Buffered, progress) -> None:
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = size
        while left > 0:
            data = os.read(fd, min(CHUNK, left))
            if not data:
                log.warn(f"{full} shrank while it was being committed; padding with zeros")
                data = bytes(min(CHUNK, left))
            out.write(data)
            left -= len(data)
            if progress is not None:
                progress.update(len(data))
    finally:
        os.close(fd)
    pad = -size % 512
    if pad:
        out.write(_ZEROS[:pad])


def write_tar(items: Iterable[tree.Entry], root: str, out: Callable[[bytes], object], progress=None) -> int:
    """Stream the tar of `items` (files read from `root`) into `out`; returns the entry count."""
    buffered = _Buffered(out)
    first_path: dict[tuple[int, int], str] = {}
    count = 0
    for entry in items:
        link = None
        if entry.inode is not None:
            link = first_path.get(entry.inode)
            if link is None:
                first_path[entry.inode] = entry.path
        buffered.write(header(entry, link))
        if entry.kind == tree.FILE and link is None and entry.size:
            _copy_file(os.path.join(root, entry.path), entry.size, buffered, progress)
        count += 1
    buffered.write(_ZEROS * 2)
    buffered.flush()
    return count
