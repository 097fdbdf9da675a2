"""Hashing and the stage3 .DIGESTS format.

A catalyst .DIGESTS file is a series of blocks: a `# <ALGO> HASH` line, then `<hex>  <filename>`
lines (one for the tarball, one for its .CONTENTS.gz, ...). Only the lines naming our file matter.
"""

from __future__ import annotations

import hashlib
import os
import re

from chrootforge.errors import VerificationError

REQUIRED = ("SHA512", "BLAKE2B")
_HEADER = re.compile(r"^#\s*([A-Za-z0-9_-]+)\s+HASH\s*\Z")
_LINE = re.compile(r"^([0-9a-fA-F]{32,256})\s+\*?(\S.*?)\s*\Z")


def parse_digests(text: str, filename: str) -> dict[str, str]:
    """{'SHA512': hex, 'BLAKE2B': hex, ...} for `filename`; conflicting lines are refused."""
    found: dict[str, str] = {}
    algo = None
    for line in text.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            algo = header.group(1).upper()
            continue
        match = _LINE.match(line.strip())
        if not match or algo is None:
            continue
        if os.path.basename(match.group(2)) != filename:
            continue
        value = match.group(1).lower()
        if found.get(algo, value) != value:
            raise VerificationError(
                f"DIGESTS has two different {algo} lines for {filename}",
                hint="the DIGESTS file was altered; fetch it again or try another mirror",
            )
        found[algo] = value
    return found


def hash_file(path: str | os.PathLike, progress=None) -> tuple[str, str]:
    """(sha512, blake2b) hex digests in one pass."""
    sha, b2 = hashlib.sha512(), hashlib.blake2b()
    with open(path, "rb", buffering=0) as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            sha.update(chunk)
            b2.update(chunk)
            if progress is not None:
                progress.update(len(chunk))
    return sha.hexdigest(), b2.hexdigest()


def check_digests(expected: dict[str, str], sha512: str, blake2b: str, filename: str) -> None:
    missing = [a for a in REQUIRED if a not in expected]
    if missing:
        raise VerificationError(
            f"DIGESTS has no {' or '.join(missing)} line for {filename}",
            hint="the DIGESTS file does not belong to this tarball",
        )
    actual = {"SHA512": sha512, "BLAKE2B": blake2b}
    for algo in REQUIRED:
        if expected[algo] != actual[algo]:
            raise VerificationError(
                f"{filename}: {algo} mismatch (expected {expected[algo][:16]}…, got {actual[algo][:16]}…)",
                hint="the download is damaged or was tampered with; fetch it again",
            )
