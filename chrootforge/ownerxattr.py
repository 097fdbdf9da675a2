"""Recorded owners: how a single-id tree keeps the owners it cannot give its files.

A single-id user namespace maps only id 0 (sandbox/idmap.py): chown to any other id fails with
EINVAL, so a stage, a parent image or a package cannot own files as 250 or 701 there. The tree keeps
those owners in the `user.rootlesscontainers` xattr instead, the convention of the rootless
containers project (github.com/rootless-containers/proto, used by `umoci unpack --rootless` and
PRoot): a protobuf `Resource { uint32 uid = 1; uint32 gid = 2; }`, absent for 0:0, where
0xFFFFFFFF means "as the file's own owner". Whoever writes a single-id tree records the owner
there (extraction, unpack, the build's chown shim, gentoo/ownershim.c); commit reads it back, so
the layer holds the real owner and not the xattr (oci/tree.py).

Symlinks cannot carry user.* xattrs (the kernel refuses them): their owner cannot be recorded.
"""

from __future__ import annotations

import errno
import os

XATTR = "user.rootlesscontainers"
NOOP = 0xFFFFFFFF  # "unchanged": the file's own owner


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(uid: int, gid: int) -> bytes:
    """The canonical proto3 encoding: zero fields are left out (so 0:0 is empty: remove it)."""
    out = b""
    if uid:
        out += b"\x08" + _varint(uid)
    if gid:
        out += b"\x10" + _varint(gid)
    return out


def decode(data: bytes) -> tuple[int, int] | None:
    """(uid, gid) of a record (NOOP where a field says "unchanged"); None when it is malformed."""
    fields = {1: 0, 2: 0}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _read_varint(data, pos)
                if number in fields:
                    fields[number] = value & 0xFFFFFFFF
            elif wire == 2:  # a length-delimited field of a newer schema: skipped
                length, pos = _read_varint(data, pos)
                pos += length
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                return None
    except IndexError:
        return None
    if pos != len(data):
        return None
    return fields[1], fields[2]


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise IndexError("varint too long")


def apply(stat_uid: int, stat_gid: int, value: bytes | None) -> tuple[int, int] | None:
    """The owner a recorded file means: the record over the file's own (stat) owner; None when
    the record is malformed."""
    if value is None:
        return stat_uid, stat_gid
    ids = decode(value)
    if ids is None:
        return None
    uid, gid = ids
    return (stat_uid if uid == NOOP else uid), (stat_gid if gid == NOOP else gid)


def fd_path(dirfd: int, name: str) -> str:
    """A path reaching `name` in the directory `dirfd` without following its last component
    (the *xattr calls have no dir_fd form)."""
    return f"/proc/self/fd/{dirfd}/{name}"


def read(path: str) -> bytes | None:
    """The record of `path` (not followed), or None."""
    try:
        return os.getxattr(path, XATTR, follow_symlinks=False)
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return None
        raise


def record(path: str, uid: int, gid: int) -> bool:
    """Record `uid:gid` as the owner of `path` (not followed; removed for 0:0). False when it
    cannot hold a record (a symlink, or a file system without user xattrs)."""
    if uid == 0 and gid == 0:
        try:
            os.removexattr(path, XATTR, follow_symlinks=False)
        except OSError as err:  # none there, or none possible (a symlink): 0:0 either way
            if err.errno not in (errno.ENODATA, errno.EPERM, errno.ENOTSUP):
                raise
        return True
    try:
        os.setxattr(path, XATTR, encode(uid, gid), follow_symlinks=False)
    except OSError as err:
        if err.errno in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
            return False
        raise
    return True


# Symlinks whose owners a single-id unpack could not record: path -> (uid, gid, link target).
SymlinkOwners = dict[str, tuple[int, int, str]]


class Records:
    """How a commit reads a single-id tree's owners: each file's record (and the record itself is
    not content), and for symlinks, which hold none, the owners unpack found in the parent image,
    kept while the build leaves the link as it was (same target, still 0:0)."""

    __slots__ = ("symlinks",)

    def __init__(self, symlinks: SymlinkOwners | None = None) -> None:
        self.symlinks: SymlinkOwners = dict(symlinks or {})

    def __reduce__(self):
        return (type(self), (self.symlinks,))

    def owner(self, rel: str, link: str, uid: int, gid: int, value: bytes | None) -> tuple[int, int] | None:
        """The owner of the entry `rel` (stat owner uid:gid, its record `value`, its symlink
        target `link` or ""); None when the record is malformed."""
        if link:
            kept = self.symlinks.get(rel)
            if kept is not None and (uid, gid) == (0, 0) and kept[2] == link:
                return kept[0], kept[1]
            return uid, gid
        return apply(uid, gid, value)
