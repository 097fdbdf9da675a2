"""Parsing of the real mirror formats (see docs/sources.md for where each format comes from)."""

from __future__ import annotations

import hashlib

import pytest

from chrootforge.errors import UsageError, VerificationError
from chrootforge.sources import digests
from chrootforge.sources import mirrorlayout as layout
from chrootforge.sources.mirrors import resolve_mirrors
from tests.helpers.mirror import digests_text

LATEST = """# Latest as of Sun, 26 Nov 2023 17:01:54 +0000
# ts=1701018114
20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz 277958012
"""


def test_parse_latest():
    ref = layout.parse_latest(LATEST, "amd64", "openrc")
    assert (ref.stamp, ref.size) == ("20231126T163200Z", 277958012)
    assert ref.relpath == (
        "releases/amd64/autobuilds/20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz"
    )
    assert (
        layout.latest_relpath("amd64", "openrc") == "releases/amd64/autobuilds/latest-stage3-amd64-openrc.txt"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",  # no data line
        LATEST + LATEST.splitlines()[-1] + "\n",  # two data lines
        "../../etc/passwd 12\n",
        "20231126T163200Z/../../x.tar.xz 1\n",
        "20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz\n",  # no size
        "20231126T163200Z/stage3-amd64-systemd-20231126T163200Z.tar.xz 5\n",  # another variant
        "20231399T163200Z/stage3-amd64-openrc-20231399T163200Z.tar.xz 5\n",  # no such day
        "20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz;id 5\n",
        "20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz/../../../x 5\n",
        "x/../20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz 5\n",
    ],
)
def test_parse_latest_refuses(text):
    with pytest.raises(VerificationError):
        layout.parse_latest(text, "amd64", "openrc")


def test_stage_names():
    assert layout.stage_name("amd64", "openrc") == "stage3-amd64-openrc"
    assert layout.stage_name("amd64", "musl-hardened") == "stage3-amd64-musl-hardened"
    assert layout.stage_name("x86", "openrc") == "stage3-i686-openrc"
    assert layout.stage_name("arm64", "arm64-systemd") == "stage3-arm64-systemd"
    assert layout.stage_name("arm", "armv6j_hardfp-openrc") == "stage3-armv6j_hardfp-openrc"
    assert layout.stage_name("amd64", "nomultilib-systemd") == "stage3-amd64-nomultilib-systemd"
    assert (
        layout.dated_stage("amd64", "openrc", "20240101T170000Z").filename
        == "stage3-amd64-openrc-20240101T170000Z.tar.xz"
    )
    with pytest.raises(UsageError):
        layout.dated_stage("amd64", "openrc", "2024-01-01")
    with pytest.raises(UsageError):
        layout.stage_name("../amd64", "openrc")
    assert layout.snapshot_filename(None) == "gentoo-latest.tar.xz"
    assert layout.snapshot_filename("20240101") == "gentoo-20240101.tar.xz"
    with pytest.raises(UsageError):
        layout.snapshot_filename("2024")


def test_catalyst_digests_layout():
    name = "stage3-amd64-openrc-20231126T163200Z.tar.xz"
    found = digests.parse_digests(digests_text(name, b"payload"), name)
    assert found == {
        "BLAKE2B": hashlib.blake2b(b"payload").hexdigest(),
        "SHA512": hashlib.sha512(b"payload").hexdigest(),
    }
    assert digests.parse_digests(digests_text(name, b"payload"), "other.tar.xz") == {}
    digests.check_digests(
        found, hashlib.sha512(b"payload").hexdigest(), hashlib.blake2b(b"payload").hexdigest(), name
    )
    with pytest.raises(VerificationError, match="BLAKE2B mismatch"):
        digests.check_digests(found, found["SHA512"], "0" * 128, name)


def test_mirror_order(tmp_path):
    assert resolve_mirrors(["https://a/", "https://b"], {"GENTOO_MIRRORS": "https://c"}) == [
        "https://a",
        "https://b",
    ]
    assert resolve_mirrors(None, {"GENTOO_MIRRORS": "https://c  http://d/"}) == ["https://c", "http://d"]
    assert resolve_mirrors(None, {}) == ["https://distfiles.gentoo.org"]
    assert resolve_mirrors(None, {"GENTOO_MIRRORS": "ftp://x rsync://y https://z"}) == ["https://z"]
    assert resolve_mirrors([str(tmp_path)], {}) == [tmp_path.as_uri()]
    with pytest.raises(UsageError):
        resolve_mirrors(["ftp://x"], {})
    with pytest.raises(UsageError):
        resolve_mirrors([str(tmp_path / "missing")], {})
