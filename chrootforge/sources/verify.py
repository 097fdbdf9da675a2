"""OpenPGP verification in a private, throw-away GnuPG home: never the user's keyring.

Policy: a signature counts only if gpg reports exactly one good (GOODSIG) and valid (VALIDSIG)
signature, with no BADSIG/ERRSIG/expired/revoked status, made by a key whose primary fingerprint
(or signing-subkey fingerprint) is accepted. Accepted = the pinned Gentoo fingerprint for this kind
of file, plus every key the user passed with --keyring (an explicit --keyring is trusted for the run).
Keys found at well-known paths are imported but only their pinned fingerprints count. With neither,
the pinned keys come from Gentoo's Web Key Directory (sources/wkd.py), cached after the first time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

from chrootforge import log
from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.sources import remedies
from chrootforge.sources.pinned import table_of

WELL_KNOWN_KEYRINGS = (
    "/usr/share/openpgp-keys/gentoo-release.asc",  # sec-keys/openpgp-keys-gentoo-release on Gentoo
)
_BAD_STATUS = ("BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY", "KEYREVOKED")


def well_known_keyrings() -> list[Path]:
    extra = os.environ.get("CHROOTFORGE_GENTOO_KEYRING")  # a site-wide copy of the Gentoo keys
    paths = [*(extra.split(os.pathsep) if extra else []), *WELL_KNOWN_KEYRINGS]
    return [Path(p) for p in paths if p and Path(p).is_file()]


def missing_key_hint(fingerprint: str) -> str:
    table = table_of(fingerprint)
    return (
        f"get the Gentoo key once on a connected machine: `gpg --keyserver hkps://keys.gentoo.org "
        f"--recv-keys {fingerprint} && gpg --export --armor {fingerprint} > gentoo-release.asc` "
        f"(on Gentoo it is /usr/share/openpgp-keys/gentoo-release.asc), then give it with "
        f"{remedies.keyring(table).replace('FILE', 'gentoo-release.asc')}"
    )


def keyring_fingerprints(keyrings) -> set[str]:
    """The primary fingerprints of the keys in these files (read in a throw-away GnuPG home)."""
    with Verifier((), keyrings, use_well_known=False, require_key=False) as verifier:
        return set(verifier.accepted)


class Verifier:
    """Use as a context manager: imports keys into a temp GnuPG home and removes it at exit."""

    def __init__(
        self, pinned: tuple[str, ...], keyrings=(), *, use_well_known: bool = True, require_key: bool = True
    ):
        self.pinned = {fp.upper() for fp in pinned}
        self.keyrings = [Path(k) for k in keyrings]
        self.use_well_known = use_well_known
        self.require_key = require_key
        self.accepted: set[str] = set()
        self._home: str | None = None
        self._gpg: Any = None  # a gnupg.GPG while entered (python-gnupg has no type hints)

    def __enter__(self) -> Self:
        import gnupg  # lazy: only verification needs it

        self._home = tempfile.mkdtemp(prefix="cf-gnupg-")
        os.chmod(self._home, 0o700)
        try:
            try:
                self._gpg = gnupg.GPG(gnupghome=self._home, options=["--no-autostart"])
            except (OSError, ValueError) as err:
                raise CfError(f"cannot run gpg: {err}", hint="install GnuPG (apt-get install gpg)") from err
            for path in self.keyrings:
                fprs = self._import(path)
                if not fprs:
                    raise UsageError(
                        f"keyring {path}: no OpenPGP public key found in it",
                        hint=f"give an armored or binary public key file with {remedies.keyring()}",
                    )
                self.accepted.update(fprs)
            present = set()
            for path in well_known_keyrings() if self.use_well_known else []:
                present.update(self._import(path))
            present |= self.accepted
            if self.use_well_known and not self.accepted and not self.pinned & present:
                from chrootforge.sources.wkd import import_pinned  # Gentoo's key directory, cached

                present |= import_pinned(self._gpg, self.pinned)
            self.accepted |= self.pinned & present
            if not self.accepted and self.require_key:
                fpr = min(self.pinned) if self.pinned else "?"
                raise VerificationError(
                    f"no OpenPGP key to verify the signature (need key {fpr})", hint=missing_key_hint(fpr)
                )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def _import(self, path: Path) -> set[str]:
        if not path.is_file():
            raise UsageError(f"keyring {path} does not exist")
        return self.import_data(path.read_bytes())

    def import_data(self, data: bytes) -> set[str]:
        """Import keys (armored or binary); their primary fingerprints (not yet accepted)."""
        result = self._gpg.import_keys(data)
        return {fp.upper() for fp in (result.fingerprints or []) if fp}

    def _judge(self, result, what: str) -> str:
        status = [
            line.split()[1:]
            for line in (result.stderr or "").splitlines()
            if line.startswith("[GNUPG:] ") and len(line.split()) > 1
        ]
        keys = [s[0] for s in status]
        for bad in _BAD_STATUS:
            if bad in keys:
                raise VerificationError(f"{what}: {_explain(bad)}", hint=_hint(bad, self.pinned))
        goods = [s for s in status if s[0] == "GOODSIG"]
        valids = [s for s in status if s[0] == "VALIDSIG"]
        if len(goods) != 1 or len(valids) != 1:
            raise VerificationError(
                f"{what}: no single good signature (gpg reported {len(goods)} good, {len(valids)} valid)",
                hint="the signature file is missing, empty or corrupt",
            )
        fields = valids[0]
        signing = fields[1].upper()
        primary = fields[10].upper() if len(fields) > 10 else signing
        if primary in self.accepted or signing in self.accepted:
            return primary
        raise VerificationError(
            f"{what}: signed by {primary}, which is not a pinned Gentoo key nor in a trusted keyring",
            hint=f"only the Gentoo release keys and those given with {remedies.keyring()} are trusted",
        )

    def verify_detached(self, data_path: Path, sig_path: Path, what: str) -> str:
        """Return the signer's primary fingerprint, or raise VerificationError."""
        if not sig_path.is_file() or sig_path.stat().st_size == 0:
            raise VerificationError(
                f"{what}: signature file {sig_path.name} is missing or empty",
                hint="the mirror is incomplete; try another one",
            )
        with open(sig_path, "rb") as sig:
            result = self._gpg.verify_file(sig, str(data_path))
        return self._judge(result, what)

    def verify_signed(self, blob: bytes, what: str) -> tuple[bytes, str]:
        """(the signed data, signer fingerprint) of an OpenPGP Signed Message (gpg --sign)."""
        result = self._gpg.decrypt(blob)
        if any(s.startswith("[GNUPG:] BEGIN_DECRYPTION") for s in (result.stderr or "").splitlines()):
            raise VerificationError(f"{what}: an encrypted message, not a signed one")
        fpr = self._judge(result, what)
        return bytes(result.data or b""), fpr

    def verify_clearsigned(self, raw: bytes, what: str) -> tuple[str, str]:
        """Return (the signed text exactly as gpg verified it, signer fingerprint)."""
        text = raw.decode("utf-8", "replace")
        outside = _outside_armor(text)
        if outside is None:
            raise VerificationError(
                f"{what}: not a clearsigned message",
                hint="since 2023 the latest-stage3 file is clearsigned; is this a real mirror?",
            )
        if outside.strip():
            raise VerificationError(
                f"{what}: text outside the signed part", hint="the file was altered after signing"
            )
        result = self._gpg.decrypt(raw)
        fpr = self._judge(result, what)
        return result.data.decode("utf-8", "replace"), fpr


