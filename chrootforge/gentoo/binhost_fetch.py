"""The host side of the binhost (gentoo/binhost.py explains the design): the index, then exactly
the binary packages portage asked for, into the mirror `<cache>/binhost/<url id>/<binpkgs key>/`
(kept for the runner's next builds). Each image build gets its own view, a directory holding the
index it fetched and hard links to the packages it wanted, which the build sandbox sees read-only
as a file:// binrepo: a concurrent build that refreshes the index cannot change what this one's
emerge reads between its pretend run and its real one.

Every download is checked against the index before it is renamed into place: at most SIZE bytes,
then SIZE and every digest the index lists (SHA1, MD5, ...); a path must stay inside the
directory. TLS and credentials are the registry client's (system CAs, certs.d/HOST:PORT,
--cert-dir, --tls-verify=false; ~/.netrc for a password).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from chrootforge import holds, log
from chrootforge.cache.kinds import confined, entry
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.gentoo import binhost as bh
from chrootforge.progress import ByteProgress
from chrootforge.registry import RegistryOptions
from chrootforge.registry.transport import backoff, describe_network_error

MAX_INDEX = 256 << 20
_BLOCK = 1 << 20


class BinhostError(CfError):
    pass


class Mirror:
    """The local copy of one binhost directory (one binpkgs key), shared by the runner's builds."""

    def __init__(self, base_url: str, key: str, options=None, cache: Path | None = None):
        self.url = bh.key_url(base_url, key)
        self.options = options
        url_id = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:16]
        self.dir = confined(cache, url_id, key) if cache else entry("binhost", url_id, key)
        holds.current().hold(self.dir)  # for the run, before it is made or read: prune waits
        self._session = None

    def ensure_dir(self) -> Path:
        """The mirror directory; searchable and readable by anyone, since root's sandbox runs as
        an unprivileged range (README, "Running as root")."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in (self.dir.parent.parent, self.dir.parent, self.dir):
            path.chmod(0o755)
        return self.dir

    # -- the index ----------------------------------------------------------------------------
    def refresh_index(self, view: Path) -> dict[str, bh.Entry] | None:
        """Fetch and parse URL/Packages into the build's view; None when the binhost has no
        directory for this key (nothing was built with this configuration yet)."""
        self.ensure_dir()
        data = self._get(self.url + "Packages", MAX_INDEX, missing_ok=True)
        if data is None:
            return None
        try:
            entries = bh.parse_index(data.decode("utf-8", errors="replace"))
        except bh.BadIndex as err:
            raise BinhostError(f"{self.url}Packages: {err}") from err
        atomic_write(view / "Packages", data)  # (no Packages.gz there, which portage would read first)
        return entries

    # -- the packages -------------------------------------------------------------------------
    def fetch(self, paths: list[str], index: dict[str, bh.Entry], view: Path) -> int:
        """Download the packages at `paths` (index PATHs) that the mirror lacks, and link them into
        the build's view; bytes downloaded."""
        entries = []
        for path in paths:
            entry = index.get(path)
            if entry is None:
                raise BinhostError(f"portage asked for {path[:80]!r}, which the index does not list")
            problem = bh.check_entry(entry)
            if problem:
                raise BinhostError(f"refused: {problem}")
            entries.append(entry)
        moved = 0
        with file_lock(self.dir.parent / f".{self.dir.name}.lock"):
            for entry in entries:
                parts = entry.path.split("/")  # (check_entry: plain components, no `..`)
                dest = confined(self.dir, *parts, what="binhost package path")
                if not (dest.is_file() and _matches(dest, entry)):
                    moved += self._download(entry, dest)
                _link(dest, confined(view, *parts, what="binhost package path"))
        return moved

    def _download(self, entry: bh.Entry, dest: Path) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        for parent in dest.relative_to(self.dir).parents:
            (self.dir / parent).chmod(0o755)
        for stale in dest.parent.glob(f".{dest.name}.*.tmp"):  # a killed download's (we hold the lock)
            stale.unlink(missing_ok=True)
        tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
        progress = ByteProgress(f"binhost {entry.path.rsplit('/', 1)[-1]}", entry.size)  # (a terminal only)
        try:
            hashes = {name: hashlib.new(name) for name in entry.digests}
            size = 0
            with open(tmp, "wb") as out:
                for block in self._stream(self.url + entry.path, entry.size):
                    size += len(block)
                    for h in hashes.values():
                        h.update(block)
                    out.write(block)
                    progress.update(len(block))
                out.flush()
                os.fsync(out.fileno())
            if size != entry.size:
                raise BinhostError(f"{entry.path}: got {size} bytes, the index says {entry.size}")
            for name, h in hashes.items():
                if h.hexdigest() != entry.digests[name]:
                    raise BinhostError(
                        f"{entry.path} does not match its {name.upper()} in the index",
                        hint="the binhost served corrupt or tampered data; nothing was kept",
                    )
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            progress.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return size

    # -- transport ----------------------------------------------------------------------------
    def _get(self, url: str, limit: int, missing_ok: bool = False) -> bytes | None:
        chunks, size = [], 0
        try:
            for block in self._stream(url, limit, missing_ok=missing_ok):
                chunks.append(block)
                size += len(block)
        except _Missing:
            return None
        return b"".join(chunks)

    def _stream(self, url: str, limit: int, missing_ok: bool = False):
        """The body of `url` in blocks; more than `limit` bytes is an error."""
        if urlsplit(url).scheme == "file":
            yield from self._read_file(urlsplit(url).path, limit, missing_ok)
            return

        options = self._registry_options()
        failures = 0
        while True:
            try:
                resp = self._http().get(url, stream=True, timeout=options.timeout, allow_redirects=True)
                break
            except requests.RequestException as err:
                failures += 1
                if failures > options.retries:
                    raise BinhostError(
                        f"{url}: {describe_network_error(err, options.timeout)}",
                        hint="is the binhost up and reachable from this machine?",
                    ) from err
                time.sleep(backoff(failures - 1))
        with contextlib.closing(resp):
            if resp.status_code == 404 and missing_ok:
                raise _Missing
            if resp.status_code != 200:
                raise BinhostError(f"{url}: HTTP {resp.status_code}")
            got = 0
            try:
                for block in resp.iter_content(_BLOCK):
                    got += len(block)
                    if got > limit:
                        raise BinhostError(f"{url} is larger than {limit} bytes")
                    yield block
            except requests.RequestException as err:
                raise BinhostError(f"{url}: {describe_network_error(err, options.timeout)}") from err

    def _read_file(self, path: str, limit: int, missing_ok: bool):
        if missing_ok and not os.path.lexists(path):
            raise _Missing
        got = 0
        try:
            with open(path, "rb") as handle:
                while block := handle.read(_BLOCK):
                    got += len(block)
                    if got > limit:
                        raise BinhostError(f"{path} is larger than {limit} bytes")
                    yield block
        except OSError as err:
            raise BinhostError(f"cannot read {path}: {err.strerror}") from err

    def _registry_options(self):
        return self.options or RegistryOptions()

    def _http(self):
        if self._session is None:
            from chrootforge.registry.transport import tls_session

            self._session = tls_session(urlsplit(self.url).netloc, self._registry_options())
        return self._session


