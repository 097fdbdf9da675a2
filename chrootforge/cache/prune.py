"""`chrootforge cache prune`: remove old cache entries, never one that a running build holds.

    plan(entries, policy, now) -> [Entry]        pure: which entries the policy removes
    prune(policy, kinds=None, ...) -> PruneResult the executor: claims each entry (chrootforge.holds),
                                                  removes it the way it was made, counts bytes

Policy: an entry goes when it is older than `older_than` (by its last use) AND, with `keep`, is not
among the `keep` most recently used entries of its kind. Leftovers of interrupted runs (half
extracted stages and trees) go whatever their age, once their creation lock is free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from chrootforge import untrusted
from chrootforge.cache.kinds import BY_NAME, KINDS, Entry, kind_root, scan, source_area, stale_key
from chrootforge.errors import CfError, UsageError
from chrootforge.holds import claim

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '2w', '45s' or '0' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match or (not match.group(2) and float(match.group(1)) != 0):
        raise UsageError(f"bad age {text!r}", hint="use a number with a unit: 45s, 90m, 12h, 30d, 2w (or 0)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclasses.dataclass(frozen=True)
class Policy:
    older_than: float | None = None  # seconds since last use
    keep: int | None = None  # the most recently used entries kept per kind

    def __post_init__(self) -> None:
        if self.keep is not None and self.keep < 0:
            raise UsageError("--keep must be 0 or more")


def plan(entries: Iterable[Entry], policy: Policy, now: float) -> list[Entry]:
    """The entries the policy removes, kind by kind, oldest last use first."""
    out: list[Entry] = []
    for kind in KINDS:
        mine = [e for e in entries if e.kind == kind.name]
        live = sorted((e for e in mine if not e.stale), key=lambda e: (-e.last_used, e.name))
        for rank, entry in enumerate(live):
            beyond_keep = policy.keep is None or rank >= policy.keep
            too_old = policy.older_than is None or now - entry.last_used >= policy.older_than
            if beyond_keep and too_old:
                out.append(entry)
        out.extend(e for e in mine if e.stale)
    return sorted(out, key=lambda e: (KINDS.index(BY_NAME[e.kind]), e.last_used, e.name))


@dataclasses.dataclass
class PruneResult:
    removed: list[Entry] = dataclasses.field(default_factory=list)
    held: list[Entry] = dataclasses.field(default_factory=list)
    failed: list[tuple[Entry, str]] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)

    def to_json(self) -> dict:
        def row(e: Entry) -> dict:
            return {
                "kind": e.kind,
                "name": e.name,
                "path": str(e.path),
                "bytes": e.size,
                "last_used": int(e.last_used),
                "stale": e.stale,
            }

        return {
            "dry_run": self.dry_run,
            "freed_bytes": self.freed,
            "removed": [row(e) for e in self.removed],
            "held": [row(e) for e in self.held],
            "failed": [{**row(e), "error": why} for e, why in self.failed],
        }


def prune(
    policy: Policy,
    kinds: Iterable[str] | None = None,
    *,
    cache_root: Path | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneResult:
    chosen = [BY_NAME[name] for name in kinds] if kinds else list(KINDS)
    entries = [e for kind in chosen for e in scan(kind, cache_root)]
    doomed = plan(entries, policy, time.time() if now is None else now)
    result = PruneResult(dry_run=dry_run)
    groups: dict[Path, list[Entry]] = {}
    for entry in doomed:
        groups.setdefault(entry.hold, []).append(entry)
    for hold, members in groups.items():
        with claim(hold) as free:
            if not free:
                result.held.extend(members)
                continue
            for entry in members:
                with _lock_free(entry.busy_lock) as idle:
                    if not idle:
                        result.held.append(entry)
                        continue
                    if dry_run:
                        result.removed.append(entry)
                        continue
                    try:
                        _remove(entry, cache_root)
                    except (CfError, OSError) as err:
                        result.failed.append((entry, str(err)))
                    else:
                        result.removed.append(entry)
    return result


@contextlib.contextmanager
def _lock_free(lock: Path | None):
    """Hold `lock` exclusively if nobody has it (a fetch or an extraction in progress has)."""
    if lock is None or not lock.exists():
        yield True
        return
    fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


# -- removal, the way each kind was made ---------------------------------------------------------
def _remove(entry: Entry, cache_root: Path | None) -> None:
    kind = BY_NAME[entry.kind]
    if entry.kind == "stages":
        from chrootforge.sources.mapped_run import remove_under_mapping

        key = stale_key(entry.path.name, ".extract-")
        remove_under_mapping(entry.path, _stage_idmap(key, entry.name))
        # what extraction noted about the stage (stage_cache.newest_mtime) goes with it
        entry.path.with_name(entry.path.name + ".facts.json").unlink(missing_ok=True)
    elif kind.mapped:
        _remove_maybe_mapped(entry.path)
    else:
        _remove_plain(entry.path)
    if entry.kind == "sources":
        _drop_names(kind_root("sources", cache_root), entry.path)


def _remove_plain(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=_writable_and_retry)
    else:
        path.unlink()


def _writable_and_retry(func, name, exc_info) -> None:
    """A read-only directory (an extracted snapshot may have some) cannot lose entries: open it up.
    Anything else (a directory of another owner that cannot be opened) is left to the caller."""
    if not issubclass(exc_info[0], PermissionError) or func not in (os.unlink, os.rmdir, os.remove):
        raise exc_info[1]
    parent = os.path.dirname(name)
    os.chmod(parent, os.stat(parent).st_mode | 0o700)
    func(name)


def _remove_maybe_mapped(path: Path) -> None:
    """Files emerge wrote inside the sandbox may belong to sub-ids: then only the mapping removes them."""
    try:
        _remove_plain(path)
    except PermissionError:
        from chrootforge.sources.mapped_run import remove_under_mapping

        remove_under_mapping(path, None if os.getuid() == 0 else _user_idmap())


def _user_idmap():
    from chrootforge.sandbox.idmap import detect_idmap

    return detect_idmap()


def _stage_idmap(key: str, name: str):
    """The mapping a stage was extracted under: its key ends with that mapping's idmap_key."""
    from chrootforge.sandbox.idmap import single_map
    from chrootforge.sources.mapped_run import idmap_key

    candidates = [single_map(os.getuid(), os.getgid())]
    with contextlib.suppress(CfError):
        candidates.insert(0, _user_idmap())
    suffix = key.rsplit("-", 1)[-1]
    for idmap in candidates:
        if idmap_key(idmap) == suffix:
            return idmap
    if os.getuid() == 0:
        return None  # real root removes files of any owner directly
    raise CfError(
        f"{name} was extracted under an id mapping this user does not have any more",
        hint="remove it as root, or restore the user's /etc/subuid and /etc/subgid ranges",
    )


def _drop_names(root: Path, blob_dir: Path) -> None:
    """Name records (e.g. a dated stage -> its blob) that point into a removed blob."""
    from chrootforge.fsutil import file_lock

    names = source_area(root, "names")
    if not names.is_dir():
        return
    with file_lock(root / ".lock"):
        for record in names.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, TypeError):
                target = Path(untrusted.read_json(record)["path"])
                if target.parent == blob_dir:
                    record.unlink()
