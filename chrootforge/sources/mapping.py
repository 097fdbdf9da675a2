"""Run extraction under the build's uid/gid mapping, so files get the owners builds will see.

The sandbox owns user namespaces (chrootforge.sandbox.run_mapped / detect_idmap). Real root with no
explicit idmap extracts directly: that is the same as the identity map the sandbox gives root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess


def needs_namespace(idmap) -> bool:
    return idmap is not None or os.getuid() != 0


def run_under_mapping(argv: list[str], idmap=None, env: dict | None = None) -> int:
    if not needs_namespace(idmap):
        return subprocess.call(argv, env=env)
    from chrootforge.sandbox import run_mapped

    return run_mapped(argv, idmap=idmap, env=env)


def remove_under_mapping(path, idmap=None) -> None:
    if not os.path.lexists(path):
        return
    if not needs_namespace(idmap):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", os.fspath(path)], check=False)
        return
    from chrootforge.sandbox import remove_tree

    remove_tree(path, idmap)


def resolved_idmap(idmap):
    if idmap is not None:
        return idmap
    from chrootforge.sandbox import detect_idmap

    return detect_idmap()


def idmap_key(idmap) -> str:
    """A short stable name for a mapping: owners on disk depend on it, so caches key on it."""
    idmap = resolved_idmap(idmap)
    text = repr(dataclasses.asdict(idmap)) if dataclasses.is_dataclass(idmap) else repr(idmap)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
