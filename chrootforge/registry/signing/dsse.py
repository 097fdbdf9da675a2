"""DSSE v1 envelopes (secure-systems-lab/dsse, envelope.md), for the signed provenance (pure but
for the signers).

The signature covers PAE(payloadType, payload) =
    "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload
(LEN: the byte length in ASCII decimal), never the JSON of the envelope. Each signature names its
key: sigstore keys by the sha256 of their public key (DER), OpenPGP keys by their fingerprint (the
signature then being a binary detached OpenPGP signature of the PAE).
"""

from __future__ import annotations

import base64
import json

from chrootforge import untrusted

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(payload_type: str, payload: bytes, signatures: list[tuple[str, bytes]]) -> bytes:
    """The envelope JSON (canonical: sorted keys, no spaces) with (keyid, signature) pairs."""
    doc = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()} for keyid, sig in signatures],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign(payload_type: str, payload: bytes, signers) -> bytes:
    """An envelope signed by each of `signers` (objects with .keyid and .sign_dsse(bytes))."""
    message = pae(payload_type, payload)
    return envelope(payload_type, payload, [(s.keyid, s.sign_dsse(message)) for s in signers])


def decode(data: bytes) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    """(payloadType, payload, [(keyid, signature)]) of an envelope; ValueError when malformed."""
    doc = untrusted.loads_json(data, "a DSSE envelope")
    if not isinstance(doc, dict) or not isinstance(doc.get("payloadType"), str):
        raise ValueError("not a DSSE envelope")
    payload = base64.b64decode(doc.get("payload") or "", validate=True)
    sigs = []
    for entry in doc.get("signatures") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
            raise ValueError("a DSSE signature without `sig`")
        sigs.append((str(entry.get("keyid", "")), base64.b64decode(entry["sig"], validate=True)))
    if not sigs:
        raise ValueError("a DSSE envelope without signatures")
    return doc["payloadType"], payload, sigs
