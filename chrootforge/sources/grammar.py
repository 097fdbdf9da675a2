"""Gentoo's names, as checks: each returns None, or what is wrong in one sentence (like spec.checks).

Everything that becomes part of a mirror URL or of a path in the cache passes one of these first,
whatever its source: the spec ([stage3] arch, variant, date; [tree] snapshot), the command line, a
mirror's latest-stage3 file, or NS/chrootforge.lock. The grammar is what Gentoo publishes
(docs/sources.md): releases/<arch>/autobuilds/<stamp>/stage3-<arch>-<variant>-<stamp>.tar.xz,
snapshots/gentoo-<YYYYMMDD>.tar.xz, OpenPGP v4 fingerprints, sha512 and BLAKE2B digests in hex.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

ARCH = re.compile(r"[a-z][a-z0-9_]*")  # a releases/ directory: amd64, arm64, x86, riscv, ...
VARIANT = re.compile(r"[a-z0-9][a-z0-9_+]*(?:-[a-z0-9_+]+)*")  # openrc, musl-hardened, armv6j_hardfp-openrc
STAMP = re.compile(r"\d{8}T\d{6}Z")  # a release: 20240101T170309Z
STAGE_FILE = re.compile(r"stage3-[a-z0-9_+]+(?:-[a-z0-9_+]+)*-(\d{8}T\d{6}Z)\.tar\.(?:xz|bz2|zst|gz)")
DAY = re.compile(r"\d{8}")  # a snapshot date: 20240101
SNAPSHOT_FILE = re.compile(r"gentoo-(\d{8}|latest)\.tar\.(?:xz|bz2)")
# a local file's name, as its owner named it: one component, no leading dot, no control characters
FILE_NAME = re.compile(r"[^./\x00-\x1f\x7f][^/\x00-\x1f\x7f]{0,254}")
SHA512 = re.compile(r"[0-9a-f]{128}")
FINGERPRINT = re.compile(r"[0-9A-Fa-f]{40}")  # OpenPGP v4
TREE_ID = re.compile(r"sha256:[0-9a-f]{64}")  # gentoo.state.tree_id
REPO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+-]*")  # PMS: a repository name
UNVERIFIED = "UNVERIFIED"  # the signer of an input taken with --insecure-skip-verify


def _show(value) -> str:
    return repr(value)[:80]


def _pattern(regex: re.Pattern, what: str) -> Callable[[str], str | None]:
    """A check that `value` is a string `regex` matches whole."""

    def check(value: str) -> str | None:
        if isinstance(value, str) and regex.fullmatch(value):
            return None
        return f"{_show(value)} is not {what}"

    return check


arch = _pattern(ARCH, "a Gentoo arch (amd64, arm64, x86, ...)")
variant = _pattern(VARIANT, "a stage3 variant (openrc, systemd, musl-hardened, ...)")
file_name = _pattern(FILE_NAME, "a plain file name")  # a local file's name: one plain component
sha512 = _pattern(SHA512, "a sha512 (128 lower-case hex digits)")
tree_id = _pattern(TREE_ID, "a tree id (sha256:<64 hex digits>)")
repo_name = _pattern(REPO_NAME, "a repository name")
_fingerprint = _pattern(FINGERPRINT, f"an OpenPGP fingerprint (40 hex digits) or {UNVERIFIED}")


def _dated(regex: re.Pattern, layout: str, what: str) -> Callable[[str], str | None]:
    """A check that `value` matches `regex` and is a real date (and time) in strptime's `layout`."""

    def check(value: str) -> str | None:
        if isinstance(value, str) and regex.fullmatch(value):
            try:
                time.strptime(value, layout)
                return None
            except ValueError:
                pass
        return f"{_show(value)} is not {what}"

    return check


stamp = _dated(STAMP, "%Y%m%dT%H%M%SZ", "a release stamp (YYYYMMDDTHHMMSSZ, e.g. 20240101T170309Z)")
day = _dated(DAY, "%Y%m%d", "a snapshot date (YYYYMMDD)")


def stage_file(value: str, release: str | None = None) -> str | None:
    """A mirror's stage3 file name, of the release `release` when given."""
    match = STAGE_FILE.fullmatch(value) if isinstance(value, str) else None
    if not match or stamp(match.group(1)):
        return f"{_show(value)} is not a stage3 file name (stage3-<arch>-<variant>-<stamp>.tar.xz)"
    if release is not None and match.group(1) != release:
        return f"{_show(value)} is not of the release {release}"
    return None


def snapshot_file(value: str) -> str | None:
    match = SNAPSHOT_FILE.fullmatch(value) if isinstance(value, str) else None
    if not match or (match.group(1) != "latest" and day(match.group(1))):
        return f"{_show(value)} is not a snapshot file name (gentoo-YYYYMMDD.tar.xz)"
    return None


def signer(value: str) -> str | None:
    return None if value == UNVERIFIED else _fingerprint(value)


def same_signer(a: str | None, b: str | None) -> bool:
    return (a or UNVERIFIED).upper() == (b or UNVERIFIED).upper()
