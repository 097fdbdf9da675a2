"""The uid/gid mapping of chrootforge's user namespaces.

Unprivileged: 0 -> the caller, 1..65535 -> the caller's /etc/subuid and /etc/subgid range, written by
the setuid helpers newuidmap/newgidmap.

Real root is never mapped to itself: id 0 inside would be host uid 0, and host-wide files such as
/proc/sys/kernel/core_pattern check the caller's host uid. Root gets an unprivileged range instead:
root's own /etc/subuid and /etc/subgid entry when it has one, else DEFAULT_ROOT_RANGE. So, as root,
everything the namespace writes (extracted stages, build roots, binary packages) is owned on the host
by that range (image id N is host id start+N), and root prepares the directories the namespace writes
into by giving them to the range's first id (see owned.py).

`single_id=True` is the announced degraded mode: only id 0 exists inside (the caller, or for root the
first id of its range).
"""

from __future__ import annotations

import os
import pwd

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.values import Value

FULL_RANGE = 65536  # ids 0..65535 inside, what a Gentoo stage needs (portage is 250)
# Root's range when /etc/subuid has no entry for root: right after systemd's range for containers
# (524288..1879048191, systemd's UIDS-GIDS.md) and below 2^31, where no login user lives.
DEFAULT_ROOT_RANGE = (1879048192, FULL_RANGE)

Extent = tuple[int, int, int]  # (inside, outside, count), the /proc/PID/uid_map line format


class IdMap(Value):
    __slots__ = ("uid_map", "gid_map", "single_id", "use_helpers")  # noqa: RUF023 - the fields' order
    uid_map: tuple[Extent, ...]
    gid_map: tuple[Extent, ...]
    single_id: bool
    # True: newuidmap/newgidmap write the maps (unprivileged); False: written directly (real root
    # or a single-id map of the caller itself).
    use_helpers: bool

    def __init__(
        self,
        uid_map: tuple[Extent, ...],
        gid_map: tuple[Extent, ...],
        single_id: bool = False,
        use_helpers: bool = False,
    ) -> None:
        self._init(uid_map, gid_map, single_id, use_helpers)

    def uid_lines(self) -> str:
        return "".join(f"{a} {b} {c}\n" for a, b, c in self.uid_map)

    def gid_lines(self) -> str:
        return "".join(f"{a} {b} {c}\n" for a, b, c in self.gid_map)

    def nested_lines(self, which: str) -> str:
        """The "uid" or "gid" map of a user namespace nested in this one that maps its ids 1:1 onto
        this one's (`0 0 65536`, or `0 0 1` single-id)."""
        extents = self.uid_map if which == "uid" else self.gid_map
        return "".join(f"{first} {first} {count}\n" for first, _outside, count in extents)

    def helper_args(self, which: str) -> list[str]:
        """Arguments after the PID for newuidmap ("uid") or newgidmap ("gid")."""
        extents = self.uid_map if which == "uid" else self.gid_map
        return [str(n) for extent in extents for n in extent]

    @property
    def size(self) -> int:
        return sum(count for _, _, count in self.uid_map)

    @property
    def host_uid(self) -> int:
        """The host uid of id 0 inside (who owns what the namespace's root creates)."""
        return _outside(self.uid_map, 0)

    @property
    def host_gid(self) -> int:
        return _outside(self.gid_map, 0)

    def to_host(self, uid: int, gid: int) -> tuple[int, int] | None:
        """Host ids of the inside ids (uid, gid); None when the map does not cover them."""
        host = _outside(self.uid_map, uid), _outside(self.gid_map, gid)
        return None if -1 in host else host

    def to_inside(self, uid: int, gid: int) -> tuple[int, int] | None:
        """Inside ids of host ids; None when the map does not cover them."""
        inside = _inside(self.uid_map, uid), _inside(self.gid_map, gid)
        return None if -1 in inside else inside


def _outside(extents: tuple[Extent, ...], inside: int) -> int:
    for first, outside, count in extents:
        if first <= inside < first + count:
            return outside + inside - first
    return -1


def _inside(extents: tuple[Extent, ...], outside: int) -> int:
    for first, start, count in extents:
        if start <= outside < start + count:
            return first + outside - start
    return -1


def range_map(uid_start: int, gid_start: int, count: int = FULL_RANGE) -> IdMap:
    """0..count-1 -> a host range (real root's map; written directly, no helpers)."""
    return IdMap(((0, uid_start, count),), ((0, gid_start, count),))


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
    return IdMap(
        ((0, uid, 1), (1, subuid[0], ucount)), ((0, gid, 1), (1, subgid[0], gcount)), use_helpers=True
    )


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def detect_idmap(
    single_id: bool = False, *, subuid_path: str = "/etc/subuid", subgid_path: str = "/etc/subgid"
) -> IdMap:
    """The mapping to use for this caller; see the module docstring.

    Unprivileged with single_id=False: a missing sub-id range or helper is a CfError naming the
    fix. single_id=True asks for the degraded single-id map (announced with a notice).
    """
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and single_id:
        _announce_single_id()
        return single_map(*_root_single_ids(subuid_path, subgid_path))
    if uid == 0:
        return root_map(subuid_path, subgid_path)
    if single_id:
        _announce_single_id()
        return single_map(uid, gid)
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
            hint="as root: "
            + " && ".join(fixes)
            + " (pick a range no other user has), or pass --single-id (only id 0 inside; other owners "
            "are kept as xattr records: README, Without /etc/subuid)",
        )
    assert subuid is not None and subgid is not None  # else `problems` raised above
    return full_map(uid, gid, subuid, subgid)


