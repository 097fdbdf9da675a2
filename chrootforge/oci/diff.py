"""Plan a child layer: what changed between a parent tree and the child's full tree.

Pure: the child entries, the parent tree and a content hasher go in; the ordered layer items come
out. Rules:
- new or changed paths are written (a file is changed when its metadata or content hash differ; a
  directory when its metadata differ);
- a deleted path becomes `.wh.<name>` (only the topmost deleted path, not its contents); a parent's
  device node missing from the child is not a deletion (unpack never creates device nodes);
- a path whose kind changed (dir <-> non-dir, file <-> symlink...) gets a whiteout AND its new
  entry, so no applier merges the old directory into the new one;
- a surviving directory that lost *all* of its parent's children gets `.wh..wh..opq` instead of
  one whiteout per child (the directory was replaced wholesale);
- a hardlink group is written whole if any member changed or the grouping changed.
Markers of a directory come right after it and before its children, because appliers such as
containerd apply whiteouts as they meet them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chrootforge.oci import tree
from chrootforge.oci.layerread import OPAQUE, WHITEOUT_PREFIX
from chrootforge.oci.parentindex import ParentTree
from chrootforge.oci.tarwrite import whiteout


def _child_groups(entries: Sequence[tree.Entry]) -> dict[str, frozenset[str]]:
    by_inode: dict[tuple[int, int], list[str]] = {}
    for e in entries:
        if e.inode is not None:
            by_inode.setdefault(e.inode, []).append(e.path)
    out = {}
    for paths in by_inode.values():
        if len(paths) > 1:
            group = frozenset(paths)
            for p in paths:
                out[p] = group
    return out


def plan_child(
    entries: Sequence[tree.Entry], parent: ParentTree, content_of: Callable[[str], str], epoch: int
) -> list[tree.Entry]:
    changed: set[str] = set()
    kind_changed: set[str] = set()
    for e in entries:
        node = parent.nodes.get(e.path)
        if node is None:
            changed.add(e.path)
        elif node.entry.kind != e.kind:
            changed.add(e.path)
            kind_changed.add(e.path)
        elif e.meta() != node.entry.meta() or e.kind == tree.FILE and content_of(e.path) != node.content:
            changed.add(e.path)

    parent_groups = {p: g for g in parent.groups().values() for p in g}
    child_groups = _child_groups(entries)
    for e in entries:
        if e.kind != tree.FILE or e.path in changed:
            continue
        if child_groups.get(e.path, frozenset([e.path])) != parent_groups.get(e.path, frozenset([e.path])):
            changed.add(e.path)
    for group in set(child_groups.values()):
        if group & changed:
            changed |= group

    child_kids: dict[str, set[str]] = {"": set()}
    for e in entries:
        parent_dir, _, name = e.path.rpartition("/")
        child_kids.setdefault(parent_dir, set()).add(name)
    markers: dict[str, list[tree.Entry]] = {}
    for d in [""] + [e.path for e in entries if e.kind == tree.DIR]:
        if d in kind_changed:
            continue  # the parent had no directory here: nothing below to delete
        old = parent.children.get(d, set())
        new = child_kids.get(d, set())
        prefix = f"{d}/" if d else ""
        # A parent's device node cannot be unpacked (applier.py), so its absence from the child's
        # tree is not a deletion: it stays inherited.
        gone = {n for n in old - new if parent.nodes[prefix + n].entry.kind not in (tree.CHAR, tree.BLOCK)}
        if d and old and not (old & new) and gone == old:
            markers[d] = [whiteout(prefix + OPAQUE, epoch)]
            continue
        names = gone | {n for n in old & new if prefix + n in kind_changed}
        if names:
            markers[d] = [
                whiteout(f"{prefix}{WHITEOUT_PREFIX}{n}", epoch) for n in sorted(names, key=tree.sort_key)
            ]

    items = list(markers.get("", []))
    for e in entries:
        if e.path in changed:
            items.append(e)
        if e.kind == tree.DIR:
            items.extend(markers.get(e.path, []))
    return items
