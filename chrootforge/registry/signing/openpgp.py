"""OpenPGP ("simple signing") signatures with GnuPG, through python-gnupg.

Signing uses the user's keyring, as podman and skopeo do ($GNUPGHOME, else ~/.gnupg): the payload
becomes an OpenPGP Signed Message (`gpg --sign`, binary: compressed one-pass signature, literal
data, signature), the format containers/image reads. A passphrase goes to gpg through a pipe
(loopback pinentry), never through a file or an argument.

Verification runs in a throw-away GnuPG home holding only the keys a policy trusts
(sources/verify.py's Verifier): the blob must be a binary Signed Message (not a cleartext
signature, not bare literal data), carry exactly one good, valid, unexpired signature by one of
those keys, and only then is its payload handed out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chrootforge.errors import CfError, UsageError, VerificationError

_SIGN_FAILURES = {
    "BAD_PASSPHRASE": ("wrong passphrase for the OpenPGP key {key}", "check the --sign-passphrase-file"),
    "MISSING_PASSPHRASE": (
        "the OpenPGP key {key} is protected by a passphrase",
        "give it with --sign-passphrase-file FILE",
    ),
    "NO_SECKEY": (
        "no secret key {key} in the GnuPG keyring",
        "import it, or point $GNUPGHOME at its keyring",
    ),
    "INV_SGNR": (
        "no usable secret key {key} in the GnuPG keyring",
        "import it, or point $GNUPGHOME at its keyring",
    ),
    "KEYEXPIRED": (
        "the OpenPGP key {key} has expired",
        "extend it (gpg --quick-set-expire) or use another key",
    ),
    "KEYREVOKED": ("the OpenPGP key {key} is revoked", "use another key"),
}


def _status(stderr: str) -> list[list[str]]:
    return [
        line.split()[1:]
        for line in (stderr or "").splitlines()
        if line.startswith("[GNUPG:] ") and len(line.split()) > 1
    ]


def _gpg(home: str | None, extra: list[str] | None = None) -> Any:
    import gnupg

    try:
        return gnupg.GPG(gnupghome=home, options=extra or None)
    except (OSError, ValueError) as err:
        raise CfError(f"cannot run gpg: {err}", hint="install GnuPG (apt-get install gpg)") from err


@dataclass
class OpenPGPSigner:
    """--sign-by KEY: signs with the user's keyring; `fingerprint` is the key's primary one."""

    key: str
    passphrase: str | None = None
    fingerprint: str = ""

    def __repr__(self) -> str:
        return f"OpenPGPSigner({self.key})"

    def _handle(self) -> Any:
        return _gpg(os.environ.get("GNUPGHOME") or None, ["--pinentry-mode", "loopback"])

    def public_key(self) -> bytes:
        """The key's public part, exported from the keyring (to recognize its own signatures)."""
        return self._handle().export_keys(self.fingerprint, armor=False) or b""

    def check(self) -> None:
        """Find the secret key (before anything is pushed)."""
        gpg = self._handle()
        keys = gpg.list_keys(secret=True, keys=[self.key])
        if len(keys) != 1:
            where = os.environ.get("GNUPGHOME") or "~/.gnupg"
            count = "no" if not keys else "more than one"
            raise UsageError(
                f"--sign-by {self.key}: {count} secret key matches it in {where}",
                hint="give the key's full fingerprint; `gpg --list-secret-keys` shows them",
            )
        self.fingerprint = keys[0]["fingerprint"].upper()
        if self.passphrase is not None and ("\n" in self.passphrase or "\r" in self.passphrase):
            raise UsageError("the passphrase file holds more than one line")

    @property
    def keyid(self) -> str:
        return self.fingerprint or self.key

    def sign(self, payload: bytes) -> bytes:
        """An OpenPGP Signed Message holding `payload`."""
        return self._sign(payload, detach=False)

    def sign_dsse(self, message: bytes) -> bytes:
        """A binary detached signature of `message` (a DSSE PAE)."""
        return self._sign(message, detach=True)

    def _sign(self, payload: bytes, detach: bool) -> bytes:
        gpg = self._handle()
        result = gpg.sign(
            payload,
            keyid=self.fingerprint or self.key,
            passphrase=self.passphrase or None,
            clearsign=False,
            detach=detach,
            binary=True,
        )
        data = bytes(result.data or b"")
        if data and any(s[0] == "SIG_CREATED" for s in _status(result.stderr)):
            return data
        status = _status(result.stderr)
        codes = [s[0] for s in status]
        # gpg 2.2 reports a bad passphrase as FAILURE sign <source<<24 | 11 (GPG_ERR_BAD_PASSPHRASE)>
        failures = [int(s[2]) & 0xFFFF for s in status if s[0] == "FAILURE" and len(s) > 2 and s[2].isdigit()]
        if 11 in failures:
            codes.append("BAD_PASSPHRASE")
        if self.passphrase is None and "NEED_PASSPHRASE" in codes:
            codes.append("MISSING_PASSPHRASE")
        for code, (message, hint) in _SIGN_FAILURES.items():
            if code in codes:
                if code == "BAD_PASSPHRASE" and self.passphrase is None:
                    message, hint = _SIGN_FAILURES["MISSING_PASSPHRASE"]
                raise UsageError(message.format(key=self.fingerprint or self.key), hint=hint)
        raise CfError(
            f"gpg could not sign with {self.fingerprint or self.key}: {result.status or 'no signature made'}",
            hint="try `gpg --sign --local-user KEY` to see why",
        )


def verify(blob: bytes, keyrings: list[bytes], what: str) -> tuple[bytes, str]:
    """(payload, signer's primary fingerprint) of a simple signature made by one of the keys in
    `keyrings` (their bytes); VerificationError otherwise."""
    from chrootforge.sources.verify import Verifier

    if not blob or not blob[0] & 0x80:
        raise VerificationError(f"{what}: not a binary OpenPGP signed message")
    with Verifier((), (), use_well_known=False, require_key=False) as verifier:
        for data in keyrings:
            verifier.accepted.update(verifier.import_data(data))
        if not verifier.accepted:
            raise VerificationError(f"{what}: the policy's keyring holds no public key")
        try:
            return verifier.verify_signed(blob, what)
        except VerificationError as err:
            message = str(err)
            if "unknown signer key" in message or "signed by an unknown key" in message:
                message = f"{what}: signed by a key the policy does not name"
            raise VerificationError(
                message,
                hint="only signatures by the keys the policy names (keyPath, keyPaths, keyData) count",
            ) from err
