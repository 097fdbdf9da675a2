"""The one root-confined path resolver: every path operation that has a root goes through it.

A path below a root is resolved one component at a time through directory file descriptors
opened with O_NOFOLLOW, starting from an fd of the root itself, so the result never leaves the
tree, whatever the tree holds and even if someone swaps a component for a symlink meanwhile. Two
policies:

- follow=True  (mount targets): symlinks are followed with the root as "/" — an absolute link
  restarts at the root and `..` stops there — like openat2(RESOLVE_IN_ROOT).
- follow=False (layer entries, whiteouts, opaque markers, hardlink targets): a symlink or a
  non-directory among the parents is refused, naming it. Layers written by real tools never put an
  entry below a symlink; a hostile layer that does would otherwise write through it.

`parent_policy_problem()` is the same no-symlink rule for trees kept in memory (the parent index of
a commit, verify's layer check), so the on-disk and in-memory views of a layer agree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from chrootforge.errors import CfError, UsageError
from chrootforge.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Self

MAX_LINKS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(CfError):
    """A path that would go through a symlink or a non-directory, or climb out of the root."""


def check_inside_path(path: str, what: str = "target") -> str:
    """An absolute, `..`-free inside path, normalized; UsageError otherwise."""
    if not path.startswith("/"):
        raise UsageError(f"{what} {path!r} must be an absolute path inside the sandbox")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UsageError(f"{what} {path!r} escapes the root (`..` is not allowed)")
    if not parts:
        raise UsageError(f"{what} {path!r} would cover the whole root")
    return "/" + "/".join(parts)


def entry_parts(name: str, what: str = "entry") -> list[str]:
    """The components of an archive member name; absolute names and `..` are refused."""
    if name.startswith("/"):
        raise PathRefused(f"refusing {what} {name!r}: absolute names are not allowed in a layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"refusing {what} {name!r}: it climbs out of the root (`..`)")
    return parts


def parent_policy_problem(parts: list[str], kind_of: Callable[[str], str | None]) -> str | None:
    """For an in-memory tree: why `parts` may not be written (a parent that is a symlink or not a
    directory), or None. kind_of(path) gives "dir", "symlink", another kind, or None (absent)."""
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        kind = kind_of(prefix)
        if kind == "symlink":
            return f"it goes through the symlink {prefix}"
        if kind not in (None, "dir"):
            return f"it goes through {prefix}, which is not a directory"
    return None


class Located(Value):
    """Where a path ended up: an fd of its parent directory and its last component (None when the
    path is the root itself), plus the symlink-free inside path."""

    __slots__ = ("dirfd", "name", "inside")  # noqa: RUF023 - the fields' order
    dirfd: int
    name: str | None
    inside: str

    def __init__(self, dirfd: int, name: str | None, inside: str) -> None:
        self._init(dirfd, name, inside)

    @property
    def entry(self) -> str:
        """The last component, for operations that need one: a path naming the root itself is refused."""
        if self.name is None:
            raise PathRefused(f"refusing {self.inside!r}: it names the root itself")
        return self.name


class Created(Value):
    """Something a resolution created (for undoing it later), and the times its parent had."""

    __slots__ = ("inside", "parent", "parent_times", "step")
    inside: str
    parent: str
    parent_times: tuple[int, int] | None  # (atime_ns, mtime_ns) before the first creation in it
    step: int  # which step of a plan made it (undo goes step by step, in reverse)

    def __init__(self, inside: str, parent: str, parent_times: tuple[int, int] | None, step: int = 0) -> None:
        self._init(inside, parent, parent_times, step)


class RootDir:
    """A directory used as a root. Use as a context manager (it holds an fd of the root)."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self.fd = os.open(self.root, _DIR_FLAGS)
        # Devices of filesystems that go away with their user (a sandbox's own tmpfs): what is
        # created on them is not recorded, as there will be nothing to undo.
        self.ephemeral_devs: set[int] = set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @contextlib.contextmanager
    def locate(
        self,
        path: str,
        *,
        follow: bool,
        make_parents: bool = False,
        created: list[Created] | None = None,
        what: str = "path",
    ) -> Iterator[Located]:
        """Resolve `path`'s parents inside the root; yield its parent fd and last component.

        make_parents: missing parent directories are created (0755), and recorded in `created`.
        follow: see the module docstring. The last component itself is never followed here.
        """
        stack = [os.dup(self.fd)]
        names: list[str] = []
        try:
            pending = [p for p in path.split("/") if p][::-1]
            links = 0
            while True:
                while pending and pending[-1] in (".", ""):
                    pending.pop()
                if not pending:
                    yield Located(stack[-1], None, "/" + "/".join(names))
                    return
                part = pending.pop()
                if part == "..":
                    if not follow:
                        raise PathRefused(f"refusing {what} {path!r}: it climbs out of the root (`..`)")
                    if len(stack) > 1:
                        os.close(stack.pop())
                        names.pop()
                    continue
                if not [p for p in pending if p not in (".", "")]:
                    yield Located(stack[-1], part, "/" + "/".join([*names, part]))
                    return
                try:
                    st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if not make_parents:
                        raise
                    self._record(created, stack[-1], "/" + "/".join(names), part)
                    os.mkdir(part, 0o755, dir_fd=stack[-1])
                    st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    where = "/".join([*names, part])
                    if not follow:
                        raise PathRefused(f"refusing {what} {path!r}: it goes through the symlink {where}")
                    links += 1
                    if links > MAX_LINKS:
                        raise PathRefused(
                            f"too many levels of symbolic links resolving {path!r} in {self.root}"
                        )
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                    pending.extend([p for p in target.split("/") if p][::-1])
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    where = "/".join([*names, part])
                    raise PathRefused(
                        f"refusing {what} {path!r}: it goes through {where}, which is not a directory"
                    )
                stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
                names.append(part)
        finally:
            for fd in stack:
                os.close(fd)

    @contextlib.contextmanager
    def open_dir(self, path: str, *, make: bool = False, what: str = "path") -> Iterator[int | None]:
        """An O_RDONLY fd of the directory at `path` (no symlink anywhere on the way, the last
        component included), or None when it (or a directory on the way) does not exist. make:
        create it (and its parents)."""
        fd: int | None = None
        try:
            with self.locate(path, follow=False, make_parents=make, what=what) as loc:
                if loc.name is None:
                    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=loc.dirfd)
                else:
                    if make:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(loc.name, 0o755, dir_fd=loc.dirfd)
                    try:
                        fd = os.open(
                            loc.name,
                            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=loc.dirfd,
                        )
                    except (NotADirectoryError, OSError) as err:
                        if isinstance(err, FileNotFoundError):
                            raise
                        if isinstance(err, NotADirectoryError) or err.errno == 40:  # ELOOP: a symlink
                            raise PathRefused(
                                f"refusing {what} {path!r}: {loc.inside} is not a directory (or is a symlink)"
                            ) from err
                        raise
        except FileNotFoundError:
            if make:
                raise
            fd = None
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _record(self, created: list[Created] | None, dirfd: int, parent: str, name: str) -> None:
        """Note that `name` is about to be made in the directory `parent` (fd `dirfd`)."""
        if created is None:
            return
        st = os.fstat(dirfd)
        if st.st_dev in self.ephemeral_devs:
            return
        times = None  # recorded once per directory: the list is per plan step (see undo_created)
        if not any(c.parent == parent or c.inside == parent for c in created):
            times = (st.st_atime_ns, st.st_mtime_ns)
        created.append(Created(_join(parent, name), parent, times))

    @contextlib.contextmanager
    def target(self, inside: str, kind: str, created: list[Created] | None = None) -> Iterator[str]:
        """A mount target: resolve `inside` (symlinks followed in the root), create it when missing
        ("dir" or an empty "file"), and yield a path naming exactly that object (a /proc/self/fd
        link to an O_PATH fd, so mount(2) cannot be raced onto something else)."""
        path = inside
        for _ in range(MAX_LINKS):
            with self.locate(
                path, follow=True, make_parents=True, created=created, what="mount target"
            ) as loc:
                if loc.name is None:
                    raise PathRefused(f"mount target {inside} resolves to the root itself")
                try:
                    st = os.stat(loc.name, dir_fd=loc.dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    self._record(created, loc.dirfd, _dirname(loc.inside), loc.name)
                    if kind == "file":
                        os.close(
                            os.open(
                                loc.name,
                                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                0o644,
                                dir_fd=loc.dirfd,
                            )
                        )
                    else:
                        os.mkdir(loc.name, 0o755, dir_fd=loc.dirfd)
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode):  # a final symlink: follow it, inside
                    path = _join(_dirname(loc.inside), os.readlink(loc.name, dir_fd=loc.dirfd))
                    continue
                fd = os.open(loc.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=loc.dirfd)
            try:
                yield f"/proc/self/fd/{fd}"
            finally:
                os.close(fd)
            return
        raise PathRefused(f"too many levels of symbolic links resolving {inside!r} in {self.root}")


