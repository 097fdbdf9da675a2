"""push: a tagged image of an OCI layout, its blobs and its referrers, into a registry.

Order: every blob (config, layers, the referrers' blobs; in parallel, largest first), then the
manifest by tag, then the referrer manifests. A registry never holds a manifest whose blobs are
missing; a failure part-way leaves at most unreferenced blobs, which the next push reuses.
A tag that is an image index (a multi-platform image) sends every image of it: all their blobs,
each image manifest by digest with its referrers, and then the index by tag.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chrootforge import log, untrusted
from chrootforge.errors import UsageError, VerificationError
from chrootforge.imageref import RemoteRef, parse_ref
from chrootforge.oci import imageindex
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.referrer import referrers as layout_referrers
from chrootforge.oci.resolved import resolve, tagged_descriptor
from chrootforge.registry.blobcache import BlobLocations
from chrootforge.registry.manifests import sha256_digest
from chrootforge.registry.meter import Meter
from chrootforge.registry.options import RegistryOptions
from chrootforge.registry.parallel import run_all
from chrootforge.registry.referrers import push_referrers
from chrootforge.registry.transport import Client, RegistryError
from chrootforge.registry.upload import BlobOutcome, BlobPusher


@dataclasses.dataclass(frozen=True)
class PushResult:
    reference: str  # docker://HOST/REPO:TAG
    digest: str  # the manifest's
    uploaded_bytes: int  # blob bytes sent (0 when the registry had everything)
    blobs_uploaded: int
    blobs_skipped: int  # already in the repository
    blobs_mounted: int  # mounted from another repository of the registry
    referrers: tuple[str, ...] = ()  # artifact manifest digests pushed
    referrers_via: str | None = None  # "api" | "tag" (fallback sha256-<hex> index) | None


@dataclasses.dataclass(frozen=True)
class _Local:
    """What a push sends, read from the layout and checked before any network traffic."""

    manifest: bytes
    media_type: str
    digest: str
    blobs: dict  # digest -> (size, path)
    referrers: list  # [(raw manifest, manifest)]
    images: tuple[_Local, ...] = ()  # an index's images, put by digest before it


def _read_manifest(layout: Path, desc: dict) -> tuple[bytes, dict]:
    path = lo.blob_path(layout, desc["digest"])
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise VerificationError(
            f"{layout}: manifest {desc['digest'][:19]} is missing", hint=f"chrootforge verify {layout}"
        ) from err
    if sha256_digest(raw) != desc["digest"]:
        raise VerificationError(
            f"{layout}: manifest {desc['digest'][:19]} does not match its digest",
            hint=f"chrootforge verify {layout}",
        )
    return raw, untrusted.loads_json(raw, f"{layout}: manifest {desc['digest'][:19]}")


def _add_blobs(layout: Path, manifest: dict, blobs: dict) -> None:
    for desc in [manifest["config"], *manifest["layers"]]:
        path = lo.blob_path(layout, desc["digest"])
        try:
            size = path.stat().st_size
        except OSError as err:
            raise VerificationError(
                f"{layout}: blob {desc['digest'][:19]} is missing", hint=f"chrootforge verify {layout}"
            ) from err
        if size != desc["size"]:
            raise VerificationError(
                f"{layout}: blob {desc['digest'][:19]} has {size} bytes, its descriptor says {desc['size']}",
                hint=f"chrootforge verify {layout}",
            )
        blobs[desc["digest"]] = (size, path)


def _collect(layout, tag: str) -> _Local:
    _match, top = tagged_descriptor(layout, tag)
    if top["mediaType"] == mt.INDEX:
        layout = Path(layout)
        raw, _index = _read_manifest(layout, top)
        images = tuple(
            _collect_image(layout, desc) for desc in imageindex.entries(layout, top, f"tag {tag} in {layout}")
        )
        blobs = {digest: blob for image in images for digest, blob in image.blobs.items()}
        return _Local(raw, mt.INDEX, top["digest"], blobs, [], images)
    found = resolve(layout, tag)
    return _collect_image(Path(layout), found.descriptor)


def _collect_image(layout: Path, descriptor: dict) -> _Local:
    raw, manifest = _read_manifest(layout, descriptor)
    blobs: dict = {}
    _add_blobs(layout, manifest, blobs)
    artifacts = []
    for desc in layout_referrers(lo.read_index(layout), descriptor["digest"]):
        art_raw, art = _read_manifest(layout, desc)
        _add_blobs(layout, art, blobs)
        artifacts.append((art_raw, art))
    media_type = manifest.get("mediaType") or descriptor.get("mediaType") or mt.MANIFEST
    return _Local(raw, media_type, descriptor["digest"], blobs, artifacts)


def _put_manifest(client: Client, reference: str, local: _Local) -> None:
    resp = client.request(
        "PUT",
        f"manifests/{reference}",
        what=f"putting the manifest {reference}",
        scopes=client.push_scope(),
        headers={"Content-Type": local.media_type},
        body=lambda: local.manifest,
        expect=(201,),
    )
    got = resp.headers.get("Docker-Content-Digest")
    resp.close()
    if got and got != local.digest:
        raise RegistryError(
            f"{client.registry} stored the manifest as {got}, not {local.digest}",
            hint="the registry rewrote the manifest; its digest would not match the layout's",
        )


def _push_blobs(pusher: BlobPusher, blobs: dict, jobs: int) -> list[BlobOutcome]:
    """All blobs, largest first, `jobs` at a time; the first failure stops the others."""
    order = sorted(blobs.items(), key=lambda item: -item[1][0])
    return run_all(lambda item: pusher.push(item[0], *item[1]), order, jobs, pusher.abort, "push")


def _report(outcome: BlobOutcome) -> None:
    extra = f" from {outcome.source}" if outcome.source else ""
    words = {"skipped": "already there", "mounted": "mounted", "uploaded": "uploaded"}
    log.info(f"  blob {outcome.digest[7:19]} {outcome.size / 1e6:8.1f} MB  {words[outcome.action]}{extra}")


def push(layout, tag: str, dest: str | RemoteRef, options: RegistryOptions | None = None) -> PushResult:
    """Push LAYOUT:TAG to docker://HOST/REPO[:TAG|@DIGEST]; see the package docstring."""
    options = options or RegistryOptions()
    ref = parse_ref(dest) if isinstance(dest, str) else dest
    local = _collect(layout, tag)
    if ref.digest and ref.digest != local.digest:
        raise UsageError(
            f"{ref} names digest {ref.digest[:19]}, but {tag} is {local.digest[:19]}",
            hint="push by tag, or give the image's own digest",
        )
    client = Client(ref.registry, ref.repository, options)
    locations = BlobLocations()
    total = sum(size for size, _ in local.blobs.values())
    meter = Meter(f"push {ref.name}", total, options.quiet)
    try:
        pusher = BlobPusher(client, locations, meter, options.chunk_size)
        outcomes = _push_blobs(pusher, local.blobs, options.jobs)
        meter.close()
        if not options.quiet:
            for outcome in outcomes:
                _report(outcome)
        via = None
        for image in local.images:  # an index's images first, by digest: it never dangles
            _put_manifest(client, image.digest, image)
            via = push_referrers(client, image.digest, image.referrers) or via
        _put_manifest(client, ref.reference, local)
        via = push_referrers(client, local.digest, local.referrers) or via
    finally:
        meter.close()
        locations.save()
        client.close()
    count = {a: sum(1 for o in outcomes if o.action == a) for a in ("uploaded", "skipped", "mounted")}
    result = PushResult(
        str(ref),
        local.digest,
        sum(o.sent for o in outcomes),
        count["uploaded"],
        count["skipped"],
        count["mounted"],
        tuple(sha256_digest(raw) for image in (local, *local.images) for raw, _ in image.referrers),
        via,
    )
    if not options.quiet:
        log.info(
            f"pushed {ref.name}: {local.digest} ({result.blobs_uploaded} uploaded, "
            f"{result.uploaded_bytes / 1e6:.1f} MB; {result.blobs_skipped} already there; "
            f"{result.blobs_mounted} mounted"
            + (f"; {len(result.referrers)} referrer(s) via {via}" if via else "")
            + ")"
        )
    return result
