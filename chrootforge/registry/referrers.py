"""An image's referrers (its SBOM) in a registry: the OCI 1.1 referrers API where the registry has
it, else the fallback tag `sha256-<hex>` holding an image index of referrer descriptors.

Push: each artifact manifest is PUT by digest; a registry that understands `subject` answers with
an `OCI-Subject` header and keeps the list itself. Otherwise the fallback index is read, merged
(descriptors already there are kept; ours replace same-digest ones) and PUT back.
Listing: GET /v2/<repo>/referrers/<digest>; a 4xx there means no API, so the fallback tag is read.
"""

from __future__ import annotations

from collections.abc import Callable

from chrootforge import log
from chrootforge.errors import VerificationError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.layout import canonical_json
from chrootforge.registry.manifests import (
    INDEX_TYPES,
    MAX_MANIFEST,
    check_descriptor,
    parse_manifest,
    sha256_digest,
)
from chrootforge.registry.transport import ACCEPT_MANIFESTS, Client

MAX_REFERRERS = 64


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-")


def descriptor_of(raw: bytes, manifest: dict) -> dict:
    """The index descriptor of an artifact manifest, as the referrers API lists it."""
    desc = {
        "mediaType": manifest.get("mediaType", mt.MANIFEST),
        "digest": sha256_digest(raw),
        "size": len(raw),
    }
    artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
    if artifact_type:
        desc["artifactType"] = artifact_type
    if manifest.get("annotations"):
        desc["annotations"] = dict(manifest["annotations"])
    return desc


def merge_index(existing: dict | None, new: list[dict]) -> dict:
    digests = {d["digest"] for d in new}
    kept = [
        d
        for d in (existing or {}).get("manifests", [])
        if isinstance(d, dict) and d.get("digest") not in digests
    ]
    return {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": kept + new}


def _get_fallback(client: Client, subject: str, scopes: tuple[str, ...]) -> dict | None:
    tag = fallback_tag(subject)
    resp = client.request(
        "GET",
        f"manifests/{tag}",
        what=f"reading the referrers tag {tag}",
        scopes=scopes,
        headers={"Accept": ACCEPT_MANIFESTS},
        expect=(200, 404),
        read=MAX_MANIFEST,
    )
    if resp.status_code == 404:
        return None
    where = f"{client.registry}/{client.repository}:{tag}"
    raw = resp.content
    media_type, doc = parse_manifest(raw, resp.headers.get("Content-Type"), where)
    if media_type not in INDEX_TYPES:
        raise VerificationError(
            f"{where} holds an image, not a referrers index",
            hint=f"the tag {tag} is reserved for the referrers of {subject[:19]}",
        )
    return doc


def push_referrers(client: Client, subject: str, artifacts: list[tuple[bytes, dict]]) -> str | None:
    """PUT each artifact manifest; returns "api" or "tag" (how the list is kept), None if none."""
    if not artifacts:
        return None
    new = []
    api = True
    for raw, manifest in artifacts:
        desc = descriptor_of(raw, manifest)
        resp = client.request(
            "PUT",
            f"manifests/{desc['digest']}",
            what=f"pushing referrer {desc['digest'][7:19]}",
            scopes=client.push_scope(),
            headers={"Content-Type": desc["mediaType"]},
            body=_constant(raw),
            expect=(201,),
        )
        api = api and resp.headers.get("OCI-Subject") == subject
        resp.close()
        new.append(desc)
    if api:
        return "api"
    existing = _get_fallback(client, subject, client.push_scope())
    merged = merge_index(existing, new)
    if existing is None or merged["manifests"] != existing.get("manifests"):
        tag = fallback_tag(subject)
        resp = client.request(
            "PUT",
            f"manifests/{tag}",
            what=f"updating the referrers tag {tag}",
            scopes=client.push_scope(),
            headers={"Content-Type": mt.INDEX},
            body=lambda: canonical_json(merged),
            expect=(201,),
        )
        resp.close()
    return "tag"


def list_referrers(client: Client, subject: str) -> list[dict]:
    """Descriptors of the artifacts that refer to `subject` (checked, not yet fetched)."""
    where = f"{client.registry}/{client.repository} referrers of {subject[:19]}"
    resp = client.request(
        "GET",
        f"referrers/{subject}",
        what="listing referrers",
        headers={"Accept": mt.INDEX},
        expect=tuple(range(200, 500)),
        read=MAX_MANIFEST,
    )
    if resp.status_code == 200:
        raw = resp.content
        media_type, doc = parse_manifest(raw, resp.headers.get("Content-Type"), where)
        if media_type not in INDEX_TYPES:
            raise VerificationError(f"{where}: the referrers API answered with {media_type}, not an index")
    else:
        resp.close()
        fallback = _get_fallback(client, subject, client.pull_scope())
        if fallback is None:
            return []
        doc = fallback
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise VerificationError(f"{where}: the index has no manifests list")
    if len(entries) > MAX_REFERRERS:
        raise VerificationError(
            f"{where}: {len(entries)} referrers, more than the {MAX_REFERRERS} a pull takes",
            hint="an image has a handful of referrers (SBOM, signatures); this one is suspect",
        )
    out = []
    for desc in entries:
        if isinstance(desc, dict) and desc.get("mediaType") in INDEX_TYPES:
            log.notice(f"{where}: skipping referrer {str(desc.get('digest'))[:19]}, an index")
            continue
        out.append(check_descriptor(desc, where, frozenset((mt.MANIFEST,))))
    return out


def _constant(data: bytes) -> Callable[[], bytes]:
    """A request body that can be sent again (on a retry): always the same bytes."""
    return lambda: data
