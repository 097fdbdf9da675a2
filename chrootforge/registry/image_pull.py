"""pull: an image and its referrers from a registry into an OCI layout, verified on the way in.

1. The manifest (by tag or digest): at most 4 MiB, its digest checked against the reference or the
   registry's Docker-Content-Digest, its media type and descriptors checked (manifests.py). An OCI
   image index comes whole, with every image of it (a multi-platform image), unless `platform`
   picks one; a Docker manifest list resolves to one image (`platform`, else this machine's). A
   Docker v2 schema 2 manifest is stored in its OCI form (manifests.oci_form: the same blobs, a
   new manifest digest).
2. The referrers (API or fallback tag): each artifact manifest checked, its subject must be the image.
3. Every blob the layout lacks, in parallel: streamed into a temp file, never past its declared
   size, resumed with Range after a broken connection, digest compared at the end.
4. The staged image checked whole, by the checker `chrootforge verify` runs (store.Staging.check).
5. Only then store.Staging.publish(): blobs renamed into place, index.json updated last.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable

import requests

from chrootforge import log, untrusted
from chrootforge.errors import UsageError, VerificationError
from chrootforge.imageref import RemoteRef, is_digest, parse_ref
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs
from chrootforge.registry.blobcache import BlobLocations
from chrootforge.registry.manifests import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST,
    check_descriptor,
    choose_platform,
    image_blobs,
    oci_form,
    parse_manifest,
    sha256_digest,
)
from chrootforge.registry.meter import Meter
from chrootforge.registry.options import RegistryOptions
from chrootforge.registry.parallel import run_all
from chrootforge.registry.referrers import list_referrers
from chrootforge.registry.store import Staging
from chrootforge.registry.transport import (
    ACCEPT_MANIFESTS,
    NETWORK_HINT,
    Client,
    RegistryError,
    backoff,
    describe_network_error,
)


def fetch_manifest(client: Client, reference: str) -> tuple[bytes, str, str, dict]:
    """(raw bytes, media type, digest, document) of a manifest, its digest checked."""
    where = f"{client.registry}/{client.repository}{'@' if is_digest(reference) else ':'}{reference}"
    resp = client.request(
        "GET",
        f"manifests/{reference}",
        what=f"reading the manifest {reference}",
        headers={"Accept": ACCEPT_MANIFESTS},
        read=MAX_MANIFEST,
    )
    raw = resp.content
    digest = sha256_digest(raw)
    if is_digest(reference) and digest != reference:
        raise VerificationError(f"{where}: the registry sent a manifest whose digest is {digest}")
    claimed = resp.headers.get("Docker-Content-Digest", "")
    if claimed.startswith("sha256:") and claimed != digest:
        raise VerificationError(
            f"{where}: the manifest's digest is {digest[:19]}, the registry says {claimed[:19]}"
        )
    media_type, doc = parse_manifest(raw, resp.headers.get("Content-Type"), where)
    return raw, media_type, digest, doc


def remote_digest(ref: str | RemoteRef, options: RegistryOptions | None = None) -> str | None:
    """The digest a tag points at (HEAD), or None when the tag or the repository does not exist
    (both are a 404: MANIFEST_UNKNOWN, NAME_UNKNOWN)."""
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    client = Client(ref.registry, ref.repository, options)
    try:
        resp = client.request(
            "HEAD",
            f"manifests/{ref.reference}",
            what=f"looking up {ref.reference}",
            headers={"Accept": ACCEPT_MANIFESTS},
            expect=(200, 404),
        )
        resp.close()
        if resp.status_code == 404:
            return None
        claimed = resp.headers.get("Docker-Content-Digest", "")
        if is_digest(claimed):
            return claimed
        return fetch_manifest(client, ref.reference)[2]  # a registry that does not say: hash it
    finally:
        client.close()


_CHUNK = 256 << 10  # urllib3 returns a read only when it is full: small enough to keep progress on a cut
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(?:\d+|\*)\Z")


def _range_start(resp) -> int | None:
    match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


class _Downloader:
    def __init__(self, client: Client, staging: Staging, meter: Meter):
        self.client, self.staging, self.meter = client, staging, meter
        self.abort = threading.Event()

    def fetch(self, desc: dict) -> None:
        """Download one blob into a temp file, verified, and hand it to the staging area."""
        writer = self.staging.new_blob()
        try:
            writer = self._download(desc, writer)
        except BaseException:
            self.staging.drop(writer)
            raise
        if writer is not None:
            self.staging.ready(writer)

    def _download(self, desc: dict, writer):
        """The verified writer, or None when the pull is being aborted."""
        digest, size = desc["digest"], desc["size"]
        short = digest[7:19]
        where = f"{self.client.registry}/{self.client.repository}: blob {short}"
        failures = 0
        while True:
            headers = {"Range": f"bytes={writer.size}-"} if writer.size else {}
            try:
                resp = self.client.request(
                    "GET", f"blobs/{digest}", what=f"reading blob {short}", headers=headers, expect=(200, 206)
                )
                if writer.size and not (resp.status_code == 206 and _range_start(resp) == writer.size):
                    self.staging.drop(writer)  # the range was ignored or is another one: start over
                    writer = self.staging.new_blob()
                    if resp.status_code == 206:
                        resp.close()
                        continue
                for chunk in resp.iter_content(_CHUNK):
                    if self.abort.is_set():
                        resp.close()
                        self.staging.drop(writer)
                        return None
                    if writer.size + len(chunk) > size:
                        resp.close()
                        raise VerificationError(
                            f"{where} is longer than the {size} bytes its descriptor says"
                        )
                    writer.write(chunk)
                    self.meter.network(len(chunk))
                if writer.size < size:
                    raise requests.ConnectionError(f"the connection ended at byte {writer.size} of {size}")
                break
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
                failures += 1
                reason = describe_network_error(err, self.client.options.timeout)
                if failures > self.client.options.retries or self.abort.is_set():
                    raise RegistryError(
                        f"{where}: {reason}",
                        retryable=True,
                        hint=NETWORK_HINT,
                    ) from err
                log.info(f"blob {short}: {reason}; resuming at byte {writer.size}")
                time.sleep(backoff(failures - 1))
        if writer.digest != digest:
            raise VerificationError(
                f"{where} does not match its digest (got {writer.digest[:19]})",
                hint="the registry served corrupt or tampered data; nothing was stored",
            )
        return writer


def _image(client: Client, ref: RemoteRef, top=None, platform=None) -> tuple[bytes, str, str, dict]:
    """The image manifest of `ref` (through an index when it names one: `platform`'s image, else
    this machine's). `top`: the manifest of ref (fetch_manifest), when already fetched."""
    raw, media_type, digest, doc = top or fetch_manifest(client, ref.reference)
    if media_type in INDEX_TYPES:
        wanted = (platform.os, platform.architecture) if platform is not None else None
        entry = choose_platform(doc, ref.name, wanted)
        raw, media_type, digest, doc = _entry(client, ref, entry)
    return raw, media_type, digest, doc


def _entry(client: Client, ref: RemoteRef, entry: dict) -> tuple[bytes, str, str, dict]:
    """An index entry's image manifest (fetch_manifest), checked against the entry."""
    raw, media_type, digest, doc = fetch_manifest(client, entry["digest"])
    if len(raw) != entry["size"] or media_type not in MANIFEST_TYPES:
        raise VerificationError(
            f"{ref.name}: the index entry {entry['digest'][:19]} does not match its manifest"
        )
    return raw, media_type, digest, doc


def _referrers(client: Client, subject: str) -> list[tuple[dict, bytes, dict]]:
    """(descriptor, raw, manifest) of each referrer, checked."""
    out = []
    for desc in list_referrers(client, subject):
        raw, media_type, digest, manifest = fetch_manifest(client, desc["digest"])
        where = f"{client.registry}/{client.repository}@{digest[:19]}"
        if len(raw) != desc["size"] or media_type not in MANIFEST_TYPES:
            raise VerificationError(f"{where}: the referrer does not match its descriptor")
        if (manifest.get("subject") or {}).get("digest") != subject:
            raise VerificationError(
                f"{where}: listed as a referrer of {subject[:19]} but its subject differs"
            )
        image_blobs(manifest, where, artifact=True)
        out.append((dict(desc, mediaType=media_type), raw, manifest))
    return out


def _remember(ref: RemoteRef, blobs: list[dict]) -> None:
    """A later push to another repository of this registry may mount these blobs."""
    locations = BlobLocations()
    for desc in blobs:
        locations.record(ref.registry, desc["digest"], ref.repository)
    locations.save()


def layout_tag(ref: RemoteRef, tag: str | None) -> str:
    """The tag a pull stores under: the given one, else HOST/REPO:TAG (checked)."""
    if tag is None:
        if ref.digest:
            raise UsageError(f"{ref} is a digest: name the tag to store it under", hint="write LAYOUT:TAG")
        tag = ref.name
    return refs.check_tag(tag)


@dataclasses.dataclass(frozen=True)
class Pulled:
    """What `accept` sees of a pull, downloaded and verified but not yet in the layout."""

    digest: str
    manifest: dict
    referrers: list  # [(descriptor, artifact manifest)]
    read_blob: Callable[[str, int], bytes]  # (digest, max bytes) -> bytes (ValueError if larger)


def _index_images(client: Client, ref: RemoteRef, index: dict):
    """Every image of an OCI image index: (entry, raw, media type, manifest, blobs, referrers).
    Entries whose platform is unknown/unknown (build attestations) count as artifacts."""
    out = []
    for i, entry in enumerate(index.get("manifests") or []):
        entry = check_descriptor(entry, f"{ref.name} index entry {i + 1}", MANIFEST_TYPES | INDEX_TYPES)
        if entry["mediaType"] not in MANIFEST_TYPES:
            raise VerificationError(f"{ref.name}: a nested index in an image index is not supported")
        body, media_type, digest, manifest = _entry(client, ref, entry)
        if oci_form(media_type, manifest) is not None:  # its OCI form would change the index's digest
            raise VerificationError(
                f"{ref.name}: the image index lists the Docker v2 schema 2 manifest {digest[:19]}",
                hint="pull --platform OS/ARCH takes one image of it (stored in its OCI form)",
            )
        artifact = (entry.get("platform") or {}).get("os") == "unknown"
        where = f"{ref.name}@{digest[:19]}"
        out.append(
            (
                entry,
                body,
                media_type,
                manifest,
                image_blobs(manifest, where, artifact=artifact),
                _referrers(client, digest),
            )
        )
    if not out:
        raise VerificationError(f"{ref.name}: the image index lists no image")
    return out


def pull(
    src: str | RemoteRef,
    layout,
    tag: str | None = None,
    options: RegistryOptions | None = None,
    accept: Callable[[Pulled], None] | None = None,
    platform=None,
) -> str:
    """Pull docker://HOST/REPO(:TAG|@DIGEST) into LAYOUT as TAG (default HOST/REPO:TAG); returns the
    digest of what the tag points at (an OCI image index comes whole, unless `platform`, a
    chrootforge.platforms.Platform, picks one of its images). See the module docstring for what
    is checked. `accept` (build's remote cache) checks the image's content before it is
    published: an exception it raises leaves the layout untouched, as any other failed pull does."""
    options = options or RegistryOptions()
    ref = parse_ref(src) if isinstance(src, str) else src
    tag = layout_tag(ref, tag)
    client = Client(ref.registry, ref.repository, options)
    staging = None
    try:
        top = fetch_manifest(client, ref.reference)
        subjects: dict[str, str] = {}
        bodies: list[bytes] = []
        converted = None
        if top[1] == mt.INDEX and platform is None and accept is None:
            raw, media_type, digest, manifest = top
            remote = digest
            images = _index_images(client, ref, manifest)
            blobs = [b for image in images for b in image[4]]
            found = [f for image in images for f in image[5]]
            subjects = {desc["digest"]: image[0]["digest"] for image in images for desc, _, _ in image[5]}
            bodies = [image[1] for image in images]
        else:
            raw, media_type, remote, manifest = _image(client, ref, top, platform)
            blobs = image_blobs(manifest, ref.name)
            found = _referrers(client, remote)
            converted = oci_form(media_type, manifest)
            if converted is not None:
                raw, media_type = converted, mt.MANIFEST
                manifest = untrusted.loads_json(raw, ref.name)
                if found:  # their subject is the Docker manifest, which the layout will not hold
                    log.notice(
                        f"{ref.name}: {len(found)} referrer(s) of the Docker manifest {remote[:19]} "
                        "left behind (the layout stores the image in its OCI form)"
                    )
                    found = []
            digest = sha256_digest(raw)
        staging = Staging(layout)
        everything = blobs + [b for _, _, art in found for b in image_blobs(art, ref.name, artifact=True)]
        wanted: dict[str, dict] = {}
        for desc in everything:
            if not staging.has(desc["digest"]):
                wanted.setdefault(desc["digest"], desc)
        meter = Meter(f"pull {ref.name}", sum(d["size"] for d in wanted.values()), options.quiet)
        downloader = _Downloader(client, staging, meter)
        try:
            run_all(
                downloader.fetch,
                sorted(wanted.values(), key=lambda d: -d["size"]),
                options.jobs,
                downloader.abort,
                "pull",
            )
        finally:
            meter.close()
        for body in [raw, *bodies] + [art_raw for _, art_raw, _ in found]:
            if not staging.has(sha256_digest(body)):
                writer = staging.new_blob()
                writer.write(body)
                staging.ready(writer)
        image = {"mediaType": media_type, "digest": digest, "size": len(raw)}
        attached = [desc for desc, _, _ in found]
        needed = {digest, *map(sha256_digest, bodies), *(d["digest"] for d in everything + attached)}
        staging.check(ref.name, tag, image, attached, needed, subjects)
        if accept is not None:
            accept(Pulled(digest, manifest, [(desc, art) for desc, _, art in found], staging.read))
        staging.publish(tag, image, attached, needed, subjects)
        _remember(ref, everything)
    except BaseException:
        if staging is not None:
            staging.abort()
        raise
    finally:
        client.close()
    if not options.quiet:
        note = f"; converted from Docker v2 schema 2 {remote}" if converted is not None else ""
        log.info(
            f"pulled {ref.name} into {layout} as {tag}: {digest} ({len(wanted)} blob(s) downloaded, "
            f"{meter.moved / 1e6:.1f} MB" + (f"; {len(found)} referrer(s)" if found else "") + note + ")"
        )
    return digest
