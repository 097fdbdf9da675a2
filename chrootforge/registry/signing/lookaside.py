"""Simple signatures in a lookaside store (registries.d(5)): files under a file:// directory, or
read over http(s).

Reading stops at the first missing signature-N, as containers/image does; each signature is at
most MAX_SIGNATURE bytes, and at most MAX_SIGNATURES are read. Writing is to file:// stores only
(as with podman): the first free signature-N, created without replacing anything, so concurrent
pushes never overwrite each other's signatures.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from chrootforge.errors import CfError, UsageError
from chrootforge.registry.signing.registries_d import signature_url

MAX_SIGNATURE = 4 << 20
MAX_SIGNATURES = 64


class LookasideError(CfError):
    """The store cannot be read or written (one line says where)."""


def _file_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise UsageError(f"lookaside {url}: a file:// URL names no host")
    return Path(unquote(parsed.path))


def _scheme(url: str) -> str:
    return urlparse(url).scheme.lower()


def check_writable(base: str) -> Path:
    """The directory signatures of `base` go to, created if missing; one line if it cannot be."""
    if _scheme(base) != "file":
        raise UsageError(
            f"cannot write signatures to the lookaside {base}: only file:// stores can be written",
            hint="set lookaside-staging to a file:// directory in registries.d, and publish it from there",
        )
    path = _file_path(base)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LookasideError(f"cannot create the lookaside directory {path.parent}: {err.strerror}") from err
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise LookasideError(f"the lookaside directory {path.parent} is not writable")
    return path


def read(base: str, digest: str, session=None) -> list[tuple[str, bytes]]:
    """(url, blob) of every signature of `digest` in the store at `base`."""
    out: list[tuple[str, bytes]] = []
    for index in range(MAX_SIGNATURES + 1):
        url = signature_url(base, digest, index)
        blob = _read_one(url, session)
        if blob is None:
            return out
        if index == MAX_SIGNATURES:
            raise LookasideError(f"{url}: more than {MAX_SIGNATURES} signatures; refusing to read on")
        out.append((url, blob))
    return out


def _read_one(url: str, session) -> bytes | None:
    from chrootforge.fsutil import read_regular

    scheme = _scheme(url)
    if scheme == "file":
        path = _file_path(url)
        try:
            return read_regular(path, MAX_SIGNATURE)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise LookasideError(f"cannot read the signature {path}: {err.strerror or err}") from err
    if scheme in ("http", "https"):
        return _fetch(url, session)
    raise UsageError(
        f"lookaside {url}: unsupported URL scheme {scheme!r}", hint="use file://, http:// or https://"
    )


def _fetch(url: str, session) -> bytes | None:
    import requests

    from chrootforge.registry.transport import describe_network_error, read_limited

    host = urlparse(url).netloc
    try:
        resp = session.get(url, stream=True, timeout=(30, 30), allow_redirects=True)
    except requests.RequestException as err:
        raise LookasideError(
            f"the lookaside {host} cannot be reached: {describe_network_error(err, 30)}",
            hint="check the lookaside URL in registries.d and that the server is up",
        ) from err
    if resp.status_code == 404:
        resp.close()
        return None
    if resp.status_code != 200:
        resp.close()
        raise LookasideError(
            f"the lookaside {host} answered HTTP {resp.status_code} for {urlparse(url).path}"
        )
    try:
        return read_limited(resp, MAX_SIGNATURE, f"the signature {url}")
    except (requests.RequestException, CfError) as err:
        raise LookasideError(f"reading {url} failed: {str(err).splitlines()[0]}") from err


def write(base: str, digest: str, blob: bytes) -> str:
    """Store `blob` as the next signature of `digest`; its path (the same one when an identical
    signature is there already)."""
    from chrootforge.fsutil import atomic_write

    check_writable(base)
    for index in range(MAX_SIGNATURES):
        path = _file_path(signature_url(base, digest, index))
        try:
            if path.read_bytes() == blob:
                return str(path)
            continue
        except FileNotFoundError:
            pass
        except OSError as err:
            raise LookasideError(f"cannot read {path}: {err.strerror}") from err
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, blob, replace=False)
            return str(path)
        except FileExistsError:
            continue  # another push took this number meanwhile
        except OSError as err:
            raise LookasideError(f"cannot write the signature {path}: {err.strerror or err}") from err
    raise LookasideError(f"{base}: already {MAX_SIGNATURES} signatures for {digest[:19]}")
