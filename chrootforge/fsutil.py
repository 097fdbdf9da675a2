"""Atomic writes and file locks: the one place for both, so every writer gets them right.

Every file chrootforge writes by name goes through `atomic_writer`: a temp file beside the name,
fsynced, then renamed into place. The name must be new or a regular file. A directory, device node,
FIFO, socket or symlink there is refused before anything is written (as root, a rename over
/dev/full would replace the host's device node), and the final rename cannot replace one that
appeared meanwhile: it creates with RENAME_NOREPLACE, or swaps with RENAME_EXCHANGE and swaps back
when what it took out is not a regular file. A final symlink is refused, not followed: a rename
would replace the link itself, never write through it. `open_output` adds `-` for stdout.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from chrootforge.errors import CfError, UsageError

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symlink",
}
# renameat2 flags are not supported by every filesystem (9p, NFS, some FUSE) nor every libc.
_NO_FLAGS = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
OUTPUT_HINT = "chrootforge writes only to a new file or over a regular file"


def _refusal(path: Path, st: os.stat_result, hint: str | None) -> UsageError:
    """`hint` adds the caller's way out (e.g. `-` for stdout) to the rule."""
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
    rule = OUTPUT_HINT
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            kind += f" to {os.readlink(path)}"
        rule = "a symlink is never written through: give the path of the file itself"
    return UsageError(f"cannot write {path}: it is {kind}", hint=f"{rule}; {hint}" if hint else rule)


def check_output(path: str | os.PathLike, hint: str | None = None) -> Path:
    """Refuse (UsageError) to write `path` unless it names a new file or a regular file, checked
    without following a final symlink, in an existing directory. `hint` is added to the error's."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError as err:
        raise UsageError(f"cannot write {path}: a component of its directory is not a directory") from err
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise _refusal(path, st, hint)
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"cannot write {path}: its directory {parent} {what}")
    return path


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike,
    mode: str = "wb",
    perms: int = 0o644,
    replace: bool = True,
    hint: str | None = None,
    durable: bool = True,
) -> Iterator[IO]:
    """Yield a temp file beside `path`; on success fsync it and rename it to `path`.

    `path` must be new or a regular file (check_output); with replace=False it must be new, and
    FileExistsError says it appeared meanwhile. On any exception the temp file is removed and
    `path` is left as it was. durable=False skips the fsync (a few ms, far more on a busy disk):
    only for a cache that is as good as none when a crash leaves it empty."""
    path = check_output(path, hint)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise CfError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, perms)
        _install(tmp, path, replace, hint)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _install(tmp: str, path: Path, replace: bool, hint: str | None) -> None:
    """Rename `tmp` to `path` without ever replacing anything but a regular file."""
    # start-up speed: ctypes (~2 ms) loads with the first file written, not with every command
    from chrootforge.sandbox.syscalls import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2

    for _ in range(3):
        try:
            renameat2(tmp, path, RENAME_NOREPLACE)
            return
        except FileExistsError:
            if not replace:
                raise
        except OSError as err:
            if err.errno not in _NO_FLAGS:
                raise
            return _install_plain(tmp, path, replace, hint)
        try:
            renameat2(tmp, path, RENAME_EXCHANGE)
        except FileNotFoundError:
            continue  # removed meanwhile: create it again
        except OSError as err:
            if err.errno not in _NO_FLAGS:
                raise
            return _install_plain(tmp, path, replace, hint)
        old = os.lstat(tmp)  # what was at `path` now has the temp name
        if stat.S_ISREG(old.st_mode):
            os.unlink(tmp)
            return
        renameat2(tmp, path, RENAME_EXCHANGE)  # it changed since check_output: put it back
        raise _refusal(path, old, hint)
    raise CfError(f"cannot write {path}: it keeps being removed and created meanwhile")


def _install_plain(tmp: str, path: Path, replace: bool, hint: str | None) -> None:
    """Where renameat2's flags are missing: link(2) never replaces; otherwise check, then rename."""
    if not replace:
        os.link(tmp, path)
        os.unlink(tmp)
        return
    check_output(path, hint)
    os.replace(tmp, path)


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str,
    perms: int = 0o644,
    replace: bool = True,
    durable: bool = True,
) -> None:
    if isinstance(data, str):
        data = data.encode()
    with atomic_writer(path, "wb", perms, replace, durable=durable) as handle:
        handle.write(data)


