"""Recognize a tarball's compression by its magic bytes and pick the fastest decompressor."""

from __future__ import annotations

import os
import shutil

from chrootforge.errors import VerificationError

_MAGIC = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
)

# Multi-threaded tools first; each candidate is (binary, args...).
_DECOMPRESSORS: dict[str, list[tuple[str, ...]]] = {
    "xz": [("xz", "-T0", "-dc"), ("xz", "-dc")],
    "zstd": [("zstd", "-T0", "-dcq"), ("zstd", "-dcq")],
    "gzip": [("pigz", "-dc"), ("gzip", "-dc")],
    "bzip2": [("lbzip2", "-dc"), ("pbzip2", "-dc"), ("bzip2", "-dc")],
}


def sniff(path: str | os.PathLike) -> str:
    """'xz', 'zstd', 'gzip', 'bzip2' or 'tar'; anything else is refused with a helpful reason."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    if not head:
        raise VerificationError(f"{path} is empty", hint="the download was cut or the file is a stub")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise VerificationError(
            f"{path} is an HTML page, not a tarball",
            hint="the mirror served an error page; try another mirror",
        )
    raise VerificationError(
        f"{path} is not a tar archive compressed with xz, zstd, gzip or bzip2",
        hint="check the file; only .tar, .tar.xz, .tar.zst, .tar.gz, .tar.bz2 are known",
    )


def decompressor(kind: str) -> list[str] | None:
    """argv that writes the decompressed stream to stdout (None for a plain tar)."""
    if kind == "tar":
        return None
    for candidate in _DECOMPRESSORS[kind]:
        path = shutil.which(candidate[0])
        if path:
            return [path, *candidate[1:]]
    raise VerificationError(f"no {kind} decompressor found", hint=f"install {_DECOMPRESSORS[kind][-1][0]}")
