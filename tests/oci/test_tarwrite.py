"""Tar headers: the direct ustar path gives tarfile's bytes, so layer digests do not move."""

from __future__ import annotations

import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from chrootforge.oci import tree
from chrootforge.oci.tarwrite import WHITEOUT, header

_TYPES = {
    tree.FILE: tarfile.REGTYPE,
    tree.DIR: tarfile.DIRTYPE,
    tree.SYMLINK: tarfile.SYMTYPE,
    tree.CHAR: tarfile.CHRTYPE,
    tree.BLOCK: tarfile.BLKTYPE,
    tree.FIFO: tarfile.FIFOTYPE,
}


def tarfile_header(entry: tree.Entry, hardlink_to: str | None = None) -> bytes:
    """How every header was written before the direct path: through tarfile alone."""
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
            "SCHILY.xattr." + n: v.decode("utf-8", "surrogateescape") for n, v in entry.xattrs
        }
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


NAME = st.one_of(
    st.text(alphabet="abcXYZ019._-/ ", min_size=1, max_size=160),  # ASCII, across 100 characters
    st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s),  # anything else
    st.sampled_from(["a" * 100, "a" * 101, "d/" * 50, "é" * 50, "x\udcff"]),  # edges, undecodable bytes
)
NUMBER = st.one_of(st.integers(0, 1000), st.sampled_from([8**7 - 1, 8**7, 2**32 - 1]))
BIG = st.one_of(st.integers(0, 10**6), st.sampled_from([8**11 - 1, 8**11, 2**40]))
ENTRY = st.builds(
    tree.Entry,
    path=NAME,
    kind=st.sampled_from([*_TYPES, WHITEOUT]),
    mode=st.integers(0, 0o7777),
    uid=NUMBER,
    gid=NUMBER,
    mtime=st.one_of(BIG, st.just(-1)),
    size=BIG,
    link=st.one_of(st.just(""), NAME),
    rdev=st.tuples(NUMBER, NUMBER),
    xattrs=st.one_of(
        st.just(()), st.just((("user.k", b"v"),)), st.just((("security.capability", b"\x01\x00\xff"),))
    ),
)


@settings(max_examples=3000, deadline=None)
@given(ENTRY, st.one_of(st.none(), NAME))
def test_header_bytes_are_tarfiles(entry, hardlink_to):
    try:
        expected = tarfile_header(entry, hardlink_to)
    except ValueError:  # a number no header holds (e.g. a device number >= 8**7): tarfile refuses it
        return
    assert header(entry, hardlink_to) == expected


def test_common_entries_take_the_direct_path(monkeypatch):
    """The ordinary entries of a root filesystem do not go through tarfile at all."""

    def refuse(*args, **kwargs):
        raise AssertionError("tarfile was used")

    entries = [
        tree.Entry("usr", tree.DIR, 0o755, 0, 0, 1700000000),
        tree.Entry("usr/bin/hello", tree.FILE, 0o4755, 0, 0, 1700000000, size=12345),
        tree.Entry("bin", tree.SYMLINK, 0o777, 0, 0, 1700000000, link="usr/bin"),
        tree.Entry("dev/null", tree.CHAR, 0o666, 0, 0, 1700000000, rdev=(1, 3)),
        tree.Entry("etc/.wh.old", WHITEOUT, 0o644, 0, 0, 1700000000),
    ]
    expected = [tarfile_header(e) for e in entries] + [tarfile_header(entries[1], "usr/bin/hi")]
    monkeypatch.setattr(tarfile.TarInfo, "tobuf", refuse)
    assert [header(e) for e in entries] + [header(entries[1], "usr/bin/hi")] == expected
