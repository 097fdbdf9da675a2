"""Evaluate a policy for an image in a registry, before anything of it is downloaded.

Every requirement of the scope that applies must hold. signedBy needs one simple signature (from
the lookaside store of registries.d) that (1) is an OpenPGP signed message by one of the
requirement's keys, (2) carries a well-formed claim of type `atomic container signature`,
(3) names the manifest digest being pulled and (4) an identity that `signedIdentity` accepts.
sigstoreSigned needs one attachment of the sha256-<hex>.sig tag (read only where registries.d
says use-sigstore-attachments) whose payload the requirement's public key verified, then (2)-(4)
with type `cosign container image signature`. The payload is parsed only after its signature
verified. The pull then fetches the image by that digest, so what is stored is what was verified.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from chrootforge.errors import VerificationError
from chrootforge.imageref import RemoteRef
from chrootforge.registry import dockerref
from chrootforge.registry.policy.identity import matches
from chrootforge.registry.policy.policyfile import Policy, PolicyError, Requirement
from chrootforge.registry.signing import payload as pl


class PolicyRefusal(VerificationError):
    """The policy does not accept the image (the message says which requirement and why)."""


def _read_key(path: str, what: str) -> bytes:
    from chrootforge.fsutil import read_regular

    try:
        return read_regular(path, 1 << 20)
    except FileNotFoundError as err:
        raise PolicyError(f"{what}: the key file {path} does not exist") from err
    except OSError as err:
        raise PolicyError(f"{what}: cannot read the key file {path}: {err.strerror or err}") from err


class _Signatures:
    """The image's signatures, fetched once, when a requirement first needs them."""

    def __init__(self, ref: RemoteRef, digest: str, options, registries):
        self.ref, self.digest, self.options, self.registries = ref, digest, options, registries
        self.dref = dockerref.parse(ref.name)
        self._simple: list[tuple[str, bytes]] | None = None
        self._sigstore: list[tuple[str, bytes, dict]] | None = None

    def simple(self) -> list[tuple[str, bytes]]:
        if self._simple is None:
            from urllib.parse import urlparse

            from chrootforge.registry.signing import lookaside
            from chrootforge.registry.transport import tls_session

            base = self.registries.lookaside(self.dref, write=False)
            session = None
            if urlparse(base).scheme in ("http", "https"):
                session = tls_session(urlparse(base).netloc, self.options)
            try:
                self._simple = lookaside.read(base, self.digest, session)
            finally:
                if session is not None:
                    session.close()
        return self._simple

    def sigstore(self) -> list[tuple[str, bytes, dict]]:
        if self._sigstore is None:
            if not self.registries.use_attachments(self.dref):
                self._sigstore = []
            else:
                from chrootforge.registry.signing import attachments
                from chrootforge.registry.transport import Client

                client = Client(self.ref.registry, self.ref.repository, self.options)
                try:
                    self._sigstore = attachments.read(client, self.digest)
                finally:
                    client.close()
        return self._sigstore


def _claim_ok(claim: pl.Claim, digest: str, intended, req: Requirement) -> str | None:
    if claim.manifest_digest != digest:
        return f"it is a signature of {claim.manifest_digest[:19]}, not of {digest[:19]}"
    if not matches(req.identity, intended, claim.docker_reference):
        rule = req.identity.describe()
        return f"it signs the identity {claim.docker_reference[:120]}, which {rule} does not accept"
    return None


class _Unverified(Exception):
    """A signature whose cryptographic check failed (the message says how)."""


def _first_accepted(verified_payloads, kind: str, sigs: _Signatures, req: Requirement) -> str | None:
    """None when one of the signatures is accepted, else why none was. Each item of
    `verified_payloads` returns the payload its signature verified, or raises _Unverified; only
    then is the payload parsed (containers-signature(5))."""
    reasons = []
    for verified in verified_payloads:
        try:
            claim = pl.parse(verified(), kind)
        except _Unverified as err:
            reasons.append(str(err))
            continue
        except pl.BadPayload as err:
            reasons.append(f"a malformed signed claim ({err})")
            continue
        problem = _claim_ok(claim, sigs.digest, sigs.dref, req)
        if problem is None:
            return None
        reasons.append(problem)
    return _summary(reasons)


