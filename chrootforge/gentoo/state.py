"""Per-image build state beside the layout: the cache key, the manifest digest and the package records.

<layout>.build/state/<image>.json   written atomically after a successful commit
<layout>.build/logs/<image>/        emerge and hook logs of the last build
<cache>/work/<layout hash>/         builders (removed after each build; build.work_root)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chrootforge import untrusted
from chrootforge.cache.kinds import bookkeeping
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.gentoo import records as rec


def build_dir(layout: Path) -> Path:
    layout = Path(layout)
    return layout.parent / f"{layout.name}.build"


@dataclass
class ImageState:
    image: str
    key: str
    manifest_digest: str
    tags: list[str]  # full ref names in the layout
    records: list[dict] = field(default_factory=list)  # cumulative InstalledPackage records
    own: list[str] = field(default_factory=list)  # cpvs this image's layer installed
    provided: list[str] = field(default_factory=list)  # explicit package.provided entries passed down
    builder_files: list[dict] = field(default_factory=list)  # cumulative runtime_libs copies (BuilderFile)
    size: int = 0
    layers: int = 0
    seconds: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)  # where the inputs came from (log only)

    def packages(self) -> list[rec.InstalledPackage]:
        return rec.load(self.records)


def state_path(layout: Path, image: str) -> Path:
    return build_dir(layout) / "state" / f"{image}.json"


def load_state(layout: Path, image: str) -> ImageState | None:
    try:
        data = untrusted.read_json(state_path(layout, image))
        return ImageState(**data)
    except (OSError, ValueError, TypeError):
        return None


def save_state(layout: Path, state: ImageState) -> None:
    path = state_path(layout, state.image)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(state), indent=1, sort_keys=True))


def cache_key(parts: dict) -> str:
    """sha256 of the canonical JSON of the build inputs."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_id(path: Path) -> str:
    """A content hash of a repository directory (paths, modes, contents, link targets).

    File digests are memoized by (size, mtime, inode) so a warm no-op build only stats the tree.
    """
    path = Path(path).resolve()

    memo_dir = bookkeeping("treeids")
    memo_dir.mkdir(parents=True, exist_ok=True)
    memo_file = memo_dir / (hashlib.sha256(str(path).encode()).hexdigest()[:24] + ".json")
    try:
        memo = untrusted.read_json(memo_file)
    except (OSError, ValueError):
        memo = {}
    fresh: dict[str, list] = {}
    outer = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        rel_dir = os.path.relpath(dirpath, path)
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(full)
            if os.path.islink(full):
                digest = "link:" + os.readlink(full)
            else:
                stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
                old = memo.get(rel)
                if old and old[:3] == stamp:
                    digest = old[3]
                else:
                    digest = file_digest(Path(full))
                fresh[rel] = [*stamp, digest]
            outer.update(
                f"{rel}\0{st.st_mode & 0o7777 if not os.path.islink(full) else 0}\0{digest}\n".encode()
            )
    if fresh != memo:
        with file_lock(memo_dir / ".lock"):
            atomic_write(memo_file, json.dumps(fresh))
    return "sha256:" + outer.hexdigest()
