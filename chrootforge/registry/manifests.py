"""What a pull accepts from a registry: manifests up to 4 MiB, of known media types, whose
descriptors are well formed. Pure functions; every refusal is a VerificationError naming the place.

Images (the pulled tag) must use known config and layer types. Referrer artifacts (an SBOM) carry
media types of their own choosing by design, so their config and blob types only need to be
syntactically valid media types.
"""

from __future__ import annotations

import hashlib
import json
import re

from chrootforge.errors import VerificationError
from chrootforge.oci import mediatypes as mt
from chrootforge.registry.transport import DOCKER_LIST, DOCKER_MANIFEST

MAX_MANIFEST = 4 << 20
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = frozenset((mt.MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset((mt.INDEX, DOCKER_LIST))
CONFIG_TYPES = frozenset((mt.CONFIG, DOCKER_CONFIG))
LAYER_TYPES = frozenset((mt.LAYER_GZIP, mt.LAYER_ZSTD, mt.LAYER_TAR, mt.DOCKER_LAYER_GZIP))
_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
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
        raise VerificationError(
            f"{where}: descriptor {digest[:19]} has the unknown media type {media_type!r}",
            hint="chrootforge pulls OCI and Docker v2 images only",
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
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise VerificationError(f"{where}: the manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise VerificationError(f"{where}: the manifest is not a JSON object")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    media_type = declared or header
    if declared and header and header != declared and header not in ("application/json", "text/plain"):
        raise VerificationError(f"{where}: the manifest says {declared!r} but was served as {header!r}")
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
