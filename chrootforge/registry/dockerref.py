"""Docker references as containers/image normalizes them (pure), for signature identities,
policy.json scopes and registries.d scopes.

`busybox` is `docker.io/library/busybox`, `team/app` is `docker.io/team/app`; a first component
with a dot or a colon (or `localhost`) is a registry host. `scopes(ref)` lists, most specific
first, what a policy.json or registries.d scope may name for an image: HOST/REPO:TAG (or
@DIGEST), HOST/REPO, each parent namespace down to HOST[:PORT], then `*.DOMAIN` wildcards of the
host without its port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?\Z"
)
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_WILDCARD_RE = re.compile(rf"^\*\.{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*\Z")


class BadReference(ValueError):
    pass


@dataclass(frozen=True)
class DockerRef:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def _split_domain(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return "docker.io", text


def parse(text: str, normalize: bool = True) -> DockerRef:
    """A reference; with normalize=False it must already be in the fully expanded form (what
    policy scopes and remapIdentity results need)."""
    if not isinstance(text, str) or not text or len(text) > 512:
        raise BadReference(f"{str(text)[:80]!r} is not a docker reference")
    name, digest = text, None
    if "@" in name:
        name, _, digest = name.partition("@")
        if not _DIGEST_RE.match(digest):
            raise BadReference(f"{text[:80]!r}: {digest[:80]!r} is not a sha256 digest")
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise BadReference(f"{text[:80]!r}: invalid tag {tag[:80]!r}")
    domain, path = _split_domain(name)
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not _DOMAIN_RE.match(domain) or not _PATH_RE.match(path):
        raise BadReference(f"{text[:80]!r} is not a valid docker reference")
    ref = DockerRef(domain, path, tag, digest)
    if not normalize and name != ref.name:
        raise BadReference(f"{text[:80]!r} is not in the fully expanded form ({ref.name})")
    return ref


def scopes(ref: DockerRef) -> list[str]:
    """Policy/registries.d scopes for `ref`, most specific first (the identity itself first)."""
    out = [str(ref)] if not ref.name_only else []
    name = ref.name
    while True:
        out.append(name)
        if "/" not in name:
            break
        name = name.rsplit("/", 1)[0]
    host = name.split(":", 1)[0] if not name.startswith("[") else name
    while "." in host:
        host = host.split(".", 1)[1]
        out.append("*." + host)
    return out


def valid_scope(scope: str) -> bool:
    """Is `scope` a docker transport scope of policy.json: `*.DOMAIN`, or a fully expanded name,
    optionally with a tag or digest?"""
    if _WILDCARD_RE.match(scope):
        return True
    if "/" not in scope:  # a bare HOST[:PORT]
        host = scope.split(":", 1)[0]
        return bool(_DOMAIN_RE.match(scope)) and ("." in host or ":" in scope or host == "localhost")
    try:
        ref = parse(scope, normalize=False)
    except BadReference:
        return False
    return str(ref) == scope
