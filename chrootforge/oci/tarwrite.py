"""Write a deterministic layer tar (PAX format) from planned items, streaming file contents.

An item is an Entry of tree.py, or a whiteout (kind WHITEOUT). Hardlinked files (same inode) become
typeflag '1' entries pointing at the first path written with that inode.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from typing import Protocol

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
_ZEROS = bytes(512)
_PIECE = 16 << 20  # progress is told this often while a big file is read


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


class Out(Protocol):
    """Where the tar goes: fanout.Fanout (file contents are read straight into its blocks)."""

    def write(self, data: bytes) -> None: ...

    def read_from(self, fd: int, count: int) -> int: ...


def _copy_file(full: str, size: int, out: Out, progress) -> None:
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        done = 0
        while done < size:
            want = min(size - done, _PIECE)
            got = out.read_from(fd, want)
            done += got
            if progress is not None:
                progress.update(got)
            if got < want:
                break
    finally:
        os.close(fd)
    if done < size:
        log.warn(f"{full} shrank while it was being committed; padding with zeros")
        while done < size:
            n = min(size - done, _PIECE)
            out.write(bytes(n))
            done += n
    pad = -size % 512
    if pad:
        out.write(_ZEROS[:pad])


def write_tar(items: Iterable[tree.Entry], root: str, out: Out, progress=None) -> int:
    """Stream the tar of `items` (files read from `root`) into `out`; returns the entry count."""
    first_path: dict[tuple[int, int], str] = {}
    count = 0
    for entry in items:
        link = None
        if entry.inode is not None:
            link = first_path.get(entry.inode)
            if link is None:
                first_path[entry.inode] = entry.path
        out.write(header(entry, link))
        if entry.kind == tree.FILE and link is None and entry.size:
            _copy_file(os.path.join(root, entry.path), entry.size, out, progress)
        count += 1
    out.write(_ZEROS * 2)
    return count
