"""NaCl's secretbox (XSalsa20 + Poly1305), in pure Python, for cosign's encrypted key files.

A cosign key file ("ENCRYPTED COSIGN PRIVATE KEY" / "ENCRYPTED SIGSTORE PRIVATE KEY") is the
private key sealed with secretbox under a key that scrypt derives from the passphrase. It is opened
once per run, on a few hundred bytes: a small, pure implementation avoids another native dependency
(libsodium). It never sees an attacker-chosen stream of guesses (the key file is local, and the
tag is compared in constant time), so Python's variable-time integers leak nothing useful.

Salsa20 and Poly1305 follow D. J. Bernstein's specifications ("Salsa20 specification", 2005;
"Extending the Salsa20 nonce", 2008; "The Poly1305-AES message-authentication code", 2005);
tests/registry/test_signing_units.py checks this code against libsodium (PyNaCl) and podman's Go.
"""

from __future__ import annotations

import hmac
import struct

KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_MASK = 0xFFFFFFFF
_P1305 = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


class SecretBoxError(ValueError):
    """The box does not open: wrong key (passphrase) or altered data."""


def _rounds(x: list[int]) -> list[int]:
    """Salsa20's 20 rounds (10 double rounds) on a copy of the 16-word state."""
    x = list(x)

    def quarter(a: int, b: int, c: int, d: int) -> None:
        t = (x[a] + x[d]) & _MASK
        x[b] ^= ((t << 7) | (t >> 25)) & _MASK
        t = (x[b] + x[a]) & _MASK
        x[c] ^= ((t << 9) | (t >> 23)) & _MASK
        t = (x[c] + x[b]) & _MASK
        x[d] ^= ((t << 13) | (t >> 19)) & _MASK
        t = (x[d] + x[c]) & _MASK
        x[a] ^= ((t << 18) | (t >> 14)) & _MASK

    for _ in range(10):
        quarter(0, 4, 8, 12)  # columns
        quarter(5, 9, 13, 1)
        quarter(10, 14, 2, 6)
        quarter(15, 3, 7, 11)
        quarter(0, 1, 2, 3)  # rows
        quarter(5, 6, 7, 4)
        quarter(10, 11, 8, 9)
        quarter(15, 12, 13, 14)
    return x


def _state(key: bytes, middle: bytes) -> list[int]:
    k = struct.unpack("<8I", key)
    m = struct.unpack("<4I", middle)
    return [_SIGMA[0], *k[:4], _SIGMA[1], *m, _SIGMA[2], *k[4:], _SIGMA[3]]


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """The XSalsa20 subkey: the rounds' words 0, 5, 10, 15, 6, 7, 8, 9, without the final addition."""
    x = _rounds(_state(key, nonce16))
    return struct.pack("<8I", *(x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def _salsa20_stream(key: bytes, nonce8: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        state = _state(key, nonce8 + struct.pack("<Q", counter))
        mixed = _rounds(state)
        out += struct.pack("<16I", *((a + b) & _MASK for a, b in zip(mixed, state, strict=True)))
        counter += 1
    return bytes(out[:length])


def poly1305(key: bytes, message: bytes) -> bytes:
    r = int.from_bytes(key[:16], "little") & _CLAMP
    s = int.from_bytes(key[16:32], "little")
    acc = 0
    for i in range(0, len(message), 16):
        block = message[i : i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % _P1305
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise SecretBoxError("secretbox needs a 32-byte key and a 24-byte nonce")
    return _salsa20_stream(hsalsa20(key, nonce[:16]), nonce[16:], length)


def seal(message: bytes, nonce: bytes, key: bytes) -> bytes:
    """tag || ciphertext, as NaCl's crypto_secretbox (and Go's secretbox.Seal) lay it out."""
    stream = _stream(key, nonce, 32 + len(message))
    cipher = bytes(a ^ b for a, b in zip(message, stream[32:], strict=True))
    return poly1305(stream[:32], cipher) + cipher


def open_box(box: bytes, nonce: bytes, key: bytes) -> bytes:
    if len(box) < TAG_SIZE:
        raise SecretBoxError("the sealed data is shorter than its authenticator")
    tag, cipher = box[:TAG_SIZE], box[TAG_SIZE:]
    stream = _stream(key, nonce, 32 + len(cipher))
    if not hmac.compare_digest(poly1305(stream[:32], cipher), tag):
        raise SecretBoxError("the authenticator does not match")
    return bytes(a ^ b for a, b in zip(cipher, stream[32:], strict=True))
