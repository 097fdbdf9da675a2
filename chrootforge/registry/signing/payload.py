"""The signed claim of a container signature (containers-signature(5)), made and read strictly.

    {"critical": {"identity": {"docker-reference": "HOST/REPO:TAG"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "atomic container signature"},
     "optional": {"creator": "chrootforge 0.1.0", "timestamp": 1700000000}}

OpenPGP ("simple signing") signatures carry type `atomic container signature`; sigstore ones
`cosign container image signature`. Reading is as strict as the format asks: exactly these
members in `critical` and its objects, no duplicate member anywhere, the right types; `optional`
may hold anything, but a timestamp must be an integer. Only a payload whose signature verified is
ever parsed (the caller's duty, as the format requires).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from chrootforge import __version__, untrusted

SIMPLE_TYPE = "atomic container signature"
SIGSTORE_TYPE = "cosign container image signature"
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")


class BadPayload(ValueError):
    """The payload is not a valid signature claim; the message says why."""


@dataclass(frozen=True)
class Claim:
    kind: str  # SIMPLE_TYPE | SIGSTORE_TYPE
    manifest_digest: str
    docker_reference: str


def make(kind: str, manifest_digest: str, docker_reference: str, timestamp: int) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": kind,
        },
        "optional": {"creator": f"chrootforge {__version__}", "timestamp": int(timestamp)},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise BadPayload(f"the member {key[:40]!r} appears twice")
        out[key] = value
    return out


def _exact(obj: object, names: set[str], where: str) -> dict:
    if not isinstance(obj, dict):
        raise BadPayload(f"{where} is not an object")
    if set(obj) != names:
        extra = sorted(set(obj) - names)
        missing = sorted(names - set(obj))
        raise BadPayload(
            f"{where} has the unexpected member {extra[0][:40]!r}"
            if extra
            else f"{where} lacks {missing[0]!r}"
        )
    return obj


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadPayload(f"{where} is not a string")
    return value


def parse(data: bytes, kind: str) -> Claim:
    """The claim of a verified payload of type `kind`; BadPayload otherwise."""
    try:
        doc = untrusted.loads_json(data, "the payload", pairs_hook=_no_duplicates)
    except BadPayload:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise BadPayload("the payload is not JSON") from err
    top = _exact(doc, {"critical", "optional"}, "the payload")
    critical = _exact(top["critical"], {"type", "image", "identity"}, "critical")
    if critical["type"] != kind:
        raise BadPayload(f"the signature type is {str(critical['type'])[:60]!r}, not {kind!r}")
    image = _exact(critical["image"], {"docker-manifest-digest"}, "critical.image")
    identity = _exact(critical["identity"], {"docker-reference"}, "critical.identity")
    optional = top["optional"]
    # cosign writes "optional": null when there are no annotations
    if optional is not None:
        if not isinstance(optional, dict):
            raise BadPayload("optional is not an object")
        stamp = optional.get("timestamp")
        if stamp is not None and (
            isinstance(stamp, bool) or not isinstance(stamp, int | float) or int(stamp) != stamp
        ):
            raise BadPayload("optional.timestamp is not an integer")
        if "creator" in optional:
            _string(optional["creator"], "optional.creator")
    digest = _string(image["docker-manifest-digest"], "critical.image.docker-manifest-digest")
    if not _DIGEST_RE.match(digest):
        raise BadPayload(f"the signed digest {digest[:80]!r} is not a sha256 digest")
    reference = _string(identity["docker-reference"], "critical.identity.docker-reference")
    return Claim(kind, digest, reference)
