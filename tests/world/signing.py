"""The test release key, and a stage3's .DIGESTS and detached .asc made with it.

The key is committed (test-release-key.secret.asc, TEST ONLY, shaped like Gentoo's
release-engineering key: a certify-only ed25519 primary with a signing subkey), so that the
synthetic stage's signer, and so every image label naming it, is the same on every machine. It is
imported into a private GNUPGHOME (`<cache>/gnupg`); its public half is exported to
`<cache>/world-test-key.asc`, which is what a test passes as `--keyring`.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from pathlib import Path

from chrootforge.fsutil import atomic_write, file_lock

HERE = Path(__file__).resolve().parent
SECRET_KEY = HERE / "test-release-key.secret.asc"
FINGERPRINT = "A183D90A80C213D70ADB71F1D73D21D992B7E62B"
PUBLIC_KEY_NAME = "world-test-key.asc"


class SigningError(RuntimeError):
    pass


@contextlib.contextmanager
def _gpg(home: Path):
    """A GPG for `home`; using a secret key needs an agent, stopped again on exit."""
    import gnupg

    try:
        yield gnupg.GPG(gnupghome=str(home))
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True
        )


def ensure_key(cache_dir: Path) -> tuple[str, Path]:
    """(fingerprint, public key file), importing the committed key the first time."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    home = cache_dir / "gnupg"
    public = cache_dir / PUBLIC_KEY_NAME
    with file_lock(cache_dir / ".key.lock"):
        home.mkdir(mode=0o700, exist_ok=True)
        with _gpg(home) as gpg:
            if FINGERPRINT not in {k["fingerprint"] for k in gpg.list_keys(secret=True)}:
                result = gpg.import_keys(SECRET_KEY.read_text())
                if FINGERPRINT not in (result.fingerprints or []):
                    raise SigningError(f"gpg could not import the test key: {result.stderr}")
            exported = gpg.export_keys(FINGERPRINT)
        if "BEGIN PGP PUBLIC KEY BLOCK" not in exported:
            raise SigningError("gpg could not export the test key")
        if not public.exists() or public.read_text() != exported:
            atomic_write(public, exported)
    return FINGERPRINT, public


def digests_text(tarball: Path) -> str:
    """A catalyst-style .DIGESTS: `# BLAKE2B HASH` / `# SHA512 HASH` blocks naming the tarball."""
    b2, sha = hashlib.blake2b(), hashlib.sha512()
    with open(tarball, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            b2.update(chunk)
            sha.update(chunk)
    return (
        f"# BLAKE2B HASH\n{b2.hexdigest()}  {tarball.name}\n"
        f"# SHA512 HASH\n{sha.hexdigest()}  {tarball.name}\n"
    )


def sign_release(cache_dir: Path, tarball: Path) -> tuple[Path, Path]:
    """Write `<tarball>.DIGESTS` and a detached armored `<tarball>.asc` beside the tarball."""
    fingerprint, _public = ensure_key(cache_dir)
    digests = tarball.with_name(tarball.name + ".DIGESTS")
    atomic_write(digests, digests_text(tarball))
    with _gpg(cache_dir / "gnupg") as gpg, open(tarball, "rb") as handle:
        sig = gpg.sign_file(handle, keyid=fingerprint, detach=True, binary=False)
    if not sig.data:
        raise SigningError(f"gpg could not sign {tarball.name}: {sig.stderr}")
    asc = tarball.with_name(tarball.name + ".asc")
    atomic_write(asc, sig.data)
    return digests, asc
