"""Sigstore signatures in the registry: the `sha256-<hex>.sig` tag, as cosign and podman write it.

The tag holds an OCI image manifest whose config is an (empty) image config and whose layers are
the signatures: each layer is the simple-signing payload (media type
application/vnd.dev.cosign.simplesigning.v1+json), its base64 signature in the layer annotation
`dev.cosignproject.cosign/signature`. A new signature is appended to the layers already there
(a signature already present is not added again); the config's rootfs.diff_ids list the layer
digests, as containers/image writes them.
"""

from __future__ import annotations

import hashlib

from chrootforge import untrusted
from chrootforge.errors import VerificationError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.layout import canonical_json
from chrootforge.registry.transport import Client, RegistryError, read_limited

SIMPLESIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
MAX_MANIFEST = 4 << 20
MAX_LAYER = 4 << 20
MAX_LAYERS = 64


def tag_of(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sig"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _get_manifest(client: Client, digest: str, scopes=()) -> tuple[dict, str] | None:
    tag = tag_of(digest)
    resp = client.request(
        "GET",
        f"manifests/{tag}",
        what=f"reading the signatures tag {tag}",
        scopes=scopes,
        headers={"Accept": mt.MANIFEST},
        expect=(200, 404),
    )
    where = f"{client.registry}/{client.repository}:{tag}"
    if resp.status_code == 404:
        resp.close()
        return None
    raw = read_limited(resp, MAX_MANIFEST, f"the manifest {where}")
    content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
    try:
        doc = untrusted.loads_json(raw, where)
    except ValueError as err:
        raise VerificationError(f"{where}: the signatures manifest is not JSON") from err
    media_type = (doc.get("mediaType") if isinstance(doc, dict) else None) or content_type
    if not isinstance(doc, dict) or media_type != mt.MANIFEST or not isinstance(doc.get("layers"), list):
        raise VerificationError(f"{where}: not an OCI image manifest of signatures ({str(media_type)[:60]})")
    if len(doc["layers"]) > MAX_LAYERS:
        raise VerificationError(f"{where}: {len(doc['layers'])} signatures, more than the {MAX_LAYERS} read")
    return doc, where


def get_blob(client: Client, desc: dict, limit: int, where: str, scopes=()) -> bytes:
    """A small blob, its size and digest checked."""
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not isinstance(size, int):
        raise VerificationError(f"{where}: a descriptor without a sha256 digest and a size")
    if size > limit or size < 0:
        raise VerificationError(f"{where}: blob {digest[:19]} has {size} bytes, more than {limit}")
    resp = client.request("GET", f"blobs/{digest}", what=f"reading blob {digest[7:19]}", scopes=scopes)
    data = read_limited(resp, size, f"blob {digest[:19]} of {where}")
    if len(data) != size or _digest(data) != digest:
        raise VerificationError(f"{where}: blob {digest[:19]} does not match its descriptor")
    return data


def read(client: Client, digest: str) -> list[tuple[str, bytes, dict]]:
    """(media type, payload, annotations) of each attachment of manifest `digest`."""
    found = _get_manifest(client, digest)
    if found is None:
        return []
    doc, where = found
    out = []
    for layer in doc["layers"]:
        if not isinstance(layer, dict):
            raise VerificationError(f"{where}: a layer is not a descriptor")
        media_type = layer.get("mediaType")
        annotations = layer.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise VerificationError(f"{where}: a layer's annotations are not an object")
        payload = get_blob(client, layer, MAX_LAYER, where) if media_type == SIMPLESIGNING_TYPE else b""
        out.append((str(media_type), payload, annotations))
    return out


def put_blob(client: Client, data: bytes, what: str) -> dict:
    """Upload a small blob (unless the repository has it); its descriptor without media type."""
    digest = _digest(data)
    scopes = client.push_scope()
    resp = client.request(
        "HEAD", f"blobs/{digest}", what=f"checking {what}", scopes=scopes, expect=(200, 404)
    )
    resp.close()
    if resp.status_code == 404:
        resp = client.request(
            "POST", "blobs/uploads/", what=f"starting the upload of {what}", scopes=scopes, expect=(202,)
        )
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            raise RegistryError(f"{client.registry}: the registry opened an upload without a Location")
        from urllib.parse import quote, urljoin

        url = urljoin(client.url("blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + "digest=" + quote(digest, safe="")
        resp = client.request(
            "PUT",
            url,
            what=f"uploading {what}",
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream"},
            body=lambda: data,
            expect=(201,),
            retry=False,
        )
        resp.close()
    return {"digest": digest, "size": len(data)}


def store(client: Client, digest: str, payload: bytes, signature_b64: str, present) -> bool:
    """Add a signature of manifest `digest` to its .sig tag; False when `present(payload,
    annotations)` says an equivalent one is there already (nothing is written then)."""
    found = _get_manifest(client, digest, client.push_scope())
    layers: list[dict] = []
    config: dict = {"architecture": "", "config": {}, "os": "", "rootfs": {"diff_ids": [], "type": "layers"}}
    if found is not None:
        doc, where = found
        layers = list(doc["layers"])
        for layer in layers:
            if isinstance(layer, dict) and layer.get("mediaType") == SIMPLESIGNING_TYPE:
                existing = get_blob(client, layer, MAX_LAYER, where, client.push_scope())
                if present(existing, layer.get("annotations") or {}):
                    return False
        try:
            config = untrusted.loads_json(
                get_blob(client, doc.get("config") or {}, MAX_MANIFEST, where, client.push_scope()), where
            )
        except ValueError as err:
            raise VerificationError(f"{where}: the signatures config is not JSON") from err
        if not isinstance(config, dict):
            raise VerificationError(f"{where}: the signatures config is not an object")
    added = {
        "mediaType": SIMPLESIGNING_TYPE,
        **put_blob(client, payload, "the signature"),
        "annotations": {SIGNATURE_ANNOTATION: signature_b64},
    }
    layers.append(added)
    rootfs: dict = config["rootfs"] if isinstance(config.get("rootfs"), dict) else {}
    diff_ids = [d for d in (rootfs.get("diff_ids") or []) if isinstance(d, str)] + [added["digest"]]
    config["rootfs"] = {**rootfs, "type": "layers", "diff_ids": diff_ids}
    config_bytes = canonical_json(config)
    config_desc = {"mediaType": mt.CONFIG, **put_blob(client, config_bytes, "the signatures config")}
    manifest = canonical_json(
        {"schemaVersion": 2, "mediaType": mt.MANIFEST, "config": config_desc, "layers": layers}
    )
    tag = tag_of(digest)
    resp = client.request(
        "PUT",
        f"manifests/{tag}",
        what=f"writing the signatures tag {tag}",
        scopes=client.push_scope(),
        headers={"Content-Type": mt.MANIFEST},
        body=lambda: manifest,
        expect=(201,),
    )
    resp.close()
    return True