def _dirname(inside: str) -> str:
    return inside.rsplit("/", 1)[0] or "/"


def _join(base: str, rel: str) -> str:
    """`rel` taken from directory `base` (an absolute `rel` restarts at the root)."""
    return rel if rel.startswith("/") else base.rstrip("/") + "/" + rel


def executable_in_root(root: str, path: str) -> bool:
    """Is `path` (symlinks followed inside the root) an executable regular file there?"""
    with RootDir(root) as rd:
        for _ in range(MAX_LINKS):
            try:
                with rd.locate(path, follow=True, what="path") as loc:
                    if loc.name is None:
                        return False
                    st = os.stat(loc.name, dir_fd=loc.dirfd, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        path = _join(_dirname(loc.inside), os.readlink(loc.name, dir_fd=loc.dirfd))
                        continue
                    return stat.S_ISREG(st.st_mode) and os.access(loc.name, os.X_OK, dir_fd=loc.dirfd)
            except (OSError, PathRefused):
                return False
    return False


def read_inside(root: str | os.PathLike, path: str, limit: int, what: str = "file") -> bytes | None:
    """The bytes of the regular file at `path` inside `root` (symlinks followed inside the root,
    as for mount targets), or None when it does not exist. For the host reading what a sandbox
    wrote: a symlink never leads out of the root, and a directory, FIFO, device or a file larger
    than `limit` bytes is a PathRefused, never a read that blocks or fills the memory."""
    from chrootforge.fsutil import read_regular_fd

    if not os.path.lexists(root):
        return None
    with RootDir(root) as rd:
        for _ in range(MAX_LINKS):
            try:
                with rd.locate(path, follow=True, what=what) as loc:
                    if loc.name is None:
                        raise PathRefused(f"{what} {path!r} in {rd.root} is the root itself")
                    try:
                        fd = os.open(
                            loc.name,
                            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                            dir_fd=loc.dirfd,
                        )
                    except OSError as err:
                        if err.errno != errno.ELOOP:
                            raise
                        path = _join(_dirname(loc.inside), os.readlink(loc.name, dir_fd=loc.dirfd))
                        continue
                    try:
                        return read_regular_fd(fd, limit, loc.inside)
                    except OSError as err:
                        problem = f"refusing {what} {loc.inside} in {rd.root}: {err.strerror}"
                        raise PathRefused(problem) from err
                    finally:
                        os.close(fd)
            except FileNotFoundError:
                return None
            except NotADirectoryError:
                return None
    raise PathRefused(f"too many levels of symbolic links resolving {what} {path!r} in {root}")


def undo_created(rd: RootDir, created: list[Created]) -> None:
    """Undo ONE step's creations: remove them (only still-empty directories and empty files, never
    through a symlink), then give their parents the times they had before the step. Undoing the
    steps of a plan in reverse order, each with the mounts of the earlier steps still in place,
    brings every directory back to how it was. Best effort: a payload may have filled them."""
    gone: set[str] = set()
    for item in reversed(created):
        try:
            with rd.locate(item.inside, follow=False, what="created path") as loc:
                st = os.stat(loc.entry, dir_fd=loc.dirfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(loc.entry, dir_fd=loc.dirfd)
                elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(loc.entry, dir_fd=loc.dirfd)
                else:
                    continue
                gone.add(item.inside)
        except (OSError, CfError):
            continue
    for item in created:
        if item.parent_times is None or item.parent in gone:
            continue
        try:
            with rd.locate(item.parent, follow=False, what="created path") as loc:
                fd = (
                    os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=loc.dirfd)
                    if loc.name is None
                    else os.open(
                        loc.name,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=loc.dirfd,
                    )
                )
                try:
                    os.utime(fd, ns=item.parent_times)
                finally:
                    os.close(fd)
        except (OSError, CfError):
            continue


def encode_created(created: list[Created]) -> bytes:
    """`created` as bytes, to hand from one process to another (NUL-separated fields)."""
    out = []
    for item in created:
        times = item.parent_times or ("", "")
        out += [item.inside, item.parent, str(times[0]), str(times[1]), str(item.step)]
    return b"".join(os.fsencode(field) + b"\0" for field in out)


def decode_created(data: bytes) -> list[Created]:
    fields = [os.fsdecode(f) for f in data.split(b"\0")[:-1]]
    return [
        Created(
            fields[i],
            fields[i + 1],
            (int(fields[i + 2]), int(fields[i + 3])) if fields[i + 2] else None,
            int(fields[i + 4]),
        )
        for i in range(0, len(fields) - len(fields) % 5, 5)
    ]