def _outside_armor(text: str) -> str | None:
    begin, sig, end = (
        "-----BEGIN PGP SIGNED MESSAGE-----",
        "-----BEGIN PGP SIGNATURE-----",
        "-----END PGP SIGNATURE-----",
    )
    if text.count(begin) != 1 or text.count(sig) != 1 or text.count(end) != 1:
        return None
    start, stop = text.index(begin), text.index(end) + len(end)
    if not start < text.index(sig) < stop:
        return None
    return text[:start] + text[stop:]


def unsigned_text_of_clearsigned(raw: bytes) -> str:
    """For --insecure-skip-verify only: the body of a clearsigned message, without checking it."""
    lines = raw.decode("utf-8", "replace").splitlines()
    if lines and lines[0].startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        body, started = [], False
        for line in lines[1:]:
            if not started:
                started = line == ""
                continue
            if line.startswith("-----BEGIN PGP SIGNATURE-----"):
                break
            body.append(line.removeprefix("- "))
        return "\n".join(body) + "\n"
    log.warn("the latest file is not clearsigned")
    return "\n".join(lines) + "\n"


def _explain(status: str) -> str:
    return {
        "BADSIG": "BAD signature (the file does not match its signature)",
        "ERRSIG": "the signature cannot be checked (unknown signer key or unsupported algorithm)",
        "NO_PUBKEY": "signed by an unknown key",
        "EXPSIG": "the signature has expired",
        "EXPKEYSIG": "signed by an expired key",
        "REVKEYSIG": "signed by a revoked key",
        "KEYREVOKED": "the signing key is revoked",
    }[status]


def _hint(status: str, pinned: set[str]) -> str:
    if status in ("ERRSIG", "NO_PUBKEY"):
        return f"give the signer's public key with {remedies.keyring()}" + (
            f" (expected {', '.join(sorted(pinned))})" if pinned else ""
        )
    if status in ("EXPKEYSIG", "KEYREVOKED", "REVKEYSIG"):
        return "refresh the key (`gpg --refresh-keys`, then export it again) or check the mirror"
    return "the file was altered or damaged; fetch it again or try another mirror"
