"""The mirror list: --mirror (repeatable) beats GENTOO_MIRRORS (space-separated) beats the default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.sources.layout import DEFAULT_MIRROR


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


def normalize(mirror: str) -> str:
    """http(s)/file URLs pass; a plain path (a local mirror copy) becomes a file:// URL."""
    if mirror.startswith(("http://", "https://", "file://")):
        return mirror.rstrip("/")
    if "://" in mirror:
        raise UsageError(
            f"unsupported mirror URL {mirror!r}", hint="use http://, https://, file:// or a directory"
        )
    path = Path(mirror).absolute()
    if not path.is_dir():
        raise UsageError(f"mirror {mirror!r} is neither a URL nor a directory")
    return path.as_uri()
