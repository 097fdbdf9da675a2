"""Run commands under the build's uid/gid mapping, so files get the owners builds will see.

The sandbox owns user namespaces (chrootforge.sandbox: run_mapped, remove_tree, detect_idmap);
these are the sources package's thin entry points to them, with the default map resolved once.
"""

from __future__ import annotations

import hashlib

from chrootforge.sandbox import detect_idmap, remove_tree, run_mapped


def run_under_mapping(argv: list[str], idmap=None, env: dict | None = None) -> int:
    return run_mapped(argv, idmap=resolved_idmap(idmap), env=env)


def remove_under_mapping(path, idmap=None) -> None:
    remove_tree(path, resolved_idmap(idmap))


def resolved_idmap(idmap):
    if idmap is not None:
        return idmap

    return detect_idmap()


def idmap_key(idmap) -> str:
    """A short stable name for a mapping: owners on disk depend on it, so caches key on it."""
    idmap = resolved_idmap(idmap)
    text = repr(idmap.as_dict())
    return hashlib.sha256(text.encode()).hexdigest()[:16]
