"""Parse a containers-policy.json(5) file as strictly as containers/image 5.23 (podman 4.3,
skopeo 1.9): unknown keys, duplicate keys, wrong types, an empty requirement list or a missing
`default` refuse the whole file, with its name and the JSON path of the problem.

Requirements: insecureAcceptAnything, reject, signedBy (keyType GPGKeys, SignedByGPGKeys,
X509Certificates or SignedByX509CAs, exactly one of keyPath, keyPaths, keyData; only GPGKeys is
implemented, the others refuse every image, as in containers/image), sigstoreSigned (exactly one
of keyPath, keyData), signedBaseLayer (parsed; refuses every image). `signedIdentity` defaults to
matchRepoDigestOrExact. Key files are read when a requirement is evaluated.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

from chrootforge import log, untrusted
from chrootforge.errors import UsageError
from chrootforge.registry import dockerref
from chrootforge.registry.dockerref import BadReference
from chrootforge.registry.policy.identity import KINDS, IdentityMatch, valid_prefix

SYSTEM_POLICY = Path("/etc/containers/policy.json")
KEY_TYPES = ("GPGKeys", "SignedByGPGKeys", "X509Certificates", "SignedByX509CAs")
MAX_POLICY = 4 << 20


@dataclass(frozen=True)
class Requirement:
    kind: str
    key_type: str = ""
    key_paths: tuple[str, ...] = ()
    key_data: bytes | None = field(default=None, repr=False)
    identity: IdentityMatch = field(default_factory=IdentityMatch)


@dataclass(frozen=True)
class Policy:
    source: str
    default: tuple[Requirement, ...]
    transports: dict[str, dict[str, tuple[Requirement, ...]]]

    def for_docker(self, ref: dockerref.DockerRef) -> tuple[str, tuple[Requirement, ...]]:
        """(the scope that applies, its requirements): the most specific `docker` scope, then the
        transport's "" scope, then `default`."""
        scopes = self.transports.get("docker")
        if scopes:
            for scope in dockerref.scopes(ref):
                if scope in scopes:
                    return f'transports.docker["{scope}"]', scopes[scope]
            if "" in scopes:
                return 'transports.docker[""]', scopes[""]
        return "default", self.default


class PolicyError(UsageError):
    pass


