"""The provenance of a built image: an in-toto Statement v1 with a SLSA provenance v1 predicate
(pure), attached to the image as a referrer beside the SBOM, and its DSSE envelope when signing
is on.

What it records, by content only (no path, host name of the machine, user or clock; the one time
is the build epoch), so the same inputs give the same bytes on every runner:
- subject: the image's name and manifest digest;
- externalParameters: the namespace, the image, its tags, and the binhost and remote cache the
  build was given (URLs the user chose, the same on every runner of a pipeline);
- internalParameters: the build epoch and the build key;
- resolvedDependencies: chrootforge.toml, IMAGE/image.toml, the image's hooks and
  chrootforge.lock by sha256; the stage3 (name, sha512, the fingerprint that verified it); the
  tree (its id) or snapshot (name, sha512, signer); the parent image (name, manifest digest);
- runDetails.builder: chrootforge and its version.
docs/pipeline.md ("Provenance") documents the build type.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from chrootforge.oci import layout as lo
from chrootforge.oci import shapes
from chrootforge.oci.referrer import attach_referrer, detach_referrer, referrers
from chrootforge.oci.resolved import resolve
from chrootforge.registry.signing import dsse

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://chrootforge.invalid/buildtypes/image/v1"
BUILDER_ID = "https://chrootforge.invalid/builder/v1"
MEDIA_TYPE = "application/vnd.in-toto+json"  # the Statement, unsigned (reproducible)
ENVELOPE_TYPE = "application/vnd.in-toto.provenance+dsse"  # its DSSE envelope (signed)


@dataclass(frozen=True)
class Input:
    """One resolved dependency: a name, its digests, and what else identifies it."""

    name: str
    digest: dict[str, str]
    annotations: dict = field(default_factory=dict)

    def descriptor(self) -> dict:
        out: dict = {"name": self.name, "digest": dict(sorted(self.digest.items()))}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


@dataclass(frozen=True)
class BuildFacts:
    image_ref: str  # the first full name, e.g. localhost/chrootforge/hello:latest
    manifest_digest: str
    namespace: str
    image: str
    tags: tuple[str, ...]
    key: str
    epoch: int
    version: str
    inputs: tuple[Input, ...]
    binhost: str | None = None
    remote_cache: str | None = None


def file_input(name: str, data: bytes) -> Input:
    return Input(name, {"sha256": hashlib.sha256(data).hexdigest()})


def fetched_input(kind: str, record) -> Input:
    """A verified download (sources.fetched.FetchedFile): name, sha512 and who signed it."""
    return Input(
        record.name,
        {"sha512": record.sha512},
        {
            "kind": kind,
            "verifiedBy": record.verified_by or "UNVERIFIED",
            "insecureSkipVerify": bool(record.insecure),
        },
    )


def tree_input(tree_id: str) -> Input:
    return Input(
        "tree", {"sha256": hashlib.sha256(tree_id.encode()).hexdigest()}, {"kind": "tree", "treeId": tree_id}
    )


def image_input(ref: str, digest: str) -> Input:
    algorithm, _, hexdigest = digest.partition(":")
    return Input(ref, {algorithm: hexdigest}, {"kind": "parent image"})


def _public_url(url: str | None) -> str | None:
    """A URL without credentials (they never belong in a document that travels)."""
    if not url:
        return None

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, "")) if parts.netloc else url


def statement(facts: BuildFacts) -> dict:
    algorithm, _, hexdigest = facts.manifest_digest.partition(":")
    external: dict = {"namespace": facts.namespace, "image": facts.image, "tags": list(facts.tags)}
    if facts.binhost:
        external["binhost"] = _public_url(facts.binhost)
    if facts.remote_cache:
        external["remoteCache"] = facts.remote_cache
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.image_ref, "digest": {algorithm: hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"buildEpoch": facts.epoch, "buildKey": facts.key},
                "resolvedDependencies": [i.descriptor() for i in sorted(facts.inputs, key=lambda i: i.name)],
            },
            "runDetails": {"builder": {"id": BUILDER_ID, "version": {"chrootforge": facts.version}}},
        },
    }


def encode(doc: dict) -> bytes:
    """Canonical JSON: the same statement is the same bytes (and referrer digest) everywhere."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- in a layout -----------------------------------------------------------------------------------
def attach(layout, tag: str, data: bytes) -> str:
    """Attach the statement; an envelope left from an earlier build of the same image (pulled, or
    signed) that does not sign these bytes goes, so the two never disagree."""
    digest = attach_referrer(layout, tag, data, MEDIA_TYPE, artifact_type=MEDIA_TYPE)
    old = read(layout, tag, ENVELOPE_TYPE)
    if old is not None:
        try:
            stale = dsse.decode(old)[1] != data
        except ValueError:
            stale = True
        if stale:
            detach_referrer(layout, tag, ENVELOPE_TYPE)
    return digest


def read(layout, tag: str, media_type: str = MEDIA_TYPE) -> bytes | None:
    """The attached statement (or envelope) of LAYOUT:TAG, None when there is none."""
    found = resolve(layout, tag)
    path = lo.open_layout(layout)
    for desc in referrers(lo.read_index(path), found.descriptor["digest"]):
        if desc.get("artifactType") != media_type:
            continue
        manifest = shapes.manifest(
            lo.read_json_blob(path, desc["digest"], desc["size"], "provenance manifest"),
            f"provenance manifest {desc['digest']} in {path}",
        )
        if manifest["layers"]:
            layer = manifest["layers"][0]
            return lo.read_blob(path, layer["digest"], layer["size"], "provenance")
    return None


def sign_in_layout(layout, tag: str, signers) -> str | None:
    """Attach the DSSE envelope of the image's statement, signed by `signers`, unless one signed
    by exactly these keys is there; what happened, or None when the image has no provenance."""
    data = read(layout, tag)
    if data is None:
        return None
    keyids = sorted(s.keyid for s in signers)
    old = read(layout, tag, ENVELOPE_TYPE)
    if old is not None:
        try:
            payload_type, payload, sigs = dsse.decode(old)
            if (
                payload_type == dsse.INTOTO_PAYLOAD_TYPE
                and payload == data
                and sorted(k for k, _ in sigs) == keyids
            ):
                return "provenance already signed"
        except ValueError:
            pass
    envelope = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, data, signers)
    attach_referrer(layout, tag, envelope, ENVELOPE_TYPE, artifact_type=ENVELOPE_TYPE)
    return "provenance signed"
