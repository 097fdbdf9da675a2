"""The shapes of the layout's JSON documents, checked before anything reads a field.

Every reader of a layout (resolve, verify, inspect, export, unpack, commit --parent) goes through
these, so a malformed document is one clear error naming the file and the field, never a
KeyError or TypeError. What is checked is what chrootforge reads; extra fields are left alone.
"""

from __future__ import annotations

import re

from chrootforge.errors import CfError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")


class ShapeError(CfError):
    pass


def _fail(where: str, field: str, want: str, value) -> ShapeError:
    got = "missing" if value is _MISSING else f"a {type(value).__name__}"
    return ShapeError(
        f"{where}: field '{field}' must be {want}, not {got}",
        hint="the layout is damaged or was not written by an OCI tool",
    )


_MISSING = object()


def _get(doc: dict, key: str):
    return doc.get(key, _MISSING)


def obj(value, where: str, what: str = "document") -> dict:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: the {what} must be a JSON object, not a {type(value).__name__}")
    return value


def descriptor(value, where: str) -> dict:
    desc = obj(value, where, "descriptor")
    media = _get(desc, "mediaType")
    if not isinstance(media, str):
        raise _fail(where, "mediaType", "a string", media)
    digest = _get(desc, "digest")
    if not isinstance(digest, str):
        raise _fail(where, "digest", "a sha256:<64 hex> digest", digest)
    if not DIGEST_RE.match(digest):
        raise ShapeError(f"{where}: field 'digest' is not a sha256 digest: {digest[:80]!r}")
    size = _get(desc, "size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _fail(where, "size", "a non-negative integer", size)
    annotations = desc.get("annotations", {})
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise ShapeError(f"{where}: field 'annotations' must map strings to strings")
    return desc


def index(doc, where: str) -> dict:
    doc = obj(doc, where, "index")
    manifests = doc.get("manifests", [])
    if not isinstance(manifests, list):
        raise _fail(where, "manifests", "a list", manifests)
    for i, entry in enumerate(manifests):
        descriptor(entry, f"{where} manifests[{i}]")
    return doc


def manifest(doc, where: str) -> dict:
    doc = obj(doc, where, "manifest")
    if "config" not in doc:
        raise ShapeError(
            f"{where}: field 'config' is missing",
            hint="the layout is damaged or was not written by an OCI tool",
        )
    descriptor(doc["config"], f"{where} config")
    layers = _get(doc, "layers")
    if not isinstance(layers, list):
        raise _fail(where, "layers", "a list", layers)
    for i, layer in enumerate(layers):
        descriptor(layer, f"{where} layers[{i}]")
    if "subject" in doc:
        descriptor(doc["subject"], f"{where} subject")
    return doc


def image_config(doc, where: str, layers: int | None = None) -> dict:
    doc = obj(doc, where, "image config")
    rootfs = _get(doc, "rootfs")
    if not isinstance(rootfs, dict):
        raise _fail(where, "rootfs", "an object", rootfs)
    diff_ids = _get(rootfs, "diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and DIGEST_RE.match(d) for d in diff_ids):
        raise ShapeError(f"{where}: field 'rootfs.diff_ids' must be a list of sha256 digests")
    if layers is not None and len(diff_ids) != layers:
        raise ShapeError(f"{where}: 'rootfs.diff_ids' has {len(diff_ids)} entries for {layers} layers")
    for key, kind in (("config", dict), ("history", list)):
        if key in doc and not isinstance(doc[key], kind):
            raise _fail(where, key, f"a {'JSON object' if kind is dict else 'list'}", doc[key])
    if not all(isinstance(h, dict) for h in doc.get("history", [])):
        raise ShapeError(f"{where}: every 'history' entry must be an object")
    return doc
