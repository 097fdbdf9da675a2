"""What a pull accepts from a registry: manifests up to 4 MiB, of known media types, whose
descriptors are well formed. Pure functions; every refusal is a VerificationError naming the place.

Images (the pulled tag) must use known config and layer types: OCI's or Docker's v2 schema 2
(oci_form() renames the latter to the former before anything is stored). Referrer artifacts (an
SBOM) carry media types of their own choosing by design, so their config and blob types only need
to be syntactically valid media types.
"""

from __future__ import annotations

import hashlib
import re

from chrootforge import untrusted
from chrootforge.errors import VerificationError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.layout import canonical_json

MAX_MANIFEST = 4 << 20
MANIFEST_TYPES = mt.MANIFEST_TYPES
INDEX_TYPES = mt.INDEX_TYPES
CONFIG_TYPES = mt.CONFIG_TYPES
LAYER_TYPES = frozenset(mt.COMPRESSION_OF)  # OCI tar, tar+gzip, tar+zstd; Docker tar and tar.gzip
_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z"
)
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_MAX_BLOB = 1 << 40  # a descriptor claiming more than 1 TiB is not an image layer


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_descriptor(desc, where: str, allowed: frozenset | None) -> dict:
    """A descriptor's mediaType/digest/size checked; `allowed` None means any valid media type."""
    if not isinstance(desc, dict):
        raise VerificationError(f"{where}: a descriptor is not an object")
    media_type, digest, size = desc.get("mediaType"), desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise VerificationError(
            f"{where}: unsupported or malformed digest {str(digest)[:80]!r}",
            hint="chrootforge accepts sha256 digests only",
        )
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_BLOB:
        raise VerificationError(f"{where}: descriptor {digest[:19]} has an invalid size {str(size)[:30]!r}")
    if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.match(media_type):
        raise VerificationError(f"{where}: descriptor {digest[:19]} has an invalid media type")
    if allowed is not None and media_type not in allowed:
        foreign = "foreign" in media_type or "nondistributable" in media_type
        raise VerificationError(
            f"{where}: descriptor {digest[:19]} has the unknown media type {media_type!r}",
            hint="a foreign (non-distributable) layer lives outside the registry; chrootforge does "
            "not fetch those"
            if foreign
            else "chrootforge pulls OCI and Docker v2 schema 2 images only",
        )
    if desc.get("urls"):
        raise VerificationError(
            f"{where}: descriptor {digest[:19]} points outside the registry (urls); refusing foreign layers"
        )
    return desc


def parse_manifest(raw: bytes, content_type: str | None, where: str) -> tuple[str, dict]:
    """(media type, document) of a manifest or index, or VerificationError."""
    if len(raw) > MAX_MANIFEST:
        raise VerificationError(f"{where}: the manifest is {len(raw)} bytes, more than {MAX_MANIFEST}")
    try:
        doc = untrusted.loads_json(raw, f"the manifest {where}")
    except untrusted.BadDocument as err:
        raise VerificationError(str(err)) from err
    if not isinstance(doc, dict):
        raise VerificationError(f"{where}: the manifest is not a JSON object")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    media_type = declared or header
    if declared and header and header != declared and header not in ("application/json", "text/plain"):
        raise VerificationError(f"{where}: the manifest says {declared!r} but was served as {header!r}")
    if media_type in mt.DOCKER_SCHEMA1:
        raise VerificationError(
            f"{where}: a Docker schema 1 manifest ({media_type}); chrootforge pulls schema 2 and OCI",
            hint="schema 1 is deprecated: push the image again with a current docker, podman or skopeo",
        )
    if media_type not in MANIFEST_TYPES | INDEX_TYPES:
        raise VerificationError(
            f"{where}: unknown manifest media type {str(media_type)[:100]!r}",
            hint="chrootforge pulls OCI and Docker v2 manifests and indexes",
        )
    if doc.get("schemaVersion") != 2:
        raise VerificationError(f"{where}: unsupported schemaVersion {str(doc.get('schemaVersion'))[:20]!r}")
    return media_type, doc


def image_blobs(manifest: dict, where: str, artifact: bool = False) -> list[dict]:
    """Config and layer descriptors of an image manifest (an artifact's when `artifact`)."""
    config = check_descriptor(manifest.get("config"), f"{where} config", None if artifact else CONFIG_TYPES)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise VerificationError(f"{where}: the manifest has no layers list")
    return [config] + [
        check_descriptor(d, f"{where} layer {i + 1}", None if artifact else LAYER_TYPES)
        for i, d in enumerate(layers)
    ]


def host_platform() -> tuple[str, str]:
    from chrootforge.platforms import host_platform as host

    platform = host()
    return platform.os, platform.architecture


def choose_platform(index: dict, where: str, wanted: tuple[str, str] | None = None) -> dict:
    """The index entry for this machine (linux/ARCH)."""
    os_name, arch = wanted or host_platform()
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise VerificationError(f"{where}: the index has no manifests list")
    seen = []
    for i, desc in enumerate(entries):
        plat = desc.get("platform") if isinstance(desc, dict) else None
        if isinstance(plat, dict):
            seen.append(f"{plat.get('os')}/{plat.get('architecture')}")
            if plat.get("os") == os_name and plat.get("architecture") == arch:
                return check_descriptor(desc, f"{where} entry {i + 1}", MANIFEST_TYPES)
    raise VerificationError(
        f"{where}: no image for {os_name}/{arch} in the index",
        hint=f"it has: {', '.join(seen[:10]) or 'no platforms'}",
    )


def oci_form(media_type: str, manifest: dict) -> bytes | None:
    """The OCI form of an image manifest that uses Docker v2 schema 2 names anywhere (the type it
    was served or declared as, the config's, a layer's), as canonical JSON; None when it is OCI
    throughout (then its bytes, and digest, stay as the registry sent them). Only names change: a
    Docker config is an OCI config, a Docker tar.gzip layer an OCI tar+gzip one, byte for byte, so
    every blob and diff_id stays valid; the manifest gets a new digest, as with skopeo's
    `copy --format oci`."""
    descriptors = [manifest["config"], *manifest["layers"]]
    if mt.DOCKER_MANIFEST not in (media_type, manifest.get("mediaType")) and not any(
        d["mediaType"] in mt.OCI_NAME for d in descriptors
    ):
        return None
    converted = dict(
        manifest,
        mediaType=mt.MANIFEST,
        config=mt.oci_descriptor(manifest["config"]),
        layers=[mt.oci_descriptor(d) for d in manifest["layers"]],
    )
    return canonical_json(converted)
