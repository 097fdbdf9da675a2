"""Holds on cache entries: who uses an entry, and when it was last used.

A cache entry (an extracted stage, a tree, a binpkg dir, the distfiles dir, a source blob, a VM image
dir) is a path under the user cache. Its lock file is `.<name>.hold` beside it:

- a user of the entry takes a SHARED flock on it for as long as it uses the entry (`Holds.hold`),
  and stamps the lock file's mtime on taking and on dropping the hold: that mtime is the entry's
  last use (`last_used`);
- `chrootforge cache prune` takes it EXCLUSIVELY and without blocking (`claim`) before removing the
  entry: held entries are skipped, and a user that arrives during a removal waits, then finds the
  entry gone and makes it again.

Prune unlinks the lock file while it holds it, so `_lock` re-checks after each flock that the path
still names the file it locked (otherwise the lock is on an orphan inode and it starts over).

Who holds: a run opens `session()` (a build does, for its whole duration) and every module that
uses a cache entry takes its hold in `current()`, the innermost open session, else the holds kept
until the process exits. docs/cache.md lists what a build holds, and where.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Self


def hold_path(entry: str | os.PathLike) -> Path:
    entry = Path(entry)
    return entry.with_name(f".{entry.name}.hold")


# the hold file is another user's, in a folder we may not write (VM artifacts shared by users)
_NOT_OURS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT)


def _open(path: Path) -> int:
    """The hold file, made if missing; read-only when it is another user's (flock works on any fd)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _lock(path: Path, mode: int) -> int | None:
    """An fd holding flock(mode) on `path` (created if missing), or None if LOCK_NB and busy."""
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # prune removed it while we waited: lock the new file instead


def _stamp(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.utime(fd)


class Holds:
    """The entries one build (or one process) uses, held until close(). Reentrant per entry."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def hold(self, entry: str | os.PathLike) -> Path:
        """Take a shared hold on `entry` (waiting while a prune removes it); returns the entry path.

        The entry need not exist yet: hold first, then check or create it, so that no prune can
        remove it in between.
        """
        entry = Path(entry)
        key = hold_path(entry)
        if key not in self._fds:
            try:
                key.parent.mkdir(parents=True, exist_ok=True)
                fd = _lock(key, fcntl.LOCK_SH)
            except OSError as err:
                if err.errno not in _NOT_OURS:
                    raise
                return entry  # another user's read-only cache: this user's prune cannot touch it
            assert fd is not None
            _stamp(fd)
            self._fds[key] = fd
        return entry

    def release(self, entry: str | os.PathLike) -> None:
        """Drop the hold on one entry. For entries whose names nobody else uses (temp dirs named
        by their maker): when the entry is gone, its lock file goes too, so none pile up."""
        key = hold_path(entry)
        fd = self._fds.pop(key, None)
        if fd is None:
            return
        if not os.path.lexists(entry):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(key)
        else:
            _stamp(fd)
        os.close(fd)

    def held(self) -> list[Path]:
        return [key.with_name(key.name[1 : -len(".hold")]) for key in self._fds]

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            _stamp(fd)  # the last use is the end of the use
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_process_holds: Holds | None = None


def process_holds() -> Holds:
    """Holds kept until this process exits (the kernel drops the flocks with the process).

    For callers that take no explicit `Holds`: whatever they used stays protected while they run.
    """
    global _process_holds
    if _process_holds is None:
        _process_holds = Holds()
    return _process_holds


_sessions: list[Holds] = []


@contextlib.contextmanager
def session() -> Iterator[Holds]:
    """The holds of one run: what the run's modules take in `current()` meanwhile, all released
    when the block ends (last, after everything that used the entries)."""
    holds = Holds()
    _sessions.append(holds)
    try:
        yield holds
    finally:
        _sessions.remove(holds)
        holds.close()


def current() -> Holds:
    """Where a user of a cache entry takes its hold: the innermost open session, else the holds
    kept until this process exits."""
    return _sessions[-1] if _sessions else process_holds()


@contextlib.contextmanager
def claim(entry: str | os.PathLike) -> Iterator[bool]:
    """Try to take `entry` exclusively, without waiting: yields False if someone holds it.

    While the block runs nobody can take a hold; on leaving, a claimed entry that no longer exists
    loses its lock file too.
    """
    key = hold_path(entry)
    if not key.parent.is_dir():
        yield True
        return
    try:
        fd = _lock(key, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in _NOT_OURS:
            raise
        fd = None  # a hold file we cannot open: not ours to take
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        if not os.path.lexists(entry):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(key)
        os.close(fd)


def last_used(entry: str | os.PathLike) -> float | None:
    """When a hold on `entry` was last taken or dropped (None if it never was)."""
    try:
        return hold_path(entry).stat().st_mtime
    except OSError:
        return None
