"""Unpack and commit a tree that belongs to a sandbox's id map, with the owners the image means.

A build's roots belong to the sandbox's id map (sandbox/idmap.py). Rootless, id 0 of that map is
the caller, so the work runs inside the mapped namespace (sandbox.call_mapped), where the owners on
disk are already the image's. Real root's map is an unprivileged host range, whose id 0 may not
even reach the layout; so root commits and unpacks itself, translating between host ids and the
image's (IdMap.to_inside / to_host). A single-id map has no id but 0: its trees keep the image's
owners as records (chrootforge.ownerxattr), written by unpack and read by commit. Either way the
image records 0, 250, ... as the image means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chrootforge.ownerxattr import Records, SymlinkOwners

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.oci.tree import Owners
    from chrootforge.oci.writer import CommitResult
    from chrootforge.platforms import Platform


@dataclass(frozen=True)
class CommitRequest:
    """What to commit a tree as, besides the tree and the layout (oci.writer.commit's options):
    one typed value, which crosses into the mapped namespace whole."""

    tags: tuple[str, ...]  # full ref names; the first is committed, the rest tagged to it
    parent: str | None = None  # a tag of the same layout
    compression: str = "gzip"
    config: dict | None = None
    labels: dict[str, str] | None = None
    history: tuple[dict, ...] | None = None
    epoch: int | None = None  # the build's one timestamp (see oci.writer.commit)
    quiet: bool = False
    platform: Platform | None = None  # the config's os/architecture/variant (default this machine's)


def unpack_as(idmap, layout: Path, tag: str, dest: Path) -> SymlinkOwners:
    """Unpack `tag` into `dest` under `idmap`; the owners of symlinks that a single-id tree cannot
    record (pass them to commit_as)."""
    from chrootforge.oci.applier import unpack
    from chrootforge.sandbox import call_mapped
    from chrootforge.sandbox.mapped import runs_as_us

    if runs_as_us(idmap):
        return call_mapped(idmap, unpack, layout, tag, dest, record_owners=idmap.single_id)
    return unpack(layout, tag, dest, host_ids=idmap.to_host, record_owners=idmap.single_id)


def commit_as(
    idmap, rootfs: Path, layout: Path, request: CommitRequest, symlinks: SymlinkOwners | None = None
) -> CommitResult:
    """Commit a tree written under `idmap` as request.tags; the CommitResult of the first tag.
    symlinks: what unpack_as returned for the parent."""
    from chrootforge.sandbox import call_mapped
    from chrootforge.sandbox.mapped import runs_as_us

    records = Records(symlinks) if idmap.single_id else None
    if runs_as_us(idmap):
        return call_mapped(idmap, commit_request, rootfs, layout, request, records=records)
    return commit_request(rootfs, layout, request, owners=idmap.to_inside, records=records)


def commit_request(
    rootfs: Path,
    layout: Path,
    request: CommitRequest,
    owners: Owners | None = None,
    records: Records | None = None,
) -> CommitResult:
    """oci.writer.commit of `request` (owners and records: see there), then its other tags."""
    from chrootforge.oci.writer import commit, tag

    result = commit(
        rootfs,
        layout,
        request.tags[0],
        parent=request.parent,
        compression=request.compression,
        config=request.config,
        labels=request.labels,
        history=None if request.history is None else list(request.history),
        quiet=request.quiet,
        epoch=request.epoch,
        platform=request.platform,
        owners=owners,
        records=records,
    )
    for extra in request.tags[1:]:
        tag(layout, request.tags[0], extra)
    return result
