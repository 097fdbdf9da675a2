"""Reading and writing a build's image roots, with the owners the image means (oci/mapped.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chrootforge.oci.mapped import commit_as
from chrootforge.ownerxattr import SymlinkOwners


@dataclass(frozen=True)
class CommitRequest:
    """What a build commits for one image, besides the tree itself."""

    tags: tuple[str, ...]  # full ref names; the first is committed, the rest tagged
    config: dict
    labels: dict[str, str]
    history: tuple[dict, ...]
    epoch: int  # the build's one timestamp (build.py)


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
    """Commit `rootfs` as request.tags (an image of `platform`, default this machine's); returns
    the manifest digest."""
    from chrootforge.oci.writer import tag

    kwargs: dict[str, Any] = {
        "parent": parent,
        "compression": compression,
        "config": request.config,
        "labels": request.labels,
        "history": list(request.history),
        "quiet": True,
        "epoch": request.epoch,
        "platform": platform,
    }
    result = commit_as(idmap, rootfs, layout, request.tags[0], symlinks, **kwargs)
    for extra in request.tags[1:]:
        tag(layout, request.tags[0], extra)
    return result.digest
