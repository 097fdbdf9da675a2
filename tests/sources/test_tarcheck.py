"""The streaming header validator, on hand-made tar streams (pure: no extraction)."""

from __future__ import annotations

import io
import tarfile

import pytest

from chrootforge.sources.tarcheck import TarStreamChecker, UnsafeArchive
from tests.helpers.mirror import make_tar, member


def run_checker(raw: bytes, chunk: int | None = None) -> tuple[bytes, TarStreamChecker]:
    checker = TarStreamChecker()
    out = []
    step = chunk or len(raw) or 1
    for pos in range(0, len(raw), step):
        out.extend(bytes(c) for c in checker.feed(raw[pos : pos + step]))
    out.extend(bytes(c) for c in checker.finish())
    return b"".join(out), checker


def names_in(raw: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.getnames()


def test_forwards_a_clean_archive_unchanged_whatever_the_chunking():
    raw = make_tar(
        [member("./a", "dir"), member("./a/b", data=b"x" * 1000), member("./a/l", "symlink", link="b")], ""
    )
    whole, checker = run_checker(raw)
    assert whole == raw[: len(whole)] and names_in(whole) == ["./a", "./a/b", "./a/l"]
    for chunk in (1, 7, 511, 513, 4096):
        assert run_checker(raw, chunk)[0] == whole
    assert checker.stats.members == 3


def test_skips_dev_members_with_their_extended_headers():
    long_dev = "./dev/" + "d" * 150  # needs a PAX path header, which must be dropped too
    raw = make_tar(
        [
            member("./dev", "dir"),
            member("./dev/null", "char"),
            member(long_dev, data=b"zz"),
            member("./etc", "dir"),
            member("./etc/" + "e" * 150, data=b"ok"),
        ],
        "",
    )
    out, checker = run_checker(raw, 100)
    assert names_in(out) == ["./dev", "./etc", "./etc/" + "e" * 150]
    assert checker.stats.skipped_dev == 2


def test_gnu_long_names_are_checked():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("ok/" + "x" * 120 + "/../../../../etc/evil")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UnsafeArchive, match=r"'\.\.'"):
        run_checker(buf.getvalue())


@pytest.mark.parametrize(
    "members, pattern",
    [
        ([member("../x", data=b"x")], r"'\.\.' in path"),
        ([member("/etc/x", data=b"x")], "absolute path"),
        ([member("./a/../../x", data=b"x")], r"'\.\.' in path"),
        ([member("./l", "symlink", link="/etc"), member("./l/passwd", data=b"x")], "writes through symlink"),
        ([member("./l", "symlink", link="../../.."), member("./l/x", data=b"x")], "climbs out"),
        (
            [member("./d", "dir"), member("./d/l", "symlink", link="../.."), member("./d/l/x", data=b"x")],
            "climbs out",
        ),
        (
            [
                member("./a", "symlink", link="b"),
                member("./b", "symlink", link="/"),
                member("./a/x", data=b"x"),
            ],
            "writes through symlink",
        ),
        ([member("./h", "hardlink", link="/etc/shadow")], "absolute hardlink target"),
        ([member("./h", "hardlink", link="../etc/shadow")], r"'\.\.' in hardlink target"),
        ([member("./h", "hardlink", link="etc/shadow")], "not an earlier file"),
        (
            [
                member("./s", "symlink", link="/etc"),
                member("./h", "hardlink", link="s"),
                member("./h/x", data=b""),
            ],
            "writes through symlink",
        ),
        (
            [member("./l", "symlink", link="/etc"), member("./h", "hardlink", link="l/shadow")],
            "writes through symlink",
        ),
        ([member("./sda", "block")], "block device outside /dev"),
        ([member("./usr/null", "char")], "character device outside /dev"),
        ([member("./l", "symlink", link="x"), member("./l", "dir")], "redefines a symlink"),
        ([member("./dev/null", "char"), member("./n", "hardlink", link="./dev/null")], "skipped member"),
        ([member("./dev", "symlink", link="/")], "/dev must be a directory"),
    ],
)
def test_refuses_hostile_members(members, pattern):
    with pytest.raises(UnsafeArchive, match=pattern):
        run_checker(make_tar(members, ""))


