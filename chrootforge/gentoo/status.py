"""The files the build's sandbox steps leave in /cf/status for the host to read.

The directory is writable inside the sandbox (by the payload's root and, as 0777, by every id), so
what is in it was written by the build, hooks and packages included: a symlink there must not make
the host (root, for a root build) read a file of its own, nor a FIFO block it or a huge file fill
its memory. Every reader goes through read_status().
"""

from __future__ import annotations

from pathlib import Path

from chrootforge.rootpath import read_inside

MAX_STATUS = 16 << 20


def read_status(status_dir: str | Path, name: str) -> str | None:
    """The text of status file `name` (None when the step wrote none); a symlink is followed only
    inside the directory, anything but a regular file of at most MAX_STATUS bytes is a CfError."""
    data = read_inside(status_dir, name, MAX_STATUS, what="build status file")
    return None if data is None else data.decode(errors="replace")