@contextlib.contextmanager
def open_output(path: str, what: str = "the output") -> Iterator[IO[bytes]]:
    """A user-named binary output: `-` is stdout (refused when it is a terminal), anything else an
    atomic_writer (a new or regular file, nothing half-written)."""
    if path != "-":
        with atomic_writer(path, hint=f"`-` writes {what} to stdout") as handle:
            yield handle
        return
    import sys

    if sys.stdout.isatty():
        raise UsageError(
            f"refusing to write {what} to a terminal",
            hint="redirect stdout (> FILE or | CMD), or give a file",
        )
    sys.stdout.flush()
    yield sys.stdout.buffer
    sys.stdout.buffer.flush()


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The content of a regular file of at most `limit` bytes. A FIFO, device, socket or directory
    (or a larger file) is an OSError, never a read that blocks or does not end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return read_regular_fd(fd, limit, path)
    finally:
        os.close(fd)


def is_inside(path: str | os.PathLike, directory: str | os.PathLike) -> bool:
    """Is `path` (existing or not; symlinks of its existing part followed) `directory` itself or
    somewhere below it? Compared by inode, so another name of the directory counts too."""
    try:
        top = os.stat(directory)
    except OSError:
        return False
    here = os.path.realpath(path)
    while True:
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) == (top.st_dev, top.st_ino):
                return True
        except OSError:
            pass
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent


def read_input(path: str | os.PathLike, limit: int) -> bytes:
    """A user-named input of at most `limit` bytes: a regular file, or a pipe read to its end
    (`<(...)`, /dev/fd/N). A named FIFO that nobody writes to reads as empty instead of waiting for
    a writer; a directory, device or socket (or more than `limit` bytes) is an OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return read_regular_fd(fd, limit, path)
        os.set_blocking(fd, True)  # now a read waits for the writers there are, and only for them
        return _read_bounded(fd, limit, path)
    finally:
        os.close(fd)


def read_regular_fd(fd: int, limit: int, path: str | os.PathLike) -> bytes:
    """read_regular() of an open fd (opened O_NONBLOCK); `path` names it in errors."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise OSError(errno.EINVAL, f"it is {kind}, not a regular file", os.fspath(path))
    return _read_bounded(fd, limit, path)


def _read_bounded(fd: int, limit: int, path: str | os.PathLike) -> bytes:
    chunks = []
    size = 0
    while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise OSError(errno.EFBIG, f"it is larger than {limit} bytes", os.fspath(path))
    return b"".join(chunks)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created if missing) for the duration of the block. A symlink or
    anything but a regular file there is refused: root locking in a directory someone else owns
    must not create or open a file elsewhere through it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise CfError(f"lock file {path} is a symlink", hint="remove it; chrootforge makes it again") from err
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CfError(
                f"lock file {path} is not a regular file", hint="remove it; chrootforge makes it again"
            )
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


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the range's dirty pages, do not wait


@functools.cache
def _sync_file_range():
    import ctypes  # start-up speed: only once a large blob is written

    try:
        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except AttributeError:  # not Linux's libc
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return func


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Let the disk start on a range of a file being written, without waiting for it (Linux's
    sync_file_range), so that the fsync which ends a big write finds little left to do: the disk
    works while the writer computes the rest. A hint only: where the call is missing or refused
    (another libc, a filesystem without it), nothing happens."""
    func = _sync_file_range()
    if func is not None:
        func(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
