"""Signing.prepare and push_signed: see the package docstring."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

from chrootforge import log
from chrootforge.errors import UsageError, VerificationError
from chrootforge.registry import dockerref
from chrootforge.registry.signing import payload as pl
from chrootforge.registry.signing.signoptions import SignOptions

TYPE_CHECKING = False  # the key modules (cryptography, gnupg) load only when a key is used
if TYPE_CHECKING:
    from chrootforge.registry.signing.keys import SigstoreSigner
    from chrootforge.registry.signing.openpgp import OpenPGPSigner
    from chrootforge.registry.signing.registries_d import Config

_CHECK = b"chrootforge: checking that the signing key can sign"


def read_passphrase(path: str) -> str:
    """The first line of the passphrase file (podman's rule), without its line ending."""
    from chrootforge.fsutil import read_input

    try:
        data = read_input(path, 64 << 10)  # a pipe (/dev/fd/N) is fine
    except FileNotFoundError as err:
        raise UsageError(f"--sign-passphrase-file {path} does not exist") from err
    except OSError as err:
        raise UsageError(f"cannot read --sign-passphrase-file {path}: {err.strerror or err}") from err
    try:
        return data.decode("utf-8").split("\n", 1)[0].removesuffix("\r")
    except UnicodeDecodeError as err:
        raise UsageError(f"--sign-passphrase-file {path} is not UTF-8 text") from err


@dataclass
class Signing:
    options: SignOptions
    registries: Config
    openpgp: OpenPGPSigner | None = None
    sigstore: SigstoreSigner | None = None
    _openpgp_public: bytes | None = field(default=None, repr=False)

    @classmethod
    def prepare(cls, options: SignOptions | None) -> Signing | None:
        """Find and unlock the keys (a trial signature for OpenPGP); None when nothing signs."""
        if options is None or not options.enabled:
            return None
        from chrootforge.registry.signing import registries_d  # start-up speed: only when signing

        passphrase = read_passphrase(options.passphrase_file) if options.passphrase_file else None
        signing = cls(options, registries_d.load(options.registries_d))
        if options.sigstore_key:
            from chrootforge.registry.signing.keys import load_private_key  # start-up: cryptography

            signing.sigstore = load_private_key(
                options.sigstore_key, passphrase.encode() if passphrase is not None else None
            )
        if options.sign_by:
            from chrootforge.registry.signing.openpgp import OpenPGPSigner  # start-up speed: gnupg

            signer = OpenPGPSigner(options.sign_by, passphrase)
            signer.check()
            signer.sign(_CHECK)  # a wrong or missing passphrase fails here, before any work
            signing.openpgp = signer
        return signing

    @property
    def dsse_signers(self) -> list:
        return [s for s in (self.sigstore, self.openpgp) if s is not None]

    # -- recognizing our own signatures (a re-push adds none) --------------------------------------
    def _is_ours_simple(self, blob: bytes, digest: str, identity: str) -> bool:
        from chrootforge.registry.signing import openpgp  # start-up speed: gnupg

        assert self.openpgp is not None
        if self._openpgp_public is None:
            self._openpgp_public = self.openpgp.public_key()
        try:
            payload, _ = openpgp.verify(blob, [self._openpgp_public], "an existing signature")
            claim = pl.parse(payload, pl.SIMPLE_TYPE)
        except (VerificationError, pl.BadPayload):
            return False
        return claim.manifest_digest == digest and claim.docker_reference == identity

    def _is_ours_sigstore(self, payload: bytes, annotations: dict, digest: str, identity: str) -> bool:
        from chrootforge.registry.signing import attachments, keys  # start-up: cryptography

        encoded = annotations.get(attachments.SIGNATURE_ANNOTATION)
        try:
            signature = base64.b64decode(encoded or "", validate=True)
            claim = pl.parse(payload, pl.SIGSTORE_TYPE)
        except (ValueError, pl.BadPayload):
            return False
        assert self.sigstore is not None
        public = self.sigstore.key.public_key()
        return (
            keys.verify(public, signature, payload)
            and claim.manifest_digest == digest
            and claim.docker_reference == identity
        )

    # -- push ---------------------------------------------------------------------------------------
    def push(self, layout, tag: str, dest, options):
        """Push LAYOUT:TAG to dest, then store its signatures; returns the PushResult."""
        from chrootforge.imageref import parse_ref
        from chrootforge.oci.resolved import resolve
        from chrootforge.registry.image_push import push
        from chrootforge.registry.signing import lookaside

        ref = parse_ref(dest) if isinstance(dest, str) else dest
        digest = resolve(layout, tag).descriptor["digest"]
        identity = ref.name  # HOST/REPO:TAG (or @DIGEST): what the signature claims
        now = int(time.time())
        simple = base = None
        if self.openpgp is not None:  # signed (and the store checked) before anything is pushed
            base = self.registries.lookaside(dockerref.parse(identity), write=True)
            lookaside.check_writable(base)
            simple = self.openpgp.sign(pl.make(pl.SIMPLE_TYPE, digest, identity, now))
        sigstore = None
        if self.sigstore is not None:
            claim = pl.make(pl.SIGSTORE_TYPE, digest, identity, now)
            sigstore = (claim, base64.b64encode(self.sigstore.sign(claim)).decode())
        result = push(layout, tag, ref, options)
        if simple is not None and base is not None:
            self._store_simple(base, digest, identity, simple)
        if sigstore is not None:
            self._store_sigstore(ref, options, digest, identity, *sigstore)
        return result

    def _store_simple(self, base: str, digest: str, identity: str, blob: bytes) -> None:
        from chrootforge.registry.signing import lookaside

        existing = lookaside.read(base, digest)
        if any(self._is_ours_simple(old, digest, identity) for _, old in existing):
            log.info(f"  {identity}: already signed with this OpenPGP key in {base}")
            return
        path = lookaside.write(base, digest, blob)
        log.info(f"  {identity}: OpenPGP signature in {path}")

    def _store_sigstore(self, ref, options, digest: str, identity: str, claim: bytes, signature: str) -> None:
        from chrootforge.registry.signing import attachments
        from chrootforge.registry.transport import Client

        client = Client(ref.registry, ref.repository, options)
        try:
            added = attachments.store(
                client,
                digest,
                claim,
                signature,
                lambda payload, ann: self._is_ours_sigstore(payload, ann, digest, identity),
            )
        finally:
            client.close()
        where = f"{ref.registry}/{ref.repository}:{attachments.tag_of(digest)}"
        log.info(f"  {identity}: sigstore signature {'added to' if added else 'already in'} {where}")


def push_signed(layout, tag: str, dest, options, signing: Signing | None):
    """push(), then the signatures when `signing` is set."""
    if signing is None:
        from chrootforge.registry.image_push import push

        return push(layout, tag, dest, options)
    return signing.push(layout, tag, dest, options)
