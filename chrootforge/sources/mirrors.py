"""The mirror list: --mirror (repeatable) beats GENTOO_MIRRORS (space-separated) beats the default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.sources.mirrorlayout import DEFAULT_MIRROR


def resolve_mirrors(
    cli: list[str] | tuple[str, ...] | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    env = os.environ if env is None else env
    if cli:
        return [normalize(m) for m in cli]
    from_env = env.get("GENTOO_MIRRORS", "").split()
    usable = [m for m in from_env if m.startswith(("http://", "https://", "file://"))]
    if len(usable) != len(from_env):  # portage also lists ftp:// and rsync:// mirrors: not ours
        log.notice(
            f"GENTOO_MIRRORS: ignoring {', '.join(m for m in from_env if m not in usable)} "
            "(only http, https and file are used)"
        )
    return [normalize(m) for m in usable] or [DEFAULT_MIRROR]


def url_problem(mirror: str) -> str | None:
    """Why a mirror URL cannot be a base that release paths are appended to, or None. (A plain
    path, a local mirror copy, is not a URL: None.)"""
    if not mirror.startswith(("http://", "https://", "file://")):
        if "://" in mirror:
            return f"mirror {mirror!r} must be an http://, https:// or file:// URL, or a directory"
        return None
    try:
        url = urlsplit(mirror)
        url.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"mirror {mirror!r} is not a URL"
    if url.scheme != "file" and not url.hostname:
        return f"mirror {mirror!r} names no host"
    if url.query or url.fragment or any(ord(c) <= 32 or ord(c) == 127 for c in mirror):
        return f"mirror {mirror!r} must be a plain URL (no query, fragment, spaces or control characters)"
    return None


def normalize(mirror: str) -> str:
    """http(s)/file URLs pass; a plain path (a local mirror copy) becomes a file:// URL."""
    if mirror.startswith(("http://", "https://", "file://")):
        problem = url_problem(mirror)
        if problem:
            raise UsageError(problem, hint="a mirror is https://HOST/PATH, file:///PATH or a directory")
        return mirror.rstrip("/")
    if "://" in mirror:
        raise UsageError(
            f"unsupported mirror URL {mirror!r}", hint="use http://, https://, file:// or a directory"
        )
    path = Path(mirror).absolute()
    if not path.is_dir():
        raise UsageError(f"mirror {mirror!r} is neither a URL nor a directory")
    return path.as_uri()
