"""HTTP(S) and file:// downloads: streaming, resumable (Range), retried with backoff, with timeouts.

A download only ever writes to the partial file it is given; the caller verifies it and moves it into
the cache. `requests` is imported lazily, and file:// URLs never touch it (zero network I/O).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from chrootforge import __version__, log
from chrootforge.errors import CfError
from chrootforge.neterror import cause, host
from chrootforge.progress import ByteProgress

TIMEOUT = (10, 60)  # connect, read (seconds between bytes)
RETRIES = 4
_SMALL_MAX = 4 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class NotFound(CfError):
    """The mirror does not have this file (404/410, or a missing local file): try the next mirror."""


class Unavailable(CfError):
    """The mirror failed (5xx, refused, cut, timed out) even after retries: try the next mirror.
    `url` and `cause` (a few words, neterror.cause) let a caller summarize several failures."""

    def __init__(self, url: str, cause: str):
        super().__init__(f"{url}: {cause}")
        self.url, self.cause = url, cause


class _Retry(Exception):
    pass


def _backoff(attempt: int) -> float:
    base = float(os.environ.get("CHROOTFORGE_RETRY_BACKOFF", "0.5"))
    return min(base * (2**attempt), 8.0)


def _local_path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def _session():
    import requests  # lazy: `chrootforge run` never imports requests

    session = requests.Session()
    session.headers["User-Agent"] = f"chrootforge/{__version__}"
    # identity: a transparently gzipped body would break Range offsets and size checks
    session.headers["Accept-Encoding"] = "identity"
    return session


def get_small(url: str, *, retries: int = RETRIES) -> bytes:
    """A small file (latest file, signature, DIGESTS) in memory."""
    if url.startswith("file://"):
        path = _local_path(url)
        if not path.is_file():
            raise NotFound(f"{url}: no such file")
        return path.read_bytes()

    last: Exception | None = None
    with _session() as session:
        for attempt in range(retries):
            try:
                with session.get(url, timeout=TIMEOUT, stream=True) as resp:
                    if resp.status_code in (404, 410):
                        raise NotFound(f"{url}: HTTP {resp.status_code}")
                    if resp.status_code >= 500:
                        raise _Retry(f"HTTP {resp.status_code}")
                    if resp.status_code != 200:
                        raise NotFound(f"{url}: HTTP {resp.status_code}")
                    body = bytearray()
                    for chunk in resp.iter_content(65536):
                        body += chunk
                        if len(body) > _SMALL_MAX:
                            raise CfError(f"{url}: larger than {_SMALL_MAX} bytes, refusing")
                    return bytes(body)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                _Retry,
            ) as err:
                last = err
                if attempt + 1 < retries:
                    time.sleep(_backoff(attempt))
    raise Unavailable(url, _describe(last))


def get_file(
    url: str, partial: Path, *, label: str, expected_size: int | None = None, retries: int = RETRIES
) -> None:
    """Download `url` into `partial`, resuming what is already there."""
    if url.startswith("file://"):
        src = _local_path(url)
        if not src.is_file():
            raise NotFound(f"{url}: no such file")
        shutil.copyfile(src, partial)
        return

    last: Exception | None = None
    with _session() as session:
        for attempt in range(retries):
            try:
                if _download_once(session, url, partial, label, expected_size):
                    return
                last = _Retry("restarting from the beginning")
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                _Retry,
            ) as err:
                last = err
                log.info(f"{label}: {_describe(err)}; retrying ({attempt + 1}/{retries})")
            if attempt + 1 < retries:
                time.sleep(_backoff(attempt))
    raise Unavailable(url, _describe(last))


def _download_once(session, url: str, partial: Path, label: str, expected_size: int | None) -> bool:
    """One request. True when `partial` is complete; False to retry at once; raises otherwise."""
    have = partial.stat().st_size if partial.exists() else 0
    if expected_size is not None and have > expected_size:
        partial.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, timeout=TIMEOUT, stream=True) as resp:
        code = resp.status_code
        if code in (404, 410):
            raise NotFound(f"{url}: HTTP {code}")
        if code >= 500:
            raise _Retry(f"HTTP {code}")
        if code == 416:  # nothing after `have`: complete if the server's total says so
            match = re.match(r"bytes\s+\*/(\d+)", resp.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == have:
                return True
            partial.unlink(missing_ok=True)
            return False
        if code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                partial.unlink(missing_ok=True)  # a range we did not ask for: start over
                return False
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
        elif code == 200:  # the server ignored Range (or we asked for none): whole body
            have = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        else:
            raise NotFound(f"{url}: HTTP {code}")
        if total is None:
            total = expected_size
        done = have
        with open(partial, mode) as out, ByteProgress(label, total) as progress:
            progress.update(have)
            for chunk in resp.iter_content(1 << 16):
                out.write(chunk)
                done += len(chunk)
                progress.update(len(chunk))
        if total is not None and done != total:
            raise _Retry(f"connection ended at byte {done} of {total}")
        return True


def summarize(failures: list[CfError]) -> str:
    """Several failed requests in one line: hosts that failed the same way share their cause
    ("openpgpkey.gentoo.org, gentoo.org: cannot resolve the host name (DNS)")."""
    groups: dict[str, list[str]] = {}
    for err in failures:
        if isinstance(err, Unavailable):
            hosts = groups.setdefault(err.cause, [])
            if host(err.url) not in hosts:
                hosts.append(host(err.url))
        else:
            groups.setdefault(str(err), [])
    return "; ".join(f"{', '.join(hosts)}: {cause}" if hosts else cause for cause, hosts in groups.items())


def _describe(err: Exception | None) -> str:
    if err is None:
        return "failed"

    return cause(err)
