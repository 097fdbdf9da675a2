"""Attach an artifact (an SBOM) to a tagged image as an OCI 1.1 referrer.

The artifact is an image manifest with `artifactType`, the empty config, one layer holding the data
and `subject` = the tagged manifest. Its index.json descriptor has NO ref.name, so `oci:DIR:TAG`
consumers never see it. Re-attaching the same artifact type to the same subject replaces the old
one; referrers whose subject no longer sits in the index are dropped.
"""

from __future__ import annotations

from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.resolved import resolve

SUBJECT_KEY = "dev.chrootforge.subject"
EMPTY_JSON = b"{}"


def attach_referrer(
    layout,
    tag: str,
    data: bytes,
    media_type: str,
    artifact_type: str | None = None,
    annotations: dict | None = None,
) -> str:
    """Store `data` as a referrer of the image tagged `tag`; returns the artifact manifest digest."""
    found = resolve(layout, tag)
    layout = lo.open_layout(layout)
    artifact_type = artifact_type or media_type
    staging = lo.Staging(layout)
    with staging:
        empty_digest, empty_size = staging.add_bytes(EMPTY_JSON)
        data_digest, data_size = staging.add_bytes(bytes(data))
        subject = {
            "mediaType": found.descriptor.get("mediaType", mt.MANIFEST),
            "digest": found.descriptor["digest"],
            "size": found.descriptor["size"],
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": mt.EMPTY, "digest": empty_digest, "size": empty_size},
            "layers": [{"mediaType": media_type, "digest": data_digest, "size": data_size}],
            "subject": subject,
        }
        if annotations:
            manifest["annotations"] = {str(k): str(v) for k, v in annotations.items()}
        digest, size = staging.add_bytes(lo.canonical_json(manifest))
        staging.publish(_attach_change(digest, size, artifact_type, subject["digest"]))
    return digest


def _attach_change(digest: str, size: int, artifact_type: str, subject: str):
    desc = {
        "mediaType": mt.MANIFEST,
        "digest": digest,
        "size": size,
        "artifactType": artifact_type,
        "annotations": {SUBJECT_KEY: subject},
    }

    def change(manifests: list[dict]) -> list[dict]:
        live = {m["digest"] for m in manifests if (m.get("annotations") or {}).get(mt.REF_NAME)}
        kept = []
        for m in manifests:
            subj = (m.get("annotations") or {}).get(SUBJECT_KEY)
            if subj and (subj not in live or (subj == subject and m.get("artifactType") == artifact_type)):
                continue
            kept.append(m)
        return kept + [desc]

    return change


def detach_referrer(layout, tag: str, artifact_type: str) -> bool:
    """Remove the referrer of `artifact_type` from the image tagged `tag` (its blobs stay until
    gc); whether there was one."""
    subject = resolve(layout, tag).descriptor["digest"]
    found = []

    def change(manifests: list[dict]) -> list[dict]:
        kept = [
            m
            for m in manifests
            if not (
                (m.get("annotations") or {}).get(SUBJECT_KEY) == subject
                and m.get("artifactType") == artifact_type
            )
        ]
        found.append(len(kept) != len(manifests))
        return kept

    lo.update_index(lo.open_layout(layout), change)
    return bool(found and found[-1])


def referrers(index: dict, manifest_digest: str) -> list[dict]:
    """Index descriptors of artifacts attached to `manifest_digest`."""
    return [
        m
        for m in index.get("manifests", [])
        if (m.get("annotations") or {}).get(SUBJECT_KEY) == manifest_digest
    ]