def _signed_by(req: Requirement, sigs: _Signatures, where: str) -> str | None:
    """None when a simple signature satisfies `req`, else why not."""
    from chrootforge.registry.signing import openpgp

    if req.key_type != "GPGKeys":
        return f'keyType "{req.key_type}" is not implemented (as in podman): nothing is accepted'
    keyrings = [req.key_data] if req.key_data is not None else [_read_key(p, where) for p in req.key_paths]
    found = sigs.simple()
    if not found:
        return "a signature was required, but the lookaside store has none"

    def check(url: str, blob: bytes):
        def verified() -> bytes:
            try:
                return openpgp.verify(blob, keyrings, url)[0]
            except VerificationError as err:
                raise _Unverified(str(err).removeprefix(f"{url}: ")) from err

        return verified

    return _first_accepted([check(url, blob) for url, blob in found], pl.SIMPLE_TYPE, sigs, req)


def _sigstore_signed(req: Requirement, sigs: _Signatures, where: str) -> str | None:
    from chrootforge.registry.signing import attachments, keys

    data = req.key_data if req.key_data is not None else _read_key(req.key_paths[0], where)
    public_key = keys.load_public_key(data, f"{where}: the sigstore public key")
    if not sigs.registries.use_attachments(sigs.dref):
        return (
            "a sigstore signature was required, but registries.d does not enable "
            f"use-sigstore-attachments for {sigs.dref.name} (in {sigs.registries.directory})"
        )
    candidates = [s for s in sigs.sigstore() if s[0] == attachments.SIMPLESIGNING_TYPE]
    if not candidates:
        return "a signature was required, but the registry holds no sigstore signature of this digest"

    def check(payload: bytes, notes: dict):
        def verified() -> bytes:
            encoded = notes.get(attachments.SIGNATURE_ANNOTATION)
            if not isinstance(encoded, str):
                raise _Unverified(f"a signature without the {attachments.SIGNATURE_ANNOTATION} annotation")
            try:
                signature = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as err:
                raise _Unverified("a signature annotation that is not base64") from err
            if not keys.verify(public_key, signature, payload):
                raise _Unverified("a signature the policy's key does not verify (another key, or altered)")
            return payload

        return verified

    return _first_accepted([check(p, n) for _, p, n in candidates], pl.SIGSTORE_TYPE, sigs, req)


def _summary(reasons: list[str]) -> str:
    if len(reasons) == 1:
        return f"the signature was refused: {reasons[0]}"
    shown = "; ".join(dict.fromkeys(reasons))
    return f"none of the {len(reasons)} signatures was accepted: {shown}"


def needs_signatures(policy: Policy | None, ref: RemoteRef) -> bool:
    if policy is None:
        return False
    _, reqs = policy.for_docker(dockerref.parse(ref.name))
    return any(r.kind != "insecureAcceptAnything" for r in reqs)


def admit(
    ref: RemoteRef,
    options,
    policy: Policy | None,
    registries_dir: str | Path | None = None,
    digest: str | None = None,
) -> RemoteRef:
    """See the package docstring; `digest` is the manifest digest of `ref` when the caller knows it."""
    if policy is None or not needs_signatures(policy, ref):
        return ref
    from chrootforge.registry.image_pull import remote_digest
    from chrootforge.registry.signing import registries_d

    scope, reqs = policy.for_docker(dockerref.parse(ref.name))
    where = f"policy {policy.source} {scope}"
    for req in reqs:
        if req.kind == "reject":
            raise PolicyRefusal(
                f"{ref.name} is refused: {where} rejects it", hint="the policy allows no image there"
            )
    digest = ref.digest or digest or remote_digest(ref, options)
    if digest is None:
        from chrootforge.registry.transport import RegistryError

        raise RegistryError(f"{ref.name} does not exist", hint="check the repository and tag")
    sigs = _Signatures(ref, digest, options, registries_d.load(registries_dir))
    for i, req in enumerate(reqs):
        if req.kind == "insecureAcceptAnything":
            continue
        what = f"{where}[{i}] {req.kind}"
        if req.kind == "signedBy":
            problem = _signed_by(req, sigs, what)
        elif req.kind == "sigstoreSigned":
            problem = _sigstore_signed(req, sigs, what)
        else:
            problem = f"{req.kind} is not implemented (as in podman): nothing is accepted"
        if problem is not None:
            raise PolicyRefusal(
                f"{ref.name} ({digest[:19]}) is refused by {what}: {problem}",
                hint="nothing was stored; sign the image (push --sign-by / --sign-by-sigstore-private-key) "
                "or change the policy",
            )
    return ref.with_reference(digest=digest)
