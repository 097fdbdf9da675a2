"""The uid/gid mapping of chrootforge's user namespaces.

Unprivileged: 0 -> the caller, 1..65535 -> the caller's /etc/subuid and /etc/subgid range, written by
the setuid helpers newuidmap/newgidmap. Real root: the identity map 0..65535 -> 0..65535, so a stage
extracted by root keeps owners 0/250 as the host sees them and host-root-owned caches stay writable
inside. `single_id=True` is the announced degraded mode: 0 -> the caller only (no other owners).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from chrootforge import log
from chrootforge.errors import UsageError

FULL_RANGE = 65536  # ids 0..65535 inside, what a Gentoo stage needs (portage is 250)

Extent = tuple[int, int, int]  # (inside, outside, count), the /proc/PID/uid_map line format


@dataclass(frozen=True)
class IdMap:
    uid_map: tuple[Extent, ...]
    gid_map: tuple[Extent, ...]
    single_id: bool = False
    # True: newuidmap/newgidmap write the maps (unprivileged); False: written directly (real root
    # or a single-id map of the caller itself).
    use_helpers: bool = False

    def uid_lines(self) -> str:
        return "".join(f"{a} {b} {c}\n" for a, b, c in self.uid_map)

    def gid_lines(self) -> str:
        return "".join(f"{a} {b} {c}\n" for a, b, c in self.gid_map)

    def helper_args(self, which: str) -> list[str]:
        """Arguments after the PID for newuidmap ("uid") or newgidmap ("gid")."""
        extents = self.uid_map if which == "uid" else self.gid_map
        return [str(n) for extent in extents for n in extent]

    @property
    def size(self) -> int:
        return sum(count for _, _, count in self.uid_map)


def identity_map() -> IdMap:
    ext = ((0, 0, FULL_RANGE),)
    return IdMap(ext, ext)


def single_map(uid: int, gid: int) -> IdMap:
    return IdMap(((0, uid, 1),), ((0, gid, 1),), single_id=True)


def parse_subid(text: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first (start, count) range of `user` (by name or number) in a subuid/subgid file."""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user, str(uid)):
            try:
                start, count = int(fields[1]), int(fields[2])
            except ValueError:
                continue
            if count > 0:
                return start, count
    return None


def free_range_start(text: str) -> int:
    """A sub-id range start after every range in `text` (a subuid/subgid file), 65536-aligned."""
    end = 100000
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            end = max(end, int(fields[1]) + int(fields[2]))
    return -(-end // FULL_RANGE) * FULL_RANGE


def full_map(uid: int, gid: int, subuid: tuple[int, int], subgid: tuple[int, int]) -> IdMap:
    """0 -> caller, 1..N -> the sub-id range (N = min(count, 65535))."""
    ucount = min(subuid[1], FULL_RANGE - 1)
    gcount = min(subgid[1], FULL_RANGE - 1)
    return IdMap(((0, uid, 1), (1, subuid[0], ucount)), ((0, gid, 1), (1, subgid[0], gcount)),
                 use_helpers=True)


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def detect_idmap(single_id: bool = False, *, subuid_path: str = "/etc/subuid",
                 subgid_path: str = "/etc/subgid") -> IdMap:
    """The mapping to use for this caller; see the module docstring.

    Unprivileged with single_id=False: a missing sub-id range or helper is a CfError naming the
    fix. single_id=True asks for the degraded single-id map (announced with a notice).
    """
    uid, gid = os.getuid(), os.getgid()
    if single_id:
        log.notice("single-id mode: only id 0 exists inside the namespace; files keep no other "
                   "owners (portage runs with PORTAGE_USERNAME=root, FEATURES=-userpriv)")
        return single_map(uid, gid)
    if uid == 0:
        mapped = _mapped_from_zero("/proc/self/uid_map"), _mapped_from_zero("/proc/self/gid_map")
        if min(mapped) >= FULL_RANGE:
            return identity_map()
        # id 0 of a nested user namespace (unshare -r, a rootless container) with a small map
        raise UsageError(
            f"running as id 0 of a user namespace that maps only {min(mapped)} ids from 0 "
            f"(need {FULL_RANGE})",
            hint="run chrootforge outside that namespace, map 65536 ids into it, or pass "
                 "--single-id for a degraded single-id map")
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    problems, fixes = [], []
    for path in (subuid_path, subgid_path):
        text = _read(path)
        found = parse_subid(text, user, uid)
        if path == subuid_path:
            subuid = found
        else:
            subgid = found
        if found is None:
            problems.append(f"no range for {user} in {path}")
            fixes.append(f'echo "{user}:{free_range_start(text)}:{FULL_RANGE}" >> {path}')
    missing = [tool for tool in ("newuidmap", "newgidmap") if not _helper(tool)]
    if missing:
        problems.append(f"{' and '.join(missing)} not found")
        fixes.append("apt-get install uidmap")
    if problems:
        raise UsageError(
            "cannot map the full id range: " + "; ".join(problems),
            hint="as root: " + " && ".join(fixes)
            + " (pick a range no other user has), or pass --single-id for a degraded single-id map")
    return full_map(uid, gid, subuid, subgid)


def _mapped_from_zero(path: str) -> int:
    """How many consecutive ids from 0 the current user namespace maps (4294967295 on the host)."""
    extents = sorted(tuple(int(n) for n in line.split()) for line in _read(path).splitlines()
                     if line.strip())
    upto = 0
    for inside, _outside, count in extents:
        if inside > upto:
            break
        upto = max(upto, inside + count)
    return upto


def _helper(tool: str) -> str | None:
    """Where the setuid helper is (PATH first, then the usual places; shutil costs an import)."""
    dirs = os.environ.get("PATH", "").split(":") + ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
    for directory in dirs:
        path = os.path.join(directory or ".", tool)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


helper_path = _helper
