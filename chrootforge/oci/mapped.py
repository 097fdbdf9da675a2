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

from pathlib import Path

from chrootforge.ownerxattr import Records, SymlinkOwners


def unpack_as(idmap, layout: Path, tag: str, dest: Path) -> SymlinkOwners:
    """Unpack `tag` into `dest` under `idmap`; the owners of symlinks that a single-id tree cannot
    record (pass them to commit_as)."""
    from chrootforge.oci.applier import unpack
    from chrootforge.sandbox import call_mapped
    from chrootforge.sandbox.mapped import runs_as_us

    if runs_as_us(idmap):
        return call_mapped(unpack, layout, tag, dest, record_owners=idmap.single_id, idmap=idmap)
    return unpack(layout, tag, dest, host_ids=idmap.to_host, record_owners=idmap.single_id)


def commit_as(idmap, rootfs: Path, layout: Path, tag: str, symlinks: SymlinkOwners | None = None, **kwargs):
    """oci.writer.commit of a tree written under `idmap` (kwargs are commit's); its CommitResult.
    symlinks: what unpack_as returned for the parent."""
    from chrootforge.oci.writer import commit
    from chrootforge.sandbox import call_mapped
    from chrootforge.sandbox.mapped import runs_as_us

    records = Records(symlinks) if idmap.single_id else None
    if runs_as_us(idmap):
        return call_mapped(commit, rootfs, layout, tag, idmap=idmap, records=records, **kwargs)
    return commit(rootfs, layout, tag, owners=idmap.to_inside, records=records, **kwargs)
