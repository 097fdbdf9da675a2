"""`docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]` references (skopeo's form), parsed into values."""

from __future__ import annotations

import dataclasses
import re

from chrootforge.errors import UsageError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?\Z")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_FORM = "docker://HOST[:PORT]/REPO[:TAG] or docker://HOST[:PORT]/REPO@sha256:HEX"
_REPO_FORM = "docker://HOST[:PORT]/REPO"


@dataclasses.dataclass(frozen=True)
class RemoteRef:
    """An image in a registry: exactly one of `tag` and `digest` is set."""

    registry: str  # HOST[:PORT], as used for certs.d and auth files
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What follows /manifests/ in the API."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """HOST[:PORT]/REPO:TAG (or @DIGEST), the form podman and skopeo print."""
        sep = "@" if self.digest else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"

    def __str__(self) -> str:
        return f"docker://{self.name}"

    def with_reference(self, tag: str | None = None, digest: str | None = None) -> RemoteRef:
        return dataclasses.replace(self, tag=tag, digest=digest)


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def _is_host(text: str) -> bool:
    """Docker's rule for a reference's first component: a host has a '.' or a port, or is
    localhost (so `alpine` and `library/alpine` name images on no host)."""
    return "." in text or ":" in text or text == "localhost"


def _no_host(text: str, image: str, repository_only: bool) -> UsageError:
    """`image` (what follows docker://) names no registry: say so, and where it might live."""
    image = image.rstrip("/")
    if repository_only:  # a repository of one's own registry (a remote cache)
        return UsageError(
            f"{text!r} names no registry host: {image!r} is only a repository name",
            hint=f"write docker://HOST[:PORT]/{image}",
        )
    hub = image if "/" in image.split("@")[0].rsplit(":", 1)[0] else f"library/{image}"
    return UsageError(
        f"{text!r} names no registry host: {image!r} is only an image name",
        hint=f"write docker://HOST[:PORT]/{image} for the registry that holds it, or "
        f"docker://docker.io/{hub} for Docker Hub",
    )


def parse_ref(text: str, default_tag: str | None = "latest", repository_only: bool = False) -> RemoteRef:
    """Parse a docker:// reference; a missing tag becomes `default_tag` (None: left unset).
    `repository_only`: a repository is asked for (a remote cache): hints show no tag."""
    if isinstance(text, RemoteRef):
        return text
    form = _REPO_FORM if repository_only else _FORM
    if not text.startswith("docker://"):
        raise UsageError(f"{text!r} is not a registry reference", hint=f"write {form}")
    rest = text[len("docker://") :]
    host, sep, path = rest.partition("/")
    if not sep or not path:
        if not host:
            raise UsageError(f"{text!r} names no registry and no repository", hint=f"write {form}")
        bare = host.split("@")[0].split(":")[0]  # alpine:3, alpine@sha256:... are image names
        if not ("." in bare or bare == "localhost" or host.startswith("[")):
            raise _no_host(text, host, repository_only)
        raise UsageError(
            f"{text!r} names no repository on {host}", hint=f"write {form}, e.g. docker://{host}/team/app"
        )
    if "@" in host or not _HOST_RE.match(host):
        raise UsageError(
            f"{text!r}: {host!r} is not a registry HOST[:PORT]",
            hint="credentials go in --creds or an auth file, never in the reference",
        )
    if not _is_host(host):
        raise _no_host(text, rest, repository_only)
    digest = tag = None
    if "@" in path:
        path, _, digest = path.partition("@")
        if not is_digest(digest):
            raise UsageError(f"{text!r}: {digest!r} is not a sha256 digest", hint="write @sha256:<64 hex>")
    slash, colon = path.rfind("/"), path.rfind(":")
    if colon > slash:
        path, tag = path[:colon], path[colon + 1 :]
        if digest:
            raise UsageError(f"{text!r} has both a tag and a digest", hint="give one of them")
        if not _TAG_RE.match(tag):
            raise UsageError(f"{text!r}: invalid tag {tag!r}", hint="a tag is up to 128 of [A-Za-z0-9_.-]")
    if not _REPO_RE.match(path) or len(path) > 255:
        raise UsageError(
            f"{text!r}: invalid repository {path!r}", hint="lowercase [a-z0-9._-] components separated by '/'"
        )
    if digest is None and tag is None:
        tag = default_tag
    return RemoteRef(host, path, tag, digest)
