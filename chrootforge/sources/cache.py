"""The content-addressed cache of verified source files.

    <root>/blobs/<sha512>/<name>          the file, plus its signature/DIGESTS, and meta.json
    <root>/names/<key>.json               immutable name (e.g. a dated stage) -> FetchedFile record
    <root>/unverified/<sha512>/<name>     --insecure-skip-verify results: never served to a verified fetch
    <root>/partial/                       downloads in progress (resumable); <root>/tmp/ scratch

Entries appear by rename under <root>/.lock, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

from chrootforge import untrusted
from chrootforge.fsutil import atomic_write, file_lock, user_cache_dir
from chrootforge.sources.fetched import FetchedFile


def default_root() -> Path:
    return user_cache_dir() / "sources"


class SourceCache:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else default_root()

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _name_file(self, key: str) -> Path:
        return self._dir("names") / (quote(key, safe="") + ".json")

    def partial_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        return self._dir("partial") / f"{digest}-{url.rsplit('/', 1)[-1]}"

    def download_lock(self, partial: Path):
        """One writer per partial file: concurrent fetches of one URL wait instead of interleaving."""
        return file_lock(partial.with_name(partial.name + ".lock"))

    @contextlib.contextmanager
    def scratch(self):
        """A private temp dir for one fetch, removed afterwards whatever happens."""
        path = Path(tempfile.mkdtemp(prefix="fetch-", dir=self._dir("tmp")))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def lookup(self, key: str) -> FetchedFile | None:
        try:
            record = FetchedFile.from_json(untrusted.read_json(self._name_file(key)))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return record if record.path.is_file() and not record.insecure else None

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
                    if record.path.is_file() and not record.insecure:
                        return record
        return None

    def store(
        self, src: Path, record: FetchedFile, *, key: str | None, extras: dict[str, Path] | None = None
    ) -> FetchedFile:
        """Move the verified `src` into the cache; return the record pointing at the cached copy."""
        area = "unverified" if record.insecure else "blobs"
        final = self._dir(area) / record.sha512
        target = final / record.path.name
        result = FetchedFile(**{**record.__dict__, "path": target})
        with file_lock(self.root / ".lock"):
            if not target.is_file():
                tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=self._dir(area)))
                try:
                    os.replace(src, tmp / target.name)
                    os.chmod(tmp / target.name, 0o444)
                    for suffix, path in (extras or {}).items():
                        shutil.copyfile(path, tmp / f"{target.name}{suffix}")
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