def _announce_single_id() -> None:
    log.notice(
        "single-id mode (no /etc/subuid range used): only id 0 exists inside the namespace, so "
        "chown to any other id fails there; stages and images extracted in this mode keep their "
        "other owners in the user.rootlesscontainers xattr (README: Running rootless)"
    )


def root_map(subuid_path: str = "/etc/subuid", subgid_path: str = "/etc/subgid") -> IdMap:
    """Id 0's map: an unprivileged range, never the caller's own id 0 when that could be host root.

    On the host, or in a user namespace whose id 0 is its parent's id 0: root's sub-id ranges, else
    DEFAULT_ROOT_RANGE. In a user namespace whose id 0 is an unprivileged id of its parent (a rootless
    container), that id 0 is no longer host root, so its own ids 0..65535 are used as they are."""
    own = [_ns_extents("/proc/self/uid_map"), _ns_extents("/proc/self/gid_map")]
    if _unprivileged_zero(own):
        if all(_covers(ext, 0) for ext in own):
            return range_map(0, 0)
        raise UsageError(
            f"running as id 0 of a user namespace that maps fewer than {FULL_RANGE} ids from 0",
            hint="map 65536 ids into that namespace, or pass --single-id (only id 0 inside; README, "
            "Without /etc/subuid)",
        )
    starts = _root_range_starts(subuid_path, subgid_path)
    for ext, start, path in zip(own, starts, (subuid_path, subgid_path), strict=True):
        if ext and not _covers(ext, start):
            raise UsageError(
                f"running as id 0 of a user namespace that does not map {start}..{start + FULL_RANGE - 1}, "
                "the range chrootforge gives root",
                hint=f"give root a range in {path} that this namespace maps, or pass --single-id",
            )
    return range_map(starts[0], starts[1])


def _unprivileged_zero(own) -> bool:
    """Are we id 0 of a user namespace whose id 0 is an unprivileged id of its parent?"""
    return all(ext and not _is_parent_root(ext) for ext in own)


def _root_single_ids(subuid_path: str, subgid_path: str) -> tuple[int, int]:
    """The one id root's --single-id map gives id 0: never the caller's own id 0 when that may be
    host root."""
    own = [_ns_extents("/proc/self/uid_map"), _ns_extents("/proc/self/gid_map")]
    if _unprivileged_zero(own):
        return 0, 0
    uid, gid = _root_range_starts(subuid_path, subgid_path)
    return uid, gid


def _root_range_starts(subuid_path: str, subgid_path: str) -> list[int]:
    starts = []
    for path in (subuid_path, subgid_path):
        found = parse_subid(_read(path), "root", 0)
        if found is not None and found[1] < FULL_RANGE:
            raise UsageError(
                f"root's range in {path} has {found[1]} ids; chrootforge needs {FULL_RANGE}",
                hint=f"give root {FULL_RANGE} ids there, or remove the entry to use "
                f"{DEFAULT_ROOT_RANGE[0]}:{FULL_RANGE}",
            )
        if found is not None and found[0] == 0:
            raise UsageError(
                f"root's range in {path} starts at 0: that would map host root",
                hint="give root a range of unprivileged ids",
            )
        starts.append(found[0] if found else DEFAULT_ROOT_RANGE[0])
    return starts


def _ns_extents(path: str) -> list[tuple[int, int, int]] | None:
    """This process's user namespace map; None for the initial namespace (it maps everything)."""
    extents = [tuple(int(n) for n in line.split()) for line in _read(path).splitlines() if line.strip()]
    return None if extents in ([], [(0, 0, 4294967295)]) else extents  # type: ignore[return-value]


def _is_parent_root(extents) -> bool:
    """Is our id 0 the parent namespace's id 0 (possibly host root)?"""
    return any(first == 0 and outside == 0 for first, outside, _count in extents)


def _covers(extents, start: int) -> bool:
    return any(first <= start and start + FULL_RANGE <= first + count for first, _o, count in extents)


def _helper(tool: str) -> str | None:
    """Where the setuid helper is (PATH first, then the usual places; shutil costs an import)."""
    dirs = os.environ.get("PATH", "").split(":") + ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
    for directory in dirs:
        path = os.path.join(directory or ".", tool)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


helper_path = _helper
