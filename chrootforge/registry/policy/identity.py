"""`signedIdentity` of a policy requirement: does the identity a signature claims fit the image?
(pure; containers-policy.json(5) semantics)

- matchExact: the claim equals the image reference (both with a tag or a digest);
- matchRepoDigestOrExact (the default): a tagged image needs the exact claim, an image pulled by
  digest any claim in the same repository;
- matchRepository: the same repository, any tag;
- exactReference / exactRepository: the claim equals a fixed reference / is in a fixed repository;
- remapIdentity: the image's name prefix is replaced by signedPrefix, then matchRepoDigestOrExact.
"""

from __future__ import annotations

from dataclasses import dataclass

from chrootforge.registry import dockerref
from chrootforge.registry.dockerref import BadReference, DockerRef

KINDS = (
    "matchExact",
    "matchRepoDigestOrExact",
    "matchRepository",
    "exactReference",
    "exactRepository",
    "remapIdentity",
)


@dataclass(frozen=True)
class IdentityMatch:
    kind: str = "matchRepoDigestOrExact"
    reference: str = ""  # exactReference
    repository: str = ""  # exactRepository
    prefix: str = ""  # remapIdentity
    signed_prefix: str = ""

    def describe(self) -> str:
        detail = (
            self.reference
            or self.repository
            or (f"{self.prefix} -> {self.signed_prefix}" if self.prefix else "")
        )
        return f"{self.kind}({detail})" if detail else self.kind


def _repo_digest_or_exact(intended: DockerRef, signed: DockerRef) -> bool:
    if signed.name_only:
        return False
    if intended.tag is not None:
        return str(signed) == str(intended)
    if intended.digest is not None:
        return signed.name == intended.name
    return False


def _matches_prefix(name: str, prefix: str) -> bool:
    return name == prefix or (name.startswith(prefix) and name[len(prefix)] == "/")


def matches(rule: IdentityMatch, intended: DockerRef, claimed: str) -> bool:
    """Does a signature claiming `claimed` satisfy `rule` for the image `intended`?"""
    try:
        signed = dockerref.parse(claimed)
    except BadReference:
        return False
    kind = rule.kind
    if kind == "matchExact":
        return not intended.name_only and not signed.name_only and str(signed) == str(intended)
    if kind == "matchRepoDigestOrExact":
        return _repo_digest_or_exact(intended, signed)
    if kind == "matchRepository":
        return signed.name == intended.name
    if kind == "exactReference":
        fixed = dockerref.parse(rule.reference)
        return not signed.name_only and str(signed) == str(fixed)
    if kind == "exactRepository":
        return signed.name == dockerref.parse(rule.repository).name
    if kind == "remapIdentity":
        if _matches_prefix(intended.name, rule.prefix):
            try:
                intended = dockerref.parse(
                    str(intended).replace(rule.prefix, rule.signed_prefix, 1), normalize=False
                )
            except BadReference:
                return False
        return _repo_digest_or_exact(intended, signed)
    return False


def valid_prefix(text: str) -> bool:
    """A remapIdentity prefix: HOST[:PORT], or a fully expanded repository or namespace."""
    if not isinstance(text, str) or not text or "@" in text:
        return False
    if "/" not in text:
        return dockerref.valid_scope(text) and not text.startswith("*")
    try:
        ref = dockerref.parse(text, normalize=False)
    except BadReference:
        return False
    return ref.name_only and ref.name == text
