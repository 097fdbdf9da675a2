"""The content-addressed cache of verified source files.

    <root>/blobs/<sha512>/<name>          the file, plus its signature/DIGESTS, and meta.json
    <root>/names/<key>.json               immutable name (e.g. a dated stage) -> FetchedFile record
    <root>/unverified/<sha512>/<name>     --insecure-skip-verify results: never served to a verified fetch
    <root>/partial/                       downloads in progress (resumable); <root>/tmp/ scratch

Entries appear by rename under <root>/.lock, so a reader sees a whole entry or none. Every blob
dir and scratch dir is held (chrootforge.holds) before it is looked at or made: `cache prune`
leaves it alone while this run uses it. File names come from mirrors and lock files: every one
goes through `cache.kinds.confined`, so none can leave the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

from chrootforge import holds, untrusted
from chrootforge.cache.kinds import confined, kind_root, source_area
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.sources.fetched import FetchedFile


def default_root() -> Path:
    return kind_root("sources")


class SourceCache:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).absolute() if root else default_root()

    def _dir(self, name: str) -> Path:
        path = source_area(self.root, name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def file_in(self, folder: Path, name: str) -> Path:
        """`folder/name` for a name from a mirror, a lock or a local path: one plain file name."""
        return confined(folder, name, what="source file name")

    def _name_file(self, key: str) -> Path:
        return self._dir("names") / (quote(key, safe="") + ".json")

    def partial_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        return self.file_in(self._dir("partial"), f"{digest}-{url.rsplit('/', 1)[-1]}")

    def download_lock(self, partial: Path):
        """One writer per partial file: concurrent fetches of one URL wait instead of interleaving."""
        return file_lock(partial.with_name(partial.name + ".lock"))

    @contextlib.contextmanager
    def scratch(self):
        """A private temp dir for one fetch, held while it exists (a killed fetch's is a leftover
        `cache prune` removes), removed afterwards whatever happens."""
        path = self._dir("tmp") / f"fetch-{secrets.token_hex(8)}"
        mine = holds.Holds()
        mine.hold(path)  # before it exists: a prune cannot take it for a leftover meanwhile
        try:
            path.mkdir(mode=0o700)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            mine.release(path)

    def _held(self, record: FetchedFile) -> FetchedFile | None:
        """`record` if its file is (still) there, its blob dir now held for this run."""
        blob_dir = record.path.parent
        if blob_dir.parent not in (source_area(self.root, "blobs"), source_area(self.root, "unverified")):
            return None  # a record pointing anywhere else is not ours to serve
        holds.current().hold(blob_dir)
        return record if record.path.is_file() else None

    def lookup(self, key: str) -> FetchedFile | None:
        try:
            record = FetchedFile.from_json(untrusted.read_json(self._name_file(key)))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if record.insecure:
            return None
        return self._held(record)

    def newest(self, key_prefix: str) -> FetchedFile | None:
        """The newest cached name starting with key_prefix (for --offline 'latest')."""
        prefix = quote(key_prefix, safe="")
        names = sorted(p.name for p in self._dir("names").glob("*.json") if p.name.startswith(prefix))
        for name in reversed(names):
            hit = self.lookup(unquote(name[:-5]))
            if hit:
                return hit
        return None

    def find_by_signature(self, filename: str, signature: bytes, suffix: str) -> FetchedFile | None:
        """A cached verified file of this name whose detached signature is byte-identical.

        A new upload gets a new signature (it carries a timestamp), so an identical signature
        means identical content, already verified: a cheap freshness check for 'latest' files.
        """
        for meta in self._dir("blobs").glob(f"*/{filename}.meta.json"):
            sig = meta.with_name(filename + suffix)
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                if sig.read_bytes() == signature:
                    record = FetchedFile.from_json(untrusted.read_json(meta))
                    if not record.insecure and self._held(record):
                        return record
        return None

    def store(
        self, src: Path, record: FetchedFile, *, key: str | None, extras: dict[str, Path] | None = None
    ) -> FetchedFile:
        """Move the verified `src` into the cache; return the record pointing at the cached copy."""
        area = "unverified" if record.insecure else "blobs"
        final = confined(self._dir(area), record.sha512, what="sha512")
        target = self.file_in(final, record.path.name)
        result = FetchedFile(**{**record.__dict__, "path": target})
        holds.current().hold(final)  # before it is made: this run uses it from now on
        with file_lock(self.root / ".lock"):
            if not target.is_file():
                tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=self._dir(area)))
                try:
                    os.replace(src, tmp / target.name)
                    os.chmod(tmp / target.name, 0o444)
                    for suffix, path in (extras or {}).items():
                        shutil.copyfile(path, self.file_in(tmp, f"{target.name}{suffix}"))
                    (tmp / f"{target.name}.meta.json").write_text(json.dumps(result.to_json(), indent=1))
                    if final.exists():  # same content under another name: keep it, add ours
                        for item in tmp.iterdir():
                            os.replace(item, final / item.name)
                        tmp.rmdir()
                    else:
                        os.chmod(tmp, 0o755)
                        os.rename(tmp, final)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            if key and not record.insecure:
                atomic_write(self._name_file(key), json.dumps(result.to_json(), indent=1))
        return result
