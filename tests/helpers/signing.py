"""Keys, policies and registries.d directories for the signing tests.

`SigningKeys` (session fixture `signing_keys`, world-readable, removed at the end):
- two OpenPGP keys made with gpg: `trusted` (protected by PASSPHRASE) and `other`; their public
  halves exported to trusted.gpg / other.gpg (binary keyrings, what a policy's keyPath names);
- two sigstore key pairs: `cosign.key` (cosign's encrypted format, N=2^15, PASSPHRASE, the format
  podman 4.3 reads), `cosign.pub`, and `other.key` (plain PKCS#8 PEM) / `other.pub`;
- `passphrase` (the file) and `wrong-passphrase`.
`gnupg_home(identity)` gives an identity its own GNUPGHOME with the secret keys (gpg wants to own
it); its agent is stopped by `stop_agents()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.identity import shared_dir

PASSPHRASE = "cf-test-sign-passphrase"


@dataclass
class SigningKeys:
    root: Path
    trusted_fpr: str
    other_fpr: str

    @property
    def trusted_gpg(self) -> Path:
        return self.root / "trusted.gpg"

    @property
    def other_gpg(self) -> Path:
        return self.root / "other.gpg"

    @property
    def cosign_key(self) -> Path:
        return self.root / "cosign.key"

    @property
    def cosign_pub(self) -> Path:
        return self.root / "cosign.pub"

    @property
    def other_key(self) -> Path:
        return self.root / "other.key"

    @property
    def other_pub(self) -> Path:
        return self.root / "other.pub"

    @property
    def passphrase(self) -> Path:
        return self.root / "passphrase"

    @property
    def wrong_passphrase(self) -> Path:
        return self.root / "wrong-passphrase"

    @property
    def secret_export(self) -> Path:
        return self.root / "secret.asc"


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def _make_keys(root: Path) -> SigningKeys:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from chrootforge.registry.signing.keys import encrypt_cosign

    home = root / "gnupg"
    home.mkdir(mode=0o700)
    fprs = []
    for name, passphrase in (("cf trusted signer", PASSPHRASE), ("cf other signer", "")):
        _gpg(
            home,
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            f"{name} <{name.split()[1]}@cf.test>",
            "ed25519",
            "sign",
            "never",
        )
        listing = _gpg(home, "--with-colons", "--list-secret-keys", name).decode()
        fprs.append(next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")))
    (root / "trusted.gpg").write_bytes(_gpg(home, "--export", fprs[0]))
    (root / "other.gpg").write_bytes(_gpg(home, "--export", fprs[1]))
    (root / "secret.asc").write_bytes(
        _gpg(home, "--passphrase", PASSPHRASE, "--armor", "--export-secret-keys", fprs[0], fprs[1])
    )
    stop_agent(home)
    shutil.rmtree(home)
    for name, encrypted in (("cosign", True), ("other", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pem = (
            encrypt_cosign(pkcs8, PASSPHRASE.encode())
            if encrypted
            else key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (root / f"{name}.key").write_bytes(pem)
        (root / f"{name}.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    (root / "passphrase").write_text(PASSPHRASE + "\n")
    (root / "wrong-passphrase").write_text("not-" + PASSPHRASE + "\n")
    for path in root.iterdir():
        path.chmod(0o644)
    return SigningKeys(root, fprs[0], fprs[1])


@pytest.fixture(scope="session")
def signing_keys() -> SigningKeys:
    root = shared_dir("signkeys.")
    yield _make_keys(root)
    shutil.rmtree(root, ignore_errors=True)


def gnupg_home(identity, keys: SigningKeys, base: Path) -> Path:
    """A GNUPGHOME owned by `identity`, holding both secret keys."""
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(home, identity.uid, identity.gid)
    proc = identity.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            PASSPHRASE,
            "--import",
            str(keys.secret_export),
        ],
    )
    assert proc.returncode == 0, proc.stderr
    return home


def stop_identity_agent(identity, home: Path) -> None:
    identity.run(["gpgconf", "--homedir", str(home), "--kill", "all"])


def write_policy(path: Path, docker_scopes: dict, default: list | None = None) -> Path:
    path.write_text(
        json.dumps(
            {"default": default or [{"type": "reject"}], "transports": {"docker": docker_scopes}}, indent=1
        )
    )
    path.chmod(0o644)
    return path


def signed_by(keyring: Path, identity: dict | None = None) -> dict:
    req = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keyring)}
    if identity:
        req["signedIdentity"] = identity
    return req


def sigstore_signed(pub: Path, identity: dict | None = None) -> dict:
    req = {"type": "sigstoreSigned", "keyPath": str(pub)}
    if identity:
        req["signedIdentity"] = identity
    return req


def write_registries_d(directory: Path, scope: str, lookaside: Path | str | None, attachments: bool) -> Path:
    """registries.d/DIR/test.yaml configuring `scope`."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["docker:", f"  {scope}:"]
    if lookaside is not None:
        url = lookaside if isinstance(lookaside, str) else f"file://{lookaside}"
        lines.append(f"    lookaside: {url}")
    lines.append(f"    use-sigstore-attachments: {'true' if attachments else 'false'}")
    (directory / "test.yaml").write_text("\n".join(lines) + "\n")
    for path in (directory, directory / "test.yaml"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory
