"""The test release key, and a stage3's .DIGESTS and detached .asc made with it.

The key is made once per cache dir in a private GNUPGHOME (`<cache>/gnupg`), shaped like Gentoo's
release-engineering key (a certify-only ed25519 primary with a signing subkey). Its public half is
exported to `<cache>/world-test-key.asc`, which is what a test passes as `--keyring`.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from pathlib import Path

from chrootforge.fsutil import atomic_write, file_lock

KEY_UID = ("chrootforge test world release key", "world-releng@chrootforge.invalid")
PUBLIC_KEY_NAME = "world-test-key.asc"


class SigningError(RuntimeError):
    pass


@contextlib.contextmanager
def _gpg(home: Path):
    """A GPG for `home`; making and using a secret key needs an agent, stopped again on exit."""
    import gnupg

    try:
        yield gnupg.GPG(gnupghome=str(home))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       check=False, capture_output=True)


def ensure_key(cache_dir: Path) -> tuple[str, Path]:
    """(fingerprint, public key file), generating the key the first time."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    home = cache_dir / "gnupg"
    public = cache_dir / PUBLIC_KEY_NAME
    with file_lock(cache_dir / ".key.lock"):
        home.mkdir(mode=0o700, exist_ok=True)
        with _gpg(home) as gpg:
            fingerprint, exported = _make_or_export(gpg)
        if not public.exists() or public.read_text() != exported:
            atomic_write(public, exported)
    return fingerprint, public


def _make_or_export(gpg) -> tuple[str, str]:
    keys = gpg.list_keys(secret=True)
    if not keys:
        params = gpg.gen_key_input(
            name_real=KEY_UID[0], name_email=KEY_UID[1], key_type="EDDSA", key_curve="ed25519",
            key_usage="cert", subkey_type="EDDSA", subkey_curve="ed25519", subkey_usage="sign",
            expire_date=0, no_protection=True)
        made = gpg.gen_key(params)
        if not made.fingerprint:
            raise SigningError(f"gpg could not make the test key: {made.stderr}")
        keys = gpg.list_keys(secret=True)
    fingerprint = keys[0]["fingerprint"]
    exported = gpg.export_keys(fingerprint)
    if "BEGIN PGP PUBLIC KEY BLOCK" not in exported:
        raise SigningError("gpg could not export the test key")
    return fingerprint, exported


def digests_text(tarball: Path) -> str:
    """A catalyst-style .DIGESTS: `# BLAKE2B HASH` / `# SHA512 HASH` blocks naming the tarball."""
    b2, sha = hashlib.blake2b(), hashlib.sha512()
    with open(tarball, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            b2.update(chunk)
            sha.update(chunk)
    return (f"# BLAKE2B HASH\n{b2.hexdigest()}  {tarball.name}\n"
            f"# SHA512 HASH\n{sha.hexdigest()}  {tarball.name}\n")


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
