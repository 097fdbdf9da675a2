"""A keyed, locked, atomically published cache directory for the test world's artefacts.

`keyed_build(cache_dir, kind, inputs, build)`: the entry is `<cache_dir>/<kind>-<key>` where the key
hashes every input. The first caller builds it into a temp dir beside it (under an flock, so two
concurrent test sessions do not both build) and renames it into place; later callers just use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chrootforge.fsutil import file_lock

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
EXAMPLES = REPO_ROOT / "examples"
SUITE = "bookworm"  # the Debian suite of the stage, of the pinned .debs and of the source archive
SHARED_TMP = Path(os.environ.get("CHROOTFORGE_TEST_TMP", "/var/tmp/chrootforge-tests"))


def world_cache_dir() -> Path:
    """Where the world is built and cached: $CHROOTFORGE_WORLD_CACHE, else
    /var/tmp/chrootforge-tests/world (world-<uid> when not root), shared with the test suite."""
    explicit = os.environ.get("CHROOTFORGE_WORLD_CACHE")
    if explicit:
        return Path(explicit)
    return SHARED_TMP / ("world" if os.getuid() == 0 else f"world-{os.getuid()}")


def cache_key(inputs: dict) -> str:
    """A short hash of a JSON-able description of every input."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def source_digests(*names: str) -> dict[str, str]:
    """sha256 of the text of recipe modules, so any edit to a recipe changes the key."""
    return {name: hashlib.sha256((HERE / name).read_bytes()).hexdigest() for name in names}


def tree_digest(root: Path) -> str:
    """sha256 over the relative paths, modes and contents of every file under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        if path.is_symlink():
            digest.update(b"L" + os.readlink(path).encode())
        else:
            digest.update(b"X" if os.access(path, os.X_OK) else b"F")
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class Step:
    """Progress for a multi-step build: which step, and the time since the build started."""

    def __init__(self, what: str, quiet: bool = False):
        self.what = what
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{self.what} {time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True
            )


def keyed_build(cache_dir: Path, kind: str, inputs: dict, build: Callable[[Path], None]) -> Path:
    """Return `<cache_dir>/<kind>-<key>`, calling `build(tmpdir)` first if it does not exist yet."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"{kind}-{cache_key(inputs)}"
    if (final / ".complete").exists():
        return final
    with file_lock(cache_dir / f".{kind}.lock"):
        if (final / ".complete").exists():  # built by another session while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{kind}.", dir=cache_dir))
        try:
            build(tmp)
            (tmp / ".inputs.json").write_text(json.dumps(inputs, sort_keys=True, indent=1) + "\n")
            (tmp / ".complete").write_text("")
            tmp.chmod(0o755)
            if final.exists():  # an incomplete leftover from an interrupted older build
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
