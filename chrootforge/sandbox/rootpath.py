"""Resolve paths inside a root the way the sandbox will see them, never escaping it.

Symlinks are followed with the root as "/" (an absolute link restarts at the root, `..` stops at the
root), like openat2(RESOLVE_IN_ROOT): a mount target can never land outside the rootfs.
"""

from __future__ import annotations

import os
import stat

from chrootforge.errors import CfError, UsageError

MAX_LINKS = 40


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


def resolve_in_root(root: str, path: str) -> str:
    """The symlink-free inside path that `path` designates within `root` (missing parts kept)."""
    pending = [p for p in path.split("/") if p][::-1]  # a stack, next component last
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        host = os.path.join(root, *resolved, part)
        try:
            mode = os.lstat(host).st_mode
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if stat.S_ISLNK(mode):
            links += 1
            if links > MAX_LINKS:
                raise CfError(f"too many levels of symbolic links resolving {path} in {root}")
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            pending.extend([p for p in target.split("/") if p][::-1])
            continue
        resolved.append(part)
    return "/" + "/".join(resolved)


def ensure_target(root: str, inside: str, kind: str) -> str:
    """Create the mount target `inside` ("dir" or "file") under root if missing; its host path."""
    resolved = resolve_in_root(root, inside)
    parts = [p for p in resolved.split("/") if p]
    current = root
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        last = index == len(parts) - 1
        if os.path.lexists(current):
            continue
        if last and kind == "file":
            fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            os.close(fd)
        else:
            os.mkdir(current, 0o755)
    return os.path.join(root, *parts) if parts else root
