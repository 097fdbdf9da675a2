"""The packages' build logs: portage writes them to PORTAGE_LOGDIR (/cf/package-logs, in the work
dir) and the host keeps them in logs/<image>/packages.

They matter because emerge with --jobs above 1 prints only progress: a compiler's error is in the
package's own log, and ${T}/build.log dies with the sandbox's tmpfs. The directory is written by
the sandbox (hooks and packages included), so the host reads each log as a regular file inside the
work dir, never through a symlink out of it, and as the sandbox's root when the logs belong to
subordinate ids that the calling user cannot read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.gentoo.emerge import CF_MOUNT, PACKAGE_LOGS
from chrootforge.rootpath import read_inside

# portage names a package's log category:package-version:date-time.log
NAME = re.compile(r"[A-Za-z0-9+_.-]+:[A-Za-z0-9+_.-]+:[0-9-]+\.log")
_NAMED = re.compile(rf"{re.escape(CF_MOUNT)}/{PACKAGE_LOGS}/({NAME.pattern})")
MAX_LOG = 256 << 20


def pending(cf: Path, seen: dict[str, int]) -> list[str]:
    """The logs that are new or have grown since `seen` (name -> size) was taken."""
    source = cf / PACKAGE_LOGS
    if source.is_symlink() or not source.is_dir():
        return []
    names = []
    for name in sorted(os.listdir(source)):
        try:
            size = os.lstat(source / name).st_size
        except OSError:
            continue
        if NAME.fullmatch(name) and seen.get(name) != size:
            names.append(name)
    return names


def read(cf: str, names: list[str]) -> list[tuple[str, bytes | str]]:
    """Each log's bytes, or why it was refused (run as the sandbox's root where needed)."""
    out: list[tuple[str, bytes | str]] = []
    for name in names:
        try:
            data = read_inside(cf, f"{PACKAGE_LOGS}/{name}", MAX_LOG, what="build log")
        except CfError as err:
            out.append((name, str(err)))
            continue
        except OSError as err:
            out.append((name, f"cannot read build log {name}: {err.strerror}"))
            continue
        if data is not None:
            out.append((name, data))
    return out


def named_in(text: str) -> str | None:
    """The last package log that emerge's output names (its failure report does)."""
    found = _NAMED.findall(text)
    return found[-1] if found else None
