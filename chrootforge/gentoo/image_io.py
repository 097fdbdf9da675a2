"""Reading and writing a build's image roots, with the owners the image means.

A build's roots belong to the sandbox's id map. Rootless, id 0 of that map is the caller, so the
work runs inside the mapped namespace (sandbox.call_mapped), where the owners on disk are already
the image's. Real root's map is an unprivileged host range (sandbox/idmap.py), whose id 0 may not
even reach the layout; so root commits and unpacks itself, translating between host ids and the
image's (IdMap.to_inside / to_host). Either way the image records 0, 250, ... as the image means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chrootforge.sandbox import call_mapped
from chrootforge.sandbox.mapped import runs_as_us


@dataclass(frozen=True)
class CommitRequest:
    """What a build commits for one image, besides the tree itself."""

    tags: tuple[str, ...]  # full ref names; the first is committed, the rest tagged
    config: dict
    labels: dict[str, str]
    history: tuple[dict, ...]
    epoch: int  # the build's one timestamp (build.py)


def unpack(idmap, layout: Path, tag: str, dest: Path) -> None:
    from chrootforge.oci.applier import unpack as oci_unpack

    if runs_as_us(idmap):
        call_mapped(oci_unpack, layout, tag, dest, idmap=idmap)
    else:
        oci_unpack(layout, tag, dest, host_ids=idmap.to_host)


def commit(
    idmap,
    rootfs: Path,
    layout: Path,
    request: CommitRequest,
    *,
    parent: str | None,
    compression: str,
    platform=None,
) -> str:
    """Commit `rootfs` as request.tags (an image of `platform`, default this machine's); returns
    the manifest digest."""
    from chrootforge.oci.writer import commit as oci_commit
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
    if runs_as_us(idmap):
        result = call_mapped(oci_commit, rootfs, layout, request.tags[0], idmap=idmap, **kwargs)
    else:
        result = oci_commit(rootfs, layout, request.tags[0], owners=idmap.to_inside, **kwargs)
    for extra in request.tags[1:]:
        tag(layout, request.tags[0], extra)
    return result.digest
