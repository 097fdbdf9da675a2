"""Atomic writes and file locks: the one place for both, so every writer gets them right."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb", perms: int = 0o644) -> Iterator[IO]:
    """Yield a temp file beside `path`; on success fsync and rename it over `path`.

    On any exception the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, perms: int = 0o644) -> None:
    if isinstance(data, str):
        data = data.encode()
    with atomic_writer(path, "wb", perms) as handle:
        handle.write(data)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/chrootforge, else ~/.cache/chrootforge; for root /var/cache/chrootforge.

    Root's sandbox runs as an unprivileged range (sandbox/idmap.py) that must reach the extracted
    stages and build roots in the cache, and root's home is usually mode 0700."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "chrootforge"
    if os.getuid() == 0:
        return Path("/var/cache/chrootforge")
    return Path(os.path.expanduser("~")) / ".cache" / "chrootforge"
