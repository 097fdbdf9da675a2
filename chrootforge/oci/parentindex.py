"""The tree of a parent image, rebuilt by streaming its layers (no sidecar file to go stale).

For each path: its metadata (as tree.Entry without inode), the sha256 of a regular file's content,
and its hardlink group (the first path of the inode within the layer that wrote it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.oci import layerread, tree
from chrootforge.rootpath import entry_parts, parent_policy_problem

_KIND = {
    tarfile.REGTYPE: tree.FILE,
    tarfile.AREGTYPE: tree.FILE,
    tarfile.DIRTYPE: tree.DIR,
    tarfile.SYMTYPE: tree.SYMLINK,
    tarfile.CHRTYPE: tree.CHAR,
    tarfile.BLKTYPE: tree.BLOCK,
    tarfile.FIFOTYPE: tree.FIFO,
    tarfile.CONTTYPE: tree.FILE,
}


@dataclasses.dataclass
class Node:
    entry: tree.Entry
    content: str | None = None  # sha256 hex of a regular file
    group: str | None = None  # hardlink group id


class ParentTree:
    def __init__(self):
        self.nodes: dict[str, Node] = {}
        self.children: dict[str, set[str]] = {"": set()}

    def _add(self, path: str, node: Node) -> None:
        self.nodes[path] = node
        parent, _, name = path.rpartition("/")
        self.children.setdefault(parent, set()).add(name)
        if node.entry.kind == tree.DIR:
            self.children.setdefault(path, set())

    def remove(self, path: str) -> None:
        if path not in self.nodes:
            return
        for name in list(self.children.get(path, ())):
            self.remove(f"{path}/{name}")
        self.children.pop(path, None)
        del self.nodes[path]
        parent, _, name = path.rpartition("/")
        self.children.get(parent, set()).discard(name)

    def groups(self) -> dict[str, frozenset[str]]:
        """group id -> paths, for hardlink groups with 2+ members."""
        out: dict[str, set[str]] = {}
        for path, node in self.nodes.items():
            if node.group:
                out.setdefault(node.group, set()).add(path)
        return {g: frozenset(p) for g, p in out.items() if len(p) > 1}

    def kind_of(self, path: str) -> str | None:
        """The resolver's view of a path: "dir", "symlink", another kind, or None (absent)."""
        node = self.nodes.get(path)
        if node is None:
            return None
        return {tree.DIR: "dir", tree.SYMLINK: "symlink"}.get(node.entry.kind, node.entry.kind)

    def _check(self, parts: list[str] | tuple[str, ...], what: str, name: str, desc: dict) -> None:
        """The unpacker's rule (rootpath): nothing is reached through a symlink or a non-dir."""
        problem = parent_policy_problem(list(parts), self.kind_of)
        if problem:
            raise CfError(
                f"layer {desc['digest'][:19]}: refusing {what} {name!r}: {problem}",
                hint="the layer is hostile or damaged",
            )

    def apply_layer(self, layout: Path, desc: dict, layer_no: int, hash_content: bool = True) -> None:
        for event in layerread.events(layout, desc):
            if isinstance(event, layerread.Opaque):
                self._check(event.parts, "opaque marker", event.member.name, desc)  # the directory included
                for child in list(self.children.get(event.dir, ())):
                    if child not in event.kept:
                        self.remove(f"{event.dir}/{child}" if event.dir else child)
            elif isinstance(event, layerread.Whiteout):
                self._check(event.parts, "whiteout", event.member.name, desc)
                self.remove(event.path)
            else:
                self._apply_entry(event, desc, layer_no, hash_content)

    def _apply_entry(self, event: layerread.Entry, desc: dict, layer_no: int, hash_content: bool) -> None:
        member, tar, path = event.member, event.tar, event.path
        self._check(event.parts, "layer entry", member.name, desc)
        existing = self.nodes.get(path)
        if existing and (existing.entry.kind != tree.DIR or member.type != tarfile.DIRTYPE):
            self.remove(path)
        if member.type == tarfile.LNKTYPE:
            link_parts = entry_parts(member.linkname, "hardlink target")
            self._check(link_parts, "hardlink target", member.linkname, desc)
            linked = self.nodes.get("/".join(link_parts))
            if linked is None or linked.entry.kind == tree.DIR:
                raise CfError(
                    f"layer {desc['digest'][:19]}: refusing hardlink {member.name!r}: its "
                    f"target {member.linkname!r} is not a file of the image",
                    hint="the layer is hostile or damaged",
                )
            if linked.group is None:
                linked.group = f"{layer_no}:{'/'.join(link_parts)}"
            self._add(path, Node(dataclasses.replace(linked.entry, path=path), linked.content, linked.group))
            return
        kind = _KIND.get(member.type)
        if kind is None:
            return
        entry = tree.Entry(
            path,
            kind,
            member.mode & 0o7777,
            member.uid,
            member.gid,
            int(member.mtime),
            member.size if kind == tree.FILE else 0,
            member.linkname if kind == tree.SYMLINK else "",
            (member.devmajor, member.devminor) if kind in (tree.CHAR, tree.BLOCK) else (0, 0),
            layerread.member_xattrs(member),
        )
        content = None
        if kind == tree.FILE and hash_content:
            sha = hashlib.sha256()
            handle = tar.extractfile(member)
            assert handle is not None  # a regular member always has a body
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
            content = sha.hexdigest()
        self._add(path, Node(entry, content))


def load(layout: Path, layers: list[dict], hash_content: bool = True) -> ParentTree:
    """The tree the layers build. hash_content=False skips hashing file contents (verify only
    needs the paths and kinds)."""
    result = ParentTree()
    for number, desc in enumerate(layers):
        result.apply_layer(layout, desc, number, hash_content)
    return result
