"""The owner record of single-id trees (user.rootlesscontainers), pure: no files, no namespaces."""

from __future__ import annotations

import pytest

from chrootforge import ownerxattr as ox
from chrootforge.gentoo import singleid


@pytest.mark.parametrize(
    ("ids", "raw"),
    [
        ((0, 0), b""),  # proto3 leaves zero fields out: 0:0 is "no record"
        ((1000, 0), b"\x08\xe8\x07"),
        ((0, 1000), b"\x10\xe8\x07"),
        ((250, 250), b"\x08\xfa\x01\x10\xfa\x01"),
        ((ox.NOOP, 5), b"\x08\xff\xff\xff\xff\x0f\x10\x05"),  # "unchanged" uid, as the spec writes it
    ],
)
def test_the_rootless_containers_protobuf_bytes(ids, raw):
    assert ox.encode(*ids) == raw
    assert ox.decode(raw) == ids


def test_decode_takes_what_other_writers_send_and_refuses_garbage():
    assert ox.decode(b"\x10\x05\x08\x07") == (7, 5)  # any field order
    assert ox.decode(b"\x08\x01\x1a\x02hi\x10\x02") == (1, 2)  # an unknown length-delimited field
    assert ox.decode(b"\x08\x01\x25\x00\x00\x00\x00") == (1, 0)  # an unknown fixed32 field
    for bad in (b"\x08", b"\x08\x80", b"\x0b", b"\x1a\x05ab", b"\x08" + b"\xff" * 11):
        assert ox.decode(bad) is None, bad


def test_apply_the_record_over_the_files_own_owner():
    assert ox.apply(0, 0, None) == (0, 0)
    assert ox.apply(0, 0, ox.encode(701, 701)) == (701, 701)
    assert ox.apply(3, 4, ox.encode(ox.NOOP, 9)) == (3, 9)
    assert ox.apply(0, 0, b"\x08") is None


def test_symlinks_keep_the_owner_unpack_found_while_unchanged():
    records = ox.Records({"usr/bin/sh": (5, 5, "busybox")})
    assert records.owner("usr/bin/sh", "busybox", 0, 0, None) == (5, 5)
    assert records.owner("usr/bin/sh", "bash", 0, 0, None) == (0, 0)  # relinked by the build
    assert records.owner("usr/bin/ls", "busybox", 0, 0, None) == (0, 0)
    assert records.owner("etc/f", "", 0, 0, ox.encode(0, 42)) == (0, 42)
    assert records.owner("etc/f", "", 0, 0, b"\x08") is None


def test_what_the_shim_could_not_record_is_read_back(tmp_path):
    assert singleid.unrecorded(tmp_path) == []
    (tmp_path / singleid.LOG_NAME).write_text(
        "symlink\t5:5\t/var/tmp/portage/a/b-1/image/usr/lib/l\nfailed\t701:701\t/emerge-root/x\nbroken\n"
    )
    assert singleid.unrecorded(tmp_path) == [
        "/var/tmp/portage/a/b-1/image/usr/lib/l (5:5, a symlink)",
        "/emerge-root/x (701:701)",
    ]