class _Doc:
    """A JSON document parsed without losing duplicate keys, and the file name for messages."""

    def __init__(self, source: str):
        self.source = source

    def error(self, path: str, message: str) -> PolicyError:
        return PolicyError(
            f"policy {self.source}: {path}: {message}",
            hint="containers-policy.json(5) describes the format; podman and skopeo refuse it too",
        )

    def obj(
        self, value, path: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict:
        if not isinstance(value, dict):
            raise self.error(path, "must be a JSON object")
        for key in value:
            if key not in allowed:
                raise self.error(path, f"unknown key {key[:60]!r}" + _did_you_mean(key, allowed))
        for key in sorted(required):
            if key not in value:
                raise self.error(path, f"{key!r} is missing")
        return value

    def string(self, value, path: str) -> str:
        if not isinstance(value, str):
            raise self.error(path, "must be a string")
        return value


def _did_you_mean(key: str, allowed: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key[:60]!r} appears twice")
        out[key] = value
    return out


def parse(data: bytes, source: str) -> Policy:
    doc = _Doc(source)
    try:
        top = untrusted.loads_json(data, f"policy {source}", pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as err:
        raise PolicyError(f"policy {source}: not valid JSON: {str(err)[:120]}") from err
    doc.obj(top, "the top level", {"default", "transports"}, {"default"})
    default = _requirements(doc, top["default"], "default")
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    raw_transports = top.get("transports", {})
    if not isinstance(raw_transports, dict):
        raise doc.error("transports", "must be a JSON object")
    for transport, scopes in raw_transports.items():
        if not isinstance(scopes, dict):
            raise doc.error(f"transports.{transport}", "must be a JSON object of scopes")
        transports[transport] = {}
        for scope, reqs in scopes.items():
            path = f'transports.{transport}["{scope}"]'
            if transport == "docker" and scope and not dockerref.valid_scope(scope):
                log.notice(
                    f"policy {source}: {path} can never match an image (write HOST/REPO, HOST or *.DOMAIN)"
                )
            transports[transport][scope] = _requirements(doc, reqs, path)
    return Policy(source, default, transports)


def _requirements(doc: _Doc, value, path: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list):
        raise doc.error(path, "must be a list of requirements")
    if not value:
        raise doc.error(path, "the list of requirements must not be empty")
    return tuple(_requirement(doc, item, f"{path}[{i}]") for i, item in enumerate(value))


def _key_data(doc: _Doc, value, path: str) -> bytes:
    text = doc.string(value, f"{path}.keyData")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise doc.error(f"{path}.keyData", "is not base64") from err


def _requirement(doc: _Doc, value, path: str) -> Requirement:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise doc.error(path, "a requirement must be an object with a string `type`")
    kind = value["type"]
    if kind in ("insecureAcceptAnything", "reject"):
        doc.obj(value, path, {"type"})
        return Requirement(kind)
    if kind == "signedBaseLayer":
        doc.obj(value, path, {"type", "baseLayerIdentity"}, {"baseLayerIdentity"})
        return Requirement(
            kind, identity=_identity(doc, value["baseLayerIdentity"], f"{path}.baseLayerIdentity")
        )
    if kind == "signedBy":
        doc.obj(value, path, {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"})
        key_type = value.get("keyType")
        if key_type not in KEY_TYPES:
            raise doc.error(f"{path}.keyType", f"must be one of {', '.join(KEY_TYPES)}")
        sources = [k for k in ("keyPath", "keyPaths", "keyData") if k in value]
        if len(sources) != 1:
            raise doc.error(path, "exactly one of keyPath, keyPaths and keyData must be given")
        paths: tuple[str, ...] = ()
        data = None
        if "keyPath" in value:
            paths = (doc.string(value["keyPath"], f"{path}.keyPath"),)
        elif "keyPaths" in value:
            if not isinstance(value["keyPaths"], list) or not value["keyPaths"]:
                raise doc.error(f"{path}.keyPaths", "must be a non-empty list of paths")
            paths = tuple(doc.string(p, f"{path}.keyPaths[{i}]") for i, p in enumerate(value["keyPaths"]))
        else:
            data = _key_data(doc, value["keyData"], path)
        identity = (
            _identity(doc, value["signedIdentity"], f"{path}.signedIdentity")
            if "signedIdentity" in value
            else IdentityMatch()
        )
        return Requirement(kind, key_type, paths, data, identity)
    if kind == "sigstoreSigned":
        doc.obj(value, path, {"type", "keyPath", "keyData", "signedIdentity"})
        sources = [k for k in ("keyPath", "keyData") if k in value]
        if len(sources) != 1:
            raise doc.error(path, "exactly one of keyPath and keyData must be given")
        paths = (doc.string(value["keyPath"], f"{path}.keyPath"),) if "keyPath" in value else ()
        data = _key_data(doc, value["keyData"], path) if "keyData" in value else None
        identity = (
            _identity(doc, value["signedIdentity"], f"{path}.signedIdentity")
            if "signedIdentity" in value
            else IdentityMatch()
        )
        return Requirement(kind, "", paths, data, identity)
    raise doc.error(
        f"{path}.type",
        f"unknown requirement type {kind[:60]!r}"
        + _did_you_mean(
            kind, {"insecureAcceptAnything", "reject", "signedBy", "sigstoreSigned", "signedBaseLayer"}
        ),
    )


def _identity(doc: _Doc, value, path: str) -> IdentityMatch:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise doc.error(path, "must be an object with a string `type`")
    kind = value["type"]
    if kind not in KINDS:
        raise doc.error(
            f"{path}.type", f"unknown identity match {kind[:60]!r}" + _did_you_mean(kind, set(KINDS))
        )
    if kind in ("matchExact", "matchRepoDigestOrExact", "matchRepository"):
        doc.obj(value, path, {"type"})
        return IdentityMatch(kind)
    if kind == "exactReference":
        doc.obj(value, path, {"type", "dockerReference"}, {"dockerReference"})
        text = doc.string(value["dockerReference"], f"{path}.dockerReference")
        try:
            ref = dockerref.parse(text)
        except BadReference as err:
            raise doc.error(f"{path}.dockerReference", str(err)) from err
        if ref.name_only:
            raise doc.error(f"{path}.dockerReference", f"{text!r} has neither a tag nor a digest")
        return IdentityMatch(kind, reference=text)
    if kind == "exactRepository":
        doc.obj(value, path, {"type", "dockerRepository"}, {"dockerRepository"})
        text = doc.string(value["dockerRepository"], f"{path}.dockerRepository")
        try:
            dockerref.parse(text)
        except BadReference as err:
            raise doc.error(f"{path}.dockerRepository", str(err)) from err
        return IdentityMatch(kind, repository=text)
    doc.obj(value, path, {"type", "prefix", "signedPrefix"}, {"prefix", "signedPrefix"})
    prefix = doc.string(value["prefix"], f"{path}.prefix")
    signed = doc.string(value["signedPrefix"], f"{path}.signedPrefix")
    for name, text in (("prefix", prefix), ("signedPrefix", signed)):
        if not valid_prefix(text):
            raise doc.error(
                f"{path}.{name}", f"{text[:80]!r} is not a HOST[:PORT] or a fully expanded repository"
            )
    return IdentityMatch(kind, prefix=prefix, signed_prefix=signed)


def default_path() -> Path | None:
    """~/.config/containers/policy.json when it exists, else /etc/containers/policy.json when it
    exists (skopeo's and podman's order), else None."""
    user = Path(os.path.expanduser("~")) / ".config" / "containers" / "policy.json"
    for path in (user, SYSTEM_POLICY):
        if path.exists():
            return path
    return None


def load(path: str | os.PathLike | None = None) -> Policy | None:
    """The policy of --policy PATH (which must exist), else of default_path(), else None."""
    from chrootforge.fsutil import read_regular

    chosen = Path(path) if path is not None else default_path()
    if chosen is None:
        return None
    try:
        data = read_regular(chosen, MAX_POLICY)
    except FileNotFoundError as err:
        raise PolicyError(f"policy {chosen} does not exist") from err
    except OSError as err:
        raise PolicyError(f"cannot read the policy {chosen}: {err.strerror or err}") from err
    return parse(data, str(chosen))
