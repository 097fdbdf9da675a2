"""Put one blob into a repository, moving as few bytes as possible.

1. HEAD: the repository has it already -> skipped.
2. A repository of the same registry is known to hold it (blobcache) -> POST ?mount=&from= ;
   201 means mounted, 202 means the registry opened an ordinary upload instead (used below).
3. Upload: blobs up to `chunk_size` in one PUT; larger ones in PATCH chunks, then PUT ?digest=.
   A failed request is never repeated blindly: the client asks the upload URL where the registry
   stands (GET -> Range: 0-N) and resumes from N+1; when the registry cannot say (or has dropped the
   upload), the blob starts again in a new upload session.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote, urljoin

from chrootforge.errors import CfError
from chrootforge.registry.blobcache import BlobLocations
from chrootforge.registry.meter import Meter
from chrootforge.registry.transport import Client, RegistryError, backoff

_RANGE_RE = re.compile(r"^(?:bytes=)?0-(\d+)\Z")
_READ = 1 << 20
# registry answers after which a fresh upload session may succeed
_RESTARTABLE = frozenset(("BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"))


class Aborted(Exception):
    """Another blob of the same push failed: stop sending."""


@dataclasses.dataclass(frozen=True)
class BlobOutcome:
    digest: str
    size: int
    action: str  # "skipped" | "mounted" | "uploaded"
    sent: int  # bytes sent on the wire (resent bytes included)
    source: str | None = None  # the repository a mount came from


class FileBody:
    """A byte range of a file as a request body: sized (so requests sends Content-Length, never
    chunked encoding), read in 1 MiB pieces, counted, and stoppable."""

    def __init__(self, path: Path, start: int, length: int, meter: Meter, abort: threading.Event):
        self.path, self.start, self.length = path, start, length
        self.meter, self.abort = meter, abort

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        with open(self.path, "rb") as handle:
            handle.seek(self.start)
            left = self.length
            while left:
                if self.abort.is_set():
                    raise Aborted()
                data = handle.read(min(_READ, left))
                if not data:
                    raise CfError(
                        f"{self.path} is shorter than its descriptor says",
                        hint="the layout is damaged: chrootforge verify LAYOUT",
                    )
                left -= len(data)
                self.meter.network(len(data))
                yield data


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={quote(digest, safe='')}"


def _next_location(resp, current: str) -> str:
    location = resp.headers.get("Location")
    resp.close()
    return urljoin(current, location) if location else current


class BlobPusher:
    """Pushes blobs of one image to client.repository; shared by the push's worker threads."""

    def __init__(self, client: Client, locations: BlobLocations, meter: Meter, chunk_size: int):
        self.client = client
        self.locations = locations
        self.meter = meter
        self.chunk_size = chunk_size
        self.abort = threading.Event()

    def push(self, digest: str, size: int, path: Path) -> BlobOutcome:
        client = self.client
        short = digest[7:19]
        resp = client.request(
            "HEAD",
            f"blobs/{digest}",
            what=f"checking blob {short}",
            scopes=client.push_scope(),
            expect=(200, 404),
        )
        resp.close()
        if resp.status_code == 200:
            self.meter.skipped(size)
            self.locations.record(client.registry, digest, client.repository)
            return BlobOutcome(digest, size, "skipped", 0)
        source = next(iter(self.locations.sources(client.registry, digest, client.repository)), None)
        mounted = self._mount(digest, size, source) if source else None
        if isinstance(mounted, BlobOutcome):
            return mounted
        sent = self._upload(digest, size, path, mounted)  # into the upload a failed mount opened, if any
        self.locations.record(client.registry, digest, client.repository)
        return BlobOutcome(digest, size, "uploaded", sent)

    def _mount(self, digest: str, size: int, source: str) -> BlobOutcome | str | None:
        """Mounted (an outcome), or the upload URL the registry opened instead, or None when the
        registry refused the attempt (e.g. no pull right on `source`): then a plain upload follows."""
        client = self.client
        try:
            resp = client.request(
                "POST",
                f"blobs/uploads/?mount={quote(digest, safe='')}&from={quote(source, safe='/')}",
                what=f"mounting blob {digest[7:19]} from {source}",
                scopes=client.push_scope() + (f"repository:{source}:pull",),
                expect=(201, 202),
            )
        except RegistryError as err:
            if err.retryable:
                raise
            return None
        if resp.status_code == 202:
            return _next_location(resp, client.url("blobs/uploads/"))
        resp.close()
        self.meter.skipped(size)
        self.locations.record(client.registry, digest, client.repository)
        return BlobOutcome(digest, size, "mounted", 0, source)

    def _start(self, short: str) -> str:
        resp = self.client.request(
            "POST",
            "blobs/uploads/",
            what=f"starting the upload of blob {short}",
            scopes=self.client.push_scope(),
            expect=(202,),
        )
        if not resp.headers.get("Location"):
            resp.close()
            raise RegistryError(f"{self.client.registry}: the registry opened an upload without a Location")
        return _next_location(resp, self.client.url("blobs/uploads/"))

    def _upload(self, digest: str, size: int, path: Path, location: str | None) -> int:
        short = digest[7:19]
        location = location or self._start(short)
        offset = sent = failures = 0
        while True:
            try:
                if offset == 0 and size <= self.chunk_size:
                    sent += size
                    self._put(location, digest, FileBody(path, 0, size, self.meter, self.abort), short)
                    return sent
                while offset < size:
                    n = min(self.chunk_size, size - offset)
                    sent += n
                    location, offset = self._patch(location, offset, n, path, short)
                self._put(location, digest, None, short)
                return sent
            except RegistryError as err:
                if not (err.retryable or err.code in _RESTARTABLE) or failures >= self.client.options.retries:
                    raise
                failures += 1
                time.sleep(backoff(failures - 1))
                resumed = self._resume_point(location, short)
                location, offset = resumed if resumed else (self._start(short), 0)

    def _put(self, location: str, digest: str, body: FileBody | None, short: str) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body) if body else 0),
        }
        resp = self.client.request(
            "PUT",
            _with_digest(location, digest),
            what=f"uploading blob {short}",
            scopes=self.client.push_scope(),
            headers=headers,
            body=(lambda: body) if body and len(body) else (lambda: b""),
            expect=(201,),
            retry=False,
        )
        got = resp.headers.get("Docker-Content-Digest")
        resp.close()
        if got and got != digest:
            raise RegistryError(f"{self.client.registry}: blob {short} was stored as {got}, not {digest}")

    def _patch(self, location: str, offset: int, n: int, path: Path, short: str) -> tuple[str, int]:
        body = FileBody(path, offset, n, self.meter, self.abort)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(n),
            "Content-Range": f"{offset}-{offset + n - 1}",
        }
        resp = self.client.request(
            "PATCH",
            location,
            what=f"uploading blob {short} (bytes {offset}+{n})",
            scopes=self.client.push_scope(),
            headers=headers,
            body=lambda: body,
            expect=(202,),
            retry=False,
        )
        match = _RANGE_RE.match(resp.headers.get("Range", ""))
        location = _next_location(resp, location)
        # the registry's own count is the truth; without one, trust that the chunk landed
        return location, int(match.group(1)) + 1 if match else offset + n

    def _resume_point(self, location: str, short: str) -> tuple[str, int] | None:
        """Where the registry stands in this upload, or None when it must start again."""
        try:
            resp = self.client.request(
                "GET",
                location,
                what=f"asking where the upload of blob {short} stands",
                scopes=self.client.push_scope(),
                expect=(204,),
            )
        except RegistryError:
            return None
        match = _RANGE_RE.match(resp.headers.get("Range", ""))
        new_location = _next_location(resp, location)
        if not match or match.group(1) == "0":
            return None  # "0-0" cannot tell nothing from one byte: start over
        return new_location, int(match.group(1)) + 1
