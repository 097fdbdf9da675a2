"""An image's build state as an OCI referrer, so that it travels with the image.

A child build needs what its parent's build recorded (gentoo/state.py): the cumulative package
records (package.provided, the SBOM), the `provided` entries passed down and the runtime_libs
copies. An image taken from a remote cache must bring them, so they ride along as a referrer of
the image (artifactType ARTIFACT_TYPE, one JSON layer) beside the SBOM: `push` and `pull` carry
referrers. The document holds content only (no path, time or host), so its digest is the same on
every runner.

`decode()` checks everything a hostile cache could put there before any of it can reach a portage
config file or a state file: shapes, types, sizes, and Gentoo names that cannot smuggle a newline.
"""

from __future__ import annotations

import json
import re

from chrootforge import untrusted
from chrootforge.atoms import split_cpv
from chrootforge.gentoo import records as rec
from chrootforge.gentoo import runtimelibs
from chrootforge.gentoo.state import ImageState
from chrootforge.oci.referrer import attach_referrer
from chrootforge.spec import checks

ARTIFACT_TYPE = "application/vnd.chrootforge.build.engine-state.v1+json"
FORMAT = 1
MAX_SIZE = 16 << 20  # a state far larger than any real one is refused before it is read
_MAX_ITEMS = 100_000
_MAX_TEXT = 8192

_CATEGORY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9+_.-]*\Z")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9+_.@/-]*\Z")  # slot, repository, USE flag
_HEX = {"sha1": re.compile(r"^[0-9a-f]{40}\Z"), "sha256": re.compile(r"^[0-9a-f]{64}\Z")}
_RECORD_FIELDS = {
    "category",
    "name",
    "version",
    "use",
    "iuse",
    "slot",
    "repository",
    "license",
    "homepage",
    "description",
    "image",
}
_FILE_FIELDS = {"path", "source", "package", "license", "sha1", "sha256", "image"}


class BadState(ValueError):
    """The state document is unusable; the message says why, in a few words."""


def encode(state: ImageState) -> bytes:
    doc = {
        "format": FORMAT,
        "image": state.image,
        "key": state.key,
        "records": state.records,
        "own": state.own,
        "provided": state.provided,
        "builder_files": state.builder_files,
        "size": state.size,
        "layers": state.layers,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def attach(layout, tag: str, state: ImageState) -> str:
    """Attach the state to the image tagged `tag` (replacing an earlier one); the artifact's digest."""
    return attach_referrer(layout, tag, encode(state), ARTIFACT_TYPE, artifact_type=ARTIFACT_TYPE)


def decode(data: bytes, image: str, key: str) -> dict:
    """The ImageState fields (records, own, provided, builder_files, size, layers) of a state
    document that must describe `image` built with `key`; BadState otherwise."""
    if len(data) > MAX_SIZE:
        raise BadState(f"the build state has {len(data)} bytes, more than {MAX_SIZE}")
    try:
        doc = untrusted.loads_json(data, "the build state")
    except untrusted.BadDocument as err:
        raise BadState(str(err)) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadState(f"the build state is not format {FORMAT}")
    if doc.get("image") != image or doc.get("key") != key:
        raise BadState(
            f"the build state is for {_short(doc.get('image'))} with key {_short(doc.get('key'))}, "
            f"not {image} with {key[:19]}"
        )
    out = {
        "records": [_record(r) for r in _items(doc, "records")],
        "own": [_cpv(c, "own") for c in _items(doc, "own")],
        "provided": [_provided(p) for p in _items(doc, "provided")],
        "builder_files": [_builder_file(f) for f in _items(doc, "builder_files")],
    }
    for field in ("size", "layers"):
        value = doc.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadState(f"the build state's {field} is not a count")
        out[field] = value
    return out


def _short(value) -> str:
    return repr(value)[:40]


def _items(doc: dict, field: str) -> list:
    value = doc.get(field)
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise BadState(f"the build state's {field} is not a list")
    return value


def _text(value, what: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > _MAX_TEXT
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise BadState(f"the build state's {what} is not a line of text")
    return value


def _match(value, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str) or len(value) > 256 or not pattern.fullmatch(value):
        raise BadState(f"the build state's {what} {_short(value)} is malformed")
    return value


def _cpv(value, what: str) -> str:
    value = _text(value, what)
    try:
        cp, _ = split_cpv(value)
    except ValueError as err:
        raise BadState(f"the build state's {what} {_short(value)} is not category/name-version") from err
    if checks.cp(cp):
        raise BadState(f"the build state's {what} {_short(value)} is not category/name-version")
    return value


def _provided(value) -> str:
    value = _text(value, "provided entry")
    if checks.provided_entry(value):
        raise BadState(f"the build state's provided entry {_short(value)} is malformed")
    return value


def _record(value) -> dict:
    if (
        not isinstance(value, dict)
        or not set(value) <= _RECORD_FIELDS
        or not {"category", "name", "version"} <= set(value)
    ):
        raise BadState("a package record of the build state has other fields than a record's")
    _match(value["category"], _CATEGORY_RE, "record category")
    _cpv(f"{value['category']}/{value['name']}-{_text(value['version'], 'record version')}", "record")
    for field in ("use", "iuse"):
        flags = value.get(field, [])
        if not isinstance(flags, list) or len(flags) > _MAX_ITEMS:
            raise BadState(f"a package record's {field} is not a list")
        for flag in flags:
            _match(flag, _TOKEN_RE, f"record {field} flag")
    for field in ("slot", "repository"):
        if value.get(field):
            _match(value[field], _TOKEN_RE, f"record {field}")
    for field in ("license", "homepage", "description", "image"):
        _text(value.get(field, ""), f"record {field}")
    try:
        record = rec.InstalledPackage.from_json(value)
    except (TypeError, ValueError) as err:
        raise BadState("a package record of the build state is malformed") from err
    return rec.dump([record])[0] | {"use": list(record.use), "iuse": list(record.iuse)}


def _builder_file(value) -> dict:
    if not isinstance(value, dict) or set(value) != _FILE_FIELDS:
        raise BadState("a runtime_libs entry of the build state has other fields than an entry's")
    for field in ("path", "source"):
        path = _text(value[field], f"runtime_libs {field}")
        if not path.startswith("/") or ".." in path.split("/"):
            raise BadState(
                f"the build state's runtime_libs {field} {_short(path)} is not a plain absolute path"
            )
    _cpv(value["package"], "runtime_libs package")
    for field, pattern in _HEX.items():
        _match(value[field], pattern, f"runtime_libs {field}")
    _text(value["license"], "runtime_libs license")
    _text(value["image"], "runtime_libs image")
    return runtimelibs.dump(runtimelibs.load([value]))[0]
