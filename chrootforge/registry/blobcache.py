"""Where blobs were last seen in a registry, so a push can mount instead of upload (like skopeo's
blob-info cache).

One JSON file, `$XDG_CACHE_HOME/chrootforge/registry/blob-locations.json`:
`{"version": 1, "registries": {HOST: {DIGEST: [REPO, ...]}}}`, newest repository first, bounded per
digest and per registry. It is only a hint: a mount of a blob that is gone simply turns into an
upload. Written under a lock, atomically, merged with what other processes wrote meanwhile.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from chrootforge import log, untrusted
from chrootforge.cache.kinds import bookkeeping
from chrootforge.fsutil import atomic_write, file_lock

MAX_REPOS = 4
MAX_DIGESTS = 20000


def cache_file() -> Path:
    return bookkeeping("registry") / "blob-locations.json"


def merge(
    data: dict, seen: list[tuple[str, str, str]], max_repos: int = MAX_REPOS, max_digests: int = MAX_DIGESTS
) -> dict:
    """`data` updated with (registry, digest, repository) sightings, newest first, bounded."""
    registries = {k: dict(v) for k, v in (data.get("registries") or {}).items() if isinstance(v, dict)}
    for registry, digest, repo in seen:
        entries = registries.setdefault(registry, {})
        old = [r for r in entries.pop(digest, []) if isinstance(r, str) and r != repo]
        entries[digest] = [repo, *old][:max_repos]  # re-inserted: the newest digests sit last
        while len(entries) > max_digests:
            del entries[next(iter(entries))]
    return {"version": 1, "registries": registries}


def _load(path: Path) -> dict:
    try:
        data = untrusted.read_json(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a damaged hint file is as good as none; the next save replaces it
    return data if isinstance(data, dict) and data.get("version") == 1 else {}


class BlobLocations:
    """The cache for one run: read once, sightings collected in memory, saved at the end."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_file()
        self.data = _load(self.path)
        self.seen: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def sources(self, registry: str, digest: str, exclude: str) -> list[str]:
        """Other repositories of `registry` known to hold `digest`, newest first."""
        with self.lock:
            found = [r for reg, d, r in reversed(self.seen) if reg == registry and d == digest]
            stored = (self.data.get("registries") or {}).get(registry, {}).get(digest, [])
            out = list(dict.fromkeys(found + [r for r in stored if isinstance(r, str)]))
        return [r for r in out if r != exclude]

    def record(self, registry: str, digest: str, repository: str) -> None:
        with self.lock:
            self.seen.append((registry, digest, repository))

    def save(self) -> None:
        if not self.seen:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(self.path.with_name(self.path.name + ".lock")):
                data = merge(_load(self.path), self.seen)
                # A hint file (a damaged one reads as empty): no fsync on every push's way out.
                text = json.dumps(data, separators=(",", ":")) + "\n"
                atomic_write(self.path, text, durable=False)
            self.seen = []
        except OSError as err:
            log.info(f"could not update the blob location cache {self.path}: {err.strerror}")
