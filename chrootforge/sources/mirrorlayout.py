"""Where things live on a Gentoo mirror, and the latest-stage3 file format. Pure functions.

See docs/sources.md for the sources of each convention.
"""

from __future__ import annotations

import dataclasses
import re

from chrootforge.errors import UsageError, VerificationError
from chrootforge.sources import grammar

DEFAULT_MIRROR = "https://distfiles.gentoo.org"
# releases/<dir-arch>/ holds stages whose file names use a more specific "micro" arch
MICROARCH = {"x86": "i686", "arm": "armv7a_hardfp", "riscv": "rv64_lp64d"}
# stage3-<this>-...: the arch (Gentoo's) of the other words releases use
STAGE_WORDS = {
    "amd64": "amd64",
    "arm64": "arm64",
    "ppc64": "ppc64",
    "ppc64le": "ppc64",
    "s390x": "s390",
    "i486": "x86",
}
# the first word of a variant without a micro-arch (e.g. openrc, musl-hardened, nomultilib-systemd)
VARIANT_WORDS = {
    "openrc",
    "systemd",
    "musl",
    "hardened",
    "nomultilib",
    "llvm",
    "desktop",
    "x32",
    "mergedusr",
    "splitusr",
    "selinux",
    "minimal",
    "glibc",
}
_DATA = re.compile(r"^(\S+)/(\S+)\s+(\d+)\s*\Z")
_LATEST_HINT = "the mirror's latest-stage3 file is not in the expected format; try another mirror or --date"


@dataclasses.dataclass(frozen=True)
class StageRef:
    """A mirror release of a stage3. Its fields become a URL and cache names, so it checks them
    itself against Gentoo's grammar, whatever made it (a spec, a lock file, a latest file)."""

    arch: str
    stamp: str
    filename: str
    size: int | None = None

    def __post_init__(self) -> None:
        problem = (
            grammar.arch(self.arch)
            or grammar.stamp(self.stamp)
            or grammar.stage_file(self.filename, self.stamp)
        )
        if problem:
            raise UsageError(f"refusing the stage3 release {self.stamp!r}/{self.filename!r}: {problem}")

    @property
    def relpath(self) -> str:
        return f"releases/{self.arch}/autobuilds/{self.stamp}/{self.filename}"

    @property
    def cache_key(self) -> str:
        return f"stage3/{self.arch}/{self.stamp}/{self.filename}"


def stage_name(arch: str, variant: str) -> str:
    """'amd64','openrc' -> 'stage3-amd64-openrc' (x86 -> i686, arm -> armv7a_hardfp, ...)."""
    for problem in (grammar.arch(arch), grammar.variant(variant)):
        if problem:
            raise UsageError(f"bad stage3: {problem}")
    if variant.split("-", 1)[0] not in VARIANT_WORDS:
        return f"stage3-{variant}"  # the variant already names its micro-arch (armv6j_hardfp-openrc)
    return f"stage3-{MICROARCH.get(arch, arch)}-{variant}"


def stage_arch(filename: str) -> str | None:
    """Gentoo's arch of a stage3 named the release way (stage3-amd64-openrc-..., stage3-i686-...,
    stage3-armv7a_hardfp-...); None for other names."""
    if not filename.startswith("stage3-"):
        return None
    word = filename[len("stage3-") :].split("-", 1)[0]
    by_micro = {micro: arch for arch, micro in MICROARCH.items()}
    if word in by_micro:
        return by_micro[word]
    if word in STAGE_WORDS:
        return STAGE_WORDS[word]
    if re.fullmatch(r"arm(v\d\w*)?", word.split("_", 1)[0]):
        return "arm"
    if word.startswith("rv64"):
        return "riscv"
    return None


def latest_relpath(arch: str, variant: str) -> str:
    return f"releases/{arch}/autobuilds/latest-{stage_name(arch, variant)}.txt"


def dated_stage(arch: str, variant: str, stamp: str) -> StageRef:
    if grammar.stamp(stamp):
        raise UsageError(f"bad --date {stamp!r}", hint="stage3 dates look like 20240101T170000Z")
    return StageRef(arch, stamp, f"{stage_name(arch, variant)}-{stamp}.tar.xz")


def parse_latest(text: str, arch: str, variant: str) -> StageRef:
    """The verified body of latest-stage3-*.txt: '#' comments, then '<stamp>/<file> <size>'."""
    expected = stage_name(arch, variant)
    refs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _DATA.match(line)
        if not match:
            raise VerificationError(
                f"unexpected line in the latest-stage3 file: {line[:80]!r}", hint=_LATEST_HINT
            )
        stamp, filename, size = match.groups()
        if grammar.stamp(stamp) or grammar.stage_file(filename, stamp):
            raise VerificationError(
                f"the latest-stage3 file names {line[:80]!r}, not a stage3 release", hint=_LATEST_HINT
            )
        if not filename.startswith(f"{expected}-{stamp}."):
            raise VerificationError(
                f"the latest file names {filename}, not a {expected} stage", hint=_LATEST_HINT
            )
        refs.append(StageRef(arch, stamp, filename, int(size)))
    if len(refs) != 1:
        raise VerificationError(
            f"the latest-stage3 file has {len(refs)} data lines, expected 1", hint=_LATEST_HINT
        )
    return refs[0]


def snapshot_filename(date: str | None) -> str:
    value = date or "latest"
    if value != "latest" and grammar.day(value):
        raise UsageError(f"bad snapshot date {value!r}", hint="use YYYYMMDD or 'latest'")
    return f"gentoo-{value}.tar.xz"


def join(mirror: str, relpath: str) -> str:
    return mirror.rstrip("/") + "/" + relpath