class _Missing(Exception):
    pass


def _link(src: Path, dest: Path) -> None:
    """`src` at `dest` (a hard link; a copy across file systems); parents readable by anyone."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
        dest.chmod(0o644)


def _matches(path: Path, entry: bh.Entry) -> bool:
    if path.stat().st_size != entry.size:
        return False
    hashes = {name: hashlib.new(name) for name in entry.digests}
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            for h in hashes.values():
                h.update(block)
    return all(h.hexdigest() == entry.digests[name] for name, h in hashes.items())


def prepare(mirror: Mirror, view: Path, argv: list[str], run_pretend, image: str) -> list[str]:
    """The image's emerge argv, with --getbinpkg when the binhost can serve it. `view` is the
    build's binrepo directory (empty; bound at binhost.MOUNT); `run_pretend(argv) -> (exit status,
    output)` runs emerge in the sandbox."""
    try:
        index = mirror.refresh_index(view)
        if index is None:
            log.info(f"    binhost: {mirror.url} has no packages for this configuration yet")
            return argv
        code, output = run_pretend(bh.pretend_argv(argv))
        if code != 0:
            log.notice(
                f"{image}: emerge could not say what to take from the binhost (exit status {code}); "
                "building without it"
            )
            return argv
        paths = bh.wanted_paths(output)
        moved = mirror.fetch(paths, index, view)
    except BinhostError as err:
        log.notice(f"{image}: binhost {mirror.url}: {err}; building without it")
        return argv
    log.info(
        f"    binhost: {len(paths)} binary package(s) from {mirror.url} ({moved / 1e6:.1f} MB downloaded)"
    )
    return bh.with_getbinpkg(argv) if paths else argv