def test_allows_relative_symlinks_that_stay_inside():
    raw = make_tar(
        [
            member("./usr", "dir"),
            member("./usr/lib", "dir"),
            member("./lib", "symlink", link="usr/lib"),
            member("./lib/libc.so", data=b"elf"),
            member("./usr/lib/up", "symlink", link="../.."),
            member("./usr/lib/up/etc", "dir"),
        ],
        "",
    )
    out, _ = run_checker(raw)
    assert "./lib/libc.so" in names_in(out)


def test_truncated_and_corrupt_streams():
    raw = make_tar([member("./a", data=b"x" * 5000)], "")
    with pytest.raises(UnsafeArchive, match="truncated"):
        run_checker(raw[:2048])
    bad = bytearray(raw)
    bad[0] ^= 0xFF  # breaks the header checksum
    with pytest.raises(UnsafeArchive, match="checksum"):
        run_checker(bytes(bad))


def test_nothing_after_the_end_marker_is_forwarded():
    raw = make_tar([member("./a", data=b"x")], "")
    trailer = make_tar([member("/etc/evil", data=b"x")], "")  # appended after the end marker
    out, _ = run_checker(raw + trailer)
    assert names_in(out) == ["./a"] and b"evil" not in out


def test_ustar_prefix_is_read_like_gnu_tar_whatever_the_version():
    """A ustar header's prefix field joins the name even with an odd version field."""
    raw = bytearray(make_tar([member("./l", "symlink", link="/tmp")], ""))
    info = tarfile.TarInfo("x")
    info.size = 1
    block = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    block[345:346] = b"l"  # prefix "l": GNU tar extracts "l/x", through the symlink
    block[263:265] = b"  "  # version "  " instead of "00"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block[:512])
    end = raw.index(bytes(1024), 512)
    hostile = bytes(raw[:end]) + bytes(block[:512]) + b"x".ljust(512, b"\0") + bytes(1024)
    with pytest.raises(UnsafeArchive, match="writes through symlink"):
        run_checker(hostile)


def test_non_regular_member_with_data_is_refused():
    info = tarfile.TarInfo("./d")
    info.type = tarfile.DIRTYPE
    block = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    block[124:136] = b"%011o\0" % 512
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block[:512])
    with pytest.raises(UnsafeArchive, match="data size"):
        run_checker(bytes(block[:512]) + bytes(512) + bytes(1024))


def test_records_the_owners_a_single_id_extraction_cannot_give():
    """record_owners: every extracted member not owned by 0:0, the last of a name winning; PAX
    uid/gid over the header's (big ids); hardlinks share their target's; /dev members skipped."""
    big = member("./big", data=b"b", uid=7)
    big[0].pax_headers = {"uid": "3000000", "gid": "3000001"}  # beyond the header's octal field
    raw = make_tar(
        [
            member("./d", "dir", uid=250, gid=250),
            member("./d/f", data=b"x", gid=5),
            member("./d/h", "hardlink", link="./d/f", uid=9, gid=9),
            member("./d/again", data=b"1", uid=701, gid=701),
            member("./d/again", data=b"2"),  # replaced by a root-owned member: no record
            member("./dev", "dir"),
            member("./dev/tty", "char", uid=0, gid=5),
            big,
        ],
        "",
    )
    checker = TarStreamChecker(record_owners=True)
    checker.feed(raw)
    checker.finish()
    assert checker.owners == {
        ("d",): (250, 250),
        ("d", "f"): (0, 5),
        ("big",): (3000000, 3000001),
    }
    assert run_checker(raw)[1].owners is None  # not asked for: nothing is kept
