"""Checks of an in-toto Statement v1 carrying a SLSA provenance v1 predicate, written from the
published field definitions (in-toto/attestation spec/v1: statement.md, resource_descriptor.md,
digest_set.md, field_types.md; slsa.dev/spec/v1.0/provenance), as assertions naming the path.

Strict where a producer must be: every field has the type the specification gives it, required
fields are present, and (for chrootforge's own documents) no field outside the specification.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# digest_set.md: standard algorithms use lowercase hex; their lengths are known
_HEX_LENGTHS = {
    "sha256": 64,
    "sha224": 56,
    "sha384": 96,
    "sha512": 128,
    "sha1": 40,
    "md5": 32,
    "sha512_256": 64,
}
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_RD_FIELDS = {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"}


class SchemaError(AssertionError):
    pass


def _fail(path: str, why: str):
    raise SchemaError(f"{path}: {why}")


def _object(value, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    for key in value:
        if key not in allowed:
            _fail(path, f"unexpected field {key!r}")
    for key in required:
        if key not in value:
            _fail(path, f"{key!r} is required")
    return value


def _string(value, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    return value


def type_uri(value, path: str) -> None:
    """field_types.md TypeURI/ResourceURI: an RFC 3986 URI, scheme and authority in lowercase."""
    text = _string(value, path)
    parts = urlsplit(text)
    scheme = text.split(":", 1)[0] if ":" in text else ""
    if not re.match(r"^[a-z][a-z0-9+.-]*$", scheme):  # urlsplit would lowercase it
        _fail(path, f"{text!r} is not a URI with a lowercase scheme")
    if parts.netloc != parts.netloc.lower():
        _fail(path, f"{text!r}: the authority must be lowercase")
    if any(c.isspace() for c in text):
        _fail(path, f"{text!r} contains whitespace")


def digest_set(value, path: str) -> None:
    if not isinstance(value, dict) or not value:
        _fail(path, "a DigestSet is a non-empty object")
    for algorithm, digest in value.items():
        _string(digest, f"{path}.{algorithm}")
        if algorithm in _HEX_LENGTHS:
            if not re.fullmatch(rf"[0-9a-f]{{{_HEX_LENGTHS[algorithm]}}}", digest):
                _fail(f"{path}.{algorithm}", "must be lowercase hex of the algorithm's length")


def resource_descriptor(value, path: str, need: tuple[str, ...] = ()) -> None:
    rd = _object(value, path, _RD_FIELDS, set(need))
    if not {"uri", "digest", "content"} & set(rd):
        _fail(path, "one of uri, digest or content is required")
    for key in ("name", "mediaType"):
        if key in rd:
            _string(rd[key], f"{path}.{key}")
    for key in ("uri", "downloadLocation"):
        if key in rd:
            type_uri(rd[key], f"{path}.{key}")
    if "digest" in rd:
        digest_set(rd["digest"], f"{path}.digest")
    if "content" in rd:
        _string(rd["content"], f"{path}.content")
    if "annotations" in rd and not isinstance(rd["annotations"], dict):
        _fail(f"{path}.annotations", "must be an object")


def _descriptors(value, path: str) -> None:
    if not isinstance(value, list):
        _fail(path, "must be an array of ResourceDescriptors")
    for i, item in enumerate(value):
        resource_descriptor(item, f"{path}[{i}]")


def statement(doc) -> None:
    """statement.md: _type, subject (each with a digest), predicateType, predicate."""
    top = _object(
        doc,
        "statement",
        {"_type", "subject", "predicateType", "predicate"},
        {"_type", "subject", "predicateType"},
    )
    if top["_type"] != "https://in-toto.io/Statement/v1":
        _fail("_type", "must be https://in-toto.io/Statement/v1")
    if not isinstance(top["subject"], list) or not top["subject"]:
        _fail("subject", "must be a non-empty array")
    names = []
    for i, subject in enumerate(top["subject"]):
        resource_descriptor(subject, f"subject[{i}]", need=("digest",))
        names.append(subject.get("name"))
    if len([n for n in names if n]) != len({n for n in names if n}):
        _fail("subject", "names must be unique")
    type_uri(top["predicateType"], "predicateType")
    if "predicate" in top and not isinstance(top["predicate"], dict):
        _fail("predicate", "must be an object")


def slsa_provenance_v1(doc) -> None:
    """A Statement whose predicate is SLSA provenance v1 (BuildDefinition, RunDetails, Builder,
    BuildMetadata as the specification defines them)."""
    statement(doc)
    if doc["predicateType"] != "https://slsa.dev/provenance/v1":
        _fail("predicateType", "must be https://slsa.dev/provenance/v1")
    pred = _object(
        doc.get("predicate"),
        "predicate",
        {"buildDefinition", "runDetails"},
        {"buildDefinition", "runDetails"},
    )
    bd = _object(
        pred["buildDefinition"],
        "buildDefinition",
        {"buildType", "externalParameters", "internalParameters", "resolvedDependencies"},
        {"buildType", "externalParameters"},
    )
    type_uri(bd["buildType"], "buildDefinition.buildType")
    for key in ("externalParameters", "internalParameters"):
        if key in bd and not isinstance(bd[key], dict):
            _fail(f"buildDefinition.{key}", "must be an object")
    if "resolvedDependencies" in bd:
        _descriptors(bd["resolvedDependencies"], "buildDefinition.resolvedDependencies")
    rd = _object(pred["runDetails"], "runDetails", {"builder", "metadata", "byproducts"}, {"builder"})
    builder = _object(rd["builder"], "runDetails.builder", {"id", "version", "builderDependencies"}, {"id"})
    type_uri(builder["id"], "runDetails.builder.id")
    if "version" in builder:
        version = _object(builder["version"], "runDetails.builder.version", set(builder["version"]))
        for k, v in version.items():
            _string(v, f"runDetails.builder.version.{k}")
    if "builderDependencies" in builder:
        _descriptors(builder["builderDependencies"], "runDetails.builder.builderDependencies")
    if "metadata" in rd:
        meta = _object(rd["metadata"], "runDetails.metadata", {"invocationId", "startedOn", "finishedOn"})
        if "invocationId" in meta:
            _string(meta["invocationId"], "runDetails.metadata.invocationId")
        for key in ("startedOn", "finishedOn"):
            if key in meta and not _RFC3339_UTC.match(_string(meta[key], f"runDetails.metadata.{key}")):
                _fail(f"runDetails.metadata.{key}", "must be an RFC 3339 time in UTC (Z)")
    if "byproducts" in rd:
        _descriptors(rd["byproducts"], "runDetails.byproducts")
