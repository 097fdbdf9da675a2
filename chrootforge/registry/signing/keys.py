"""Sigstore keys: the private key that signs (PEM, or cosign's encrypted key file) and the public
keys that verify. The cryptography package (OpenSSL) does the curve arithmetic.

Private keys, in the PEM forms cosign, podman and openssl write:
- `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`: a JSON document (go-tuf's
  `encrypted` format) holding a PKCS#8 key sealed with NaCl secretbox under
  scrypt(passphrase, salt, N, r=8, p=1) with N one of 2^15 (what podman 4.3 reads), 2^16, 2^17;
- `ENCRYPTED PRIVATE KEY` (PKCS#8 with a passphrase), `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1).
Signing is ECDSA over SHA-256 (ASN.1 DER signatures, as cosign and containers/image make them).
The key stays in memory; chrootforge never writes it anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chrootforge import untrusted
from chrootforge.errors import UsageError, VerificationError
from chrootforge.registry.signing import secretbox

COSIGN_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
# go-tuf's legacy, standard and OWASP parameters; anything else could make scrypt take hours
SCRYPT_PARAMS = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
MAX_KEY_FILE = 1 << 20
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class KeyProblem(UsageError):
    """A key that cannot be used: missing, unreadable, wrong passphrase, wrong kind."""


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(type, DER bytes) of every PEM block in data."""
    out = []
    for match in _PEM_RE.finditer(data):
        body = b"".join(line.strip() for line in match.group(2).splitlines() if b":" not in line)
        try:
            out.append((match.group(1).decode(), base64.b64decode(body, validate=True)))
        except ValueError:
            continue
    return out


def _scrypt(passphrase: bytes, kdf: dict) -> bytes:
    params = kdf.get("params") or {}
    chosen = (params.get("N"), params.get("r"), params.get("p"))
    if kdf.get("name") != "scrypt" or chosen not in SCRYPT_PARAMS:
        raise ValueError("unsupported key derivation (scrypt with N=2^15..2^17, r=8, p=1 expected)")
    n, r, p = (int(v) for v in chosen)
    salt = base64.b64decode(kdf.get("salt") or "", validate=True)
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, maxmem=256 << 20, dklen=secretbox.KEY_SIZE)


def decrypt_cosign(der_json: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 bytes inside a cosign key file's JSON; ValueError on a bad document,
    SecretBoxError on a wrong passphrase."""
    doc = untrusted.loads_json(der_json, "the cosign key file")
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    cipher = doc.get("cipher") or {}
    if cipher.get("name") != "nacl/secretbox":
        raise ValueError(f"unsupported cipher {str(cipher.get('name'))[:40]!r}")
    key = _scrypt(passphrase, doc.get("kdf") or {})
    nonce = base64.b64decode(cipher.get("nonce") or "", validate=True)
    box = base64.b64decode(doc.get("ciphertext") or "", validate=True)
    return secretbox.open_box(box, nonce, key)


def encrypt_cosign(pkcs8: bytes, passphrase: bytes, n: int = 32768, pem_type: str = COSIGN_TYPES[1]) -> bytes:
    """A cosign key file for `pkcs8` (what `cosign generate-key-pair` writes; N=2^15 by default,
    the only one podman 4.3 opens)."""
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(secretbox.NONCE_SIZE)
    kdf = {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()}
    box = secretbox.seal(pkcs8, nonce, _scrypt(passphrase, kdf))
    doc = {
        "kdf": kdf,
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(box).decode(),
    }
    return pem(pem_type, json.dumps(doc).encode())


def pem(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n").encode()


def read_key_file(path: str | Path, what: str) -> bytes:
    from chrootforge.fsutil import read_regular

    try:
        return read_regular(path, MAX_KEY_FILE)
    except FileNotFoundError as err:
        raise KeyProblem(f"{what} {path} does not exist") from err
    except OSError as err:
        raise KeyProblem(f"cannot read {what} {path}: {err.strerror or err}") from err


@dataclass(frozen=True)
class SigstoreSigner:
    """An unlocked private key; `public_pem` is what a policy's keyPath names."""

    key: Any  # a cryptography private key (never printed: no repr of it)
    source: str

    def __repr__(self) -> str:
        return f"SigstoreSigner({self.source})"

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    sign_dsse = sign  # a DSSE signature is the same ECDSA signature, of the PAE

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def keyid(self) -> str:
        """sha256 of the public key's DER: how a DSSE signature names its key."""
        from cryptography.hazmat.primitives import serialization

        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "sha256:" + hashlib.sha256(der).hexdigest()


def load_private_key(path: str | Path, passphrase: bytes | None) -> SigstoreSigner:
    """The signing key of --sign-by-sigstore-private-key, checked to be ECDSA P-256; KeyProblem
    with one line for a missing file, a wrong passphrase, a foreign format or key type."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    where = f"sigstore private key {path}"
    blocks = pem_blocks(read_key_file(path, "the sigstore private key"))
    if not blocks:
        raise KeyProblem(f"{where} holds no PEM block", hint="give a cosign key file or a PEM private key")
    kind, der = blocks[0]
    try:
        if kind in COSIGN_TYPES:
            try:
                der = decrypt_cosign(der, passphrase if passphrase is not None else b"")
            except secretbox.SecretBoxError as err:
                raise KeyProblem(
                    f"{where}: wrong passphrase" if passphrase is not None else f"{where} is encrypted",
                    hint="check the file given with --sign-passphrase-file"
                    if passphrase is not None
                    else "give its passphrase with --sign-passphrase-file FILE",
                ) from err
            key = serialization.load_der_private_key(der, None)
        elif kind == "ENCRYPTED PRIVATE KEY":
            if passphrase is None:
                raise KeyProblem(
                    f"{where} is encrypted", hint="give its passphrase with --sign-passphrase-file FILE"
                )
            try:
                key = serialization.load_der_private_key(der, passphrase)
            except ValueError as err:
                raise KeyProblem(
                    f"{where}: wrong passphrase", hint="check the --sign-passphrase-file"
                ) from err
        elif kind in ("PRIVATE KEY", "EC PRIVATE KEY"):
            key = serialization.load_der_private_key(der, None)
        else:
            raise KeyProblem(
                f"{where} is a {kind!r} PEM block, not a private key",
                hint="give a cosign key file (cosign generate-key-pair) or an EC private key in PEM",
            )
    except (ValueError, TypeError) as err:
        if isinstance(err, KeyProblem):
            raise
        raise KeyProblem(f"{where} cannot be read: {str(err).splitlines()[0][:120]}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyProblem(f"{where} is not an ECDSA P-256 key", hint="sigstore signatures use ECDSA P-256")
    return SigstoreSigner(key, str(path))


def load_public_key(data: bytes, where: str):
    """A PEM public key of a policy (keyPath, keyData): ECDSA, RSA or Ed25519, as containers/image
    accepts; VerificationError otherwise."""
    from cryptography.hazmat.primitives import serialization

    blocks = [b for b in pem_blocks(data) if b[0] == "PUBLIC KEY"]
    if not blocks:
        raise VerificationError(f"{where}: no PEM public key in it", hint="give the cosign.pub of the signer")
    try:
        return serialization.load_der_public_key(blocks[0][1])
    except (ValueError, TypeError) as err:
        raise VerificationError(f"{where}: the public key cannot be read") from err


def verify(public_key, signature: bytes, data: bytes) -> bool:
    """Is `signature` a valid SHA-256 signature of `data` by `public_key`?"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
