"""Credentials the way podman and skopeo users keep them.

Order: `--creds USER:PASS`; then `--authfile FILE` alone if given; else the first of
$REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json and ~/.docker/config.json that holds an
entry for the registry. An entry is `auths.KEY.auth` = base64("user:pass") (or `username` +
`password`); KEY is HOST[:PORT], optionally followed by a repository namespace (the most specific
match wins), or a legacy `https://HOST/v1/` URL. No message ever contains a password or token.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from chrootforge import log, untrusted
from chrootforge.errors import CfError, UsageError


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str
    password: str = dataclasses.field(repr=False)
    source: str  # "--creds" or the auth file's path: safe to show


def candidate_files(authfile: str | None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The auth files to consult, in order (an explicit --authfile is the only one)."""
    if authfile:
        return [Path(authfile)]
    env = os.environ if env is None else env
    out = []
    if env.get("REGISTRY_AUTH_FILE"):
        out.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        out.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = env.get("HOME") or os.path.expanduser("~")
    out.append(Path(home) / ".docker" / "config.json")
    return out


def _normalise_key(key: str) -> str:
    """Legacy docker keys are URLs (`https://host/v1/`): only their host counts. Docker Hub's
    names (`https://index.docker.io/v1/` of docker login) all mean docker.io."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :].split("/", 1)[0]
            break
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io" + sep + rest
    return key


def _lookup_keys(registry: str, repository: str) -> list[str]:
    """host/a/b/c, host/a/b, host/a, host: most specific first."""
    parts = repository.split("/")
    return [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + [registry]


def _decode_entry(entry, path: Path, key: str) -> tuple[str, str] | None:
    bad = CfError(
        f"{path}: the entry for {key!r} is malformed", hint='an entry is {"auth": base64("USER:PASS")}'
    )
    if not isinstance(entry, dict):
        raise bad
    if entry.get("auth"):
        try:
            text = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError) as err:
            raise bad from err
        user, sep, password = text.partition(":")
        if not sep or not user:
            raise bad
        return user, password
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return entry["username"], entry["password"]
    return None


def _read(path: Path, explicit: bool) -> dict | None:
    try:
        data = untrusted.read_json(path, f"the auth file {path}")
    except FileNotFoundError as err:
        if explicit:
            raise UsageError(f"--authfile {path} does not exist") from err
        return None
    except PermissionError as err:
        raise CfError(f"cannot read the auth file {path}: permission denied") from err
    except OSError as err:
        raise CfError(f"cannot read the auth file {path}: {err.strerror}") from err
    except untrusted.BadDocument as err:
        # json's message gives a position only, never the content
        raise CfError(
            str(err), hint="fix or remove it; podman login and docker login write this format"
        ) from err
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise CfError(f'the auth file {path} has no valid "auths" object')
    return data


def from_file(path: Path, registry: str, repository: str, explicit: bool = False) -> Credentials | None:
    data = _read(path, explicit)
    if data is None:
        return None
    auths = {_normalise_key(k): v for k, v in data.get("auths", {}).items()}
    for key in _lookup_keys(_normalise_key(registry), repository):
        if key in auths:
            found = _decode_entry(auths[key], path, key)
            if found:
                return Credentials(found[0], found[1], str(path))
    helpers = data.get("credHelpers") or {}
    if registry in helpers or data.get("credsStore"):
        log.notice(
            f"{path} names a credential helper for {registry}; chrootforge does not run "
            f"credential helpers (use --creds or an auths entry)"
        )
    return None


def find_credentials(
    registry: str,
    repository: str,
    creds: str | None = None,
    authfile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials for registry/repository, or None (anonymous)."""
    if creds is not None:
        user, sep, password = creds.partition(":")
        if not sep or not user:
            raise UsageError("--creds must be USER:PASS")
        return Credentials(user, password, "--creds")
    for path in candidate_files(authfile, env):
        found = from_file(path, registry, repository, explicit=bool(authfile))
        if found:
            return found
    return None
