"""Reading and writing a build's image roots, with the owners the image means (oci/mapped_io.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chrootforge.oci.mapped_io import CommitRequest, commit_as
from chrootforge.ownerxattr import SymlinkOwners


def commit(
    idmap,
    rootfs: Path,
    layout: Path,
    request: CommitRequest,
    *,
    parent: str | None,
    compression: str,
    symlinks: SymlinkOwners | None = None,
    platform=None,
) -> str:
    """Commit `rootfs` as request.tags (what the build decided the image is), an image of `platform`
    (default this machine's), onto `parent` with `compression` (where this build puts it); returns
    the manifest digest."""
    whole = dataclasses.replace(
        request, parent=parent, compression=compression, quiet=True, platform=platform
    )
    return commit_as(idmap, rootfs, layout, whole, symlinks).digest
