"""The build inputs of a namespace: the stage3 and the portage tree, identified cheaply, fetched lazily.

Identification (for cache keys) must be fast on a no-op build: a local stage is identified by its
sha512, memoized by (path, size, mtime, inode); a tree directory by a content hash memoized the same
way. Verification (signature and digests) happens only when something is actually built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_write, file_lock, user_cache_dir
from chrootforge.gentoo.state import tree_id
from chrootforge.spec.model import Namespace


@dataclass
class Inputs:
    stage_id: str                 # sha512 of the stage tarball (or "mirror:<arch>-<variant>[@date]")
    tree_id: str
    tree_path: Path | None        # the directory bound as the main tree (None until resolved)


def _memo_sha512(path: Path) -> str:
    st = path.stat()
    memo_file = user_cache_dir() / "stage-digests.json"
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if stamp in memo:
        return memo[stamp]
    h = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    with file_lock(memo_file.parent / ".stage-digests.lock"):
        try:
            memo = json.loads(memo_file.read_text())
        except (OSError, ValueError):
            memo = {}
        memo[stamp] = h.hexdigest()
        atomic_write(memo_file, json.dumps(memo, indent=1))
    return memo[stamp]


def stage_path(ns: Namespace, override: Path | None = None) -> Path | None:
    return override or ns.stage3.path


def identify(ns: Namespace, stage_override: Path | None = None) -> Inputs:
    path = stage_path(ns, stage_override)
    if path is not None:
        if not path.is_file():
            raise UsageError(f"stage3 {path} does not exist",
                             hint=f"fix [stage3] path in {ns.spec_path} or run `chrootforge fetch stage3`")
        stage_id = _memo_sha512(path)
    else:
        s = ns.stage3
        stage_id = f"mirror:{s.arch}-{s.variant}@{s.date or 'latest'}"
    if ns.tree.path is not None:
        if not ns.tree.path.is_dir():
            raise UsageError(f"portage tree {ns.tree.path} is not a directory",
                             hint=f"fix [tree] path in {ns.spec_path}")
        tid = tree_id(ns.tree.path)
        for name, repo in sorted(ns.repos.items()):
            if not repo.is_dir():
                raise UsageError(f"repository {name}: {repo} is not a directory")
            tid += f"+{name}:{tree_id(repo)}"
        return Inputs(stage_id, tid, ns.tree.path)
    snap = ns.tree.snapshot_path
    tid = f"snapshot:{_memo_sha512(snap)}" if snap else f"snapshot:{ns.tree.snapshot}"
    return Inputs(stage_id, tid, None)


def fetch_stage(ns: Namespace, stage_override: Path | None = None):
    """Verify (and fetch) the stage3 -> FetchedFile."""
    from chrootforge.sources import fetch

    s = ns.stage3
    path = stage_path(ns, stage_override)
    if path is not None:
        return fetch.use_local_stage(path, keyrings=s.keyrings, insecure=s.insecure)
    return fetch.fetch_stage3(arch=s.arch, variant=s.variant, mirrors=list(s.mirrors) or None, date=s.date,
                              keyrings=s.keyrings, insecure=s.insecure)


def resolve_tree(ns: Namespace, idmap) -> tuple[Path, object | None]:
    """The main tree directory: the configured one, or a verified snapshot extracted once."""
    if ns.tree.path is not None:
        return ns.tree.path, None
    from chrootforge.sources import fetch

    t = ns.tree
    if t.snapshot_path:
        record = fetch.use_local_snapshot(t.snapshot_path, keyrings=t.keyrings, insecure=t.insecure)
    else:
        date = None if t.snapshot == "latest" else t.snapshot
        record = fetch.fetch_snapshot(date=date, keyrings=t.keyrings, insecure=t.insecure)
    dest = user_cache_dir() / "trees" / record.sha512[:32]
    if not dest.is_dir():
        from chrootforge.sources.extract import extract_here

        dest.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(dest.parent / f".{dest.name}.lock"):
            if not dest.is_dir():
                tmp = dest.parent / f".{dest.name}.tmp"
                extract_here(record.path, tmp)
                tops = [p for p in tmp.iterdir() if p.is_dir()]
                if len(tops) != 1:
                    raise CfError(f"snapshot {record.name}: expected one top directory")
                tops[0].rename(dest)
    return dest, record
