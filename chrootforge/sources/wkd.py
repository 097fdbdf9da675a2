"""Gentoo's pinned keys from its Web Key Directory (draft-koch-openpgp-webkey-service), cached.

When neither --keyring nor a well-known keyring file has a pinned key, the verifier asks here:

- the address of each pinned key is fixed (ADDRESSES: releng@gentoo.org for the release key,
  infrastructure@gentoo.org for the snapshot key, as Gentoo's handbook and getuto look them up);
- URLs: the advanced method `https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<h>?l=<local>`
  first, then the direct method `https://<domain>/.well-known/openpgpkey/hu/<h>?l=<local>`, where <h> is
  the z-base-32 encoded SHA-1 of the lower-cased local part. $CHROOTFORGE_WKD_URL replaces the host
  (`<url>/.well-known/openpgpkey/hu/<h>?l=<local>`; https, or http on a loopback address only), or
  turns the lookup off (`off`);
- only the pinned fingerprint is taken from what the server sends: anything else is refused in one
  line. The pinned key alone is exported into <source cache>/keys/<fingerprint>.asc (atomically) and
  reused from there, with no network, until it expires.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import time
from pathlib import Path
from urllib.parse import quote, urlparse

from chrootforge import log
from chrootforge.cache.kinds import confined, kind_root, source_area
from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.fsutil import atomic_write
from chrootforge.sources import download, remedies
from chrootforge.sources.pinned import table_of

# The pinned fingerprints of sources.verify -> the address Gentoo publishes each key under.
ADDRESSES = {
    "13EBBDBEDE7A12775DFDB1BABB572E0E2D182910": "releng@gentoo.org",  # release engineering (stage3)
    "DCD05B71EAB94199527F44ACDB6B8C1F96D8BF6D": "infrastructure@gentoo.org",  # ebuild repository snapshots
}
URL_ENV = "CHROOTFORGE_WKD_URL"
_ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_MANUAL = "docs/sources.md says how to get it on another machine"


def zbase32(data: bytes) -> str:
    """z-base-32 (the draft's encoding of the hashed local part), 5 bits per character."""
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    chars = -(-nbits // 5)
    bits <<= chars * 5 - nbits
    return "".join(_ZBASE32[(bits >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def local_hash(local: str) -> str:
    return zbase32(hashlib.sha1(local.lower().encode()).digest())


def urls(address: str, base: str | None = None) -> list[str]:
    """The URLs to try for `address`, in order (pure)."""
    local, _, domain = address.partition("@")
    tail = f"hu/{local_hash(local)}?l={quote(local, safe='')}"
    if base:
        return [f"{base.rstrip('/')}/.well-known/openpgpkey/{tail}"]
    domain = domain.lower()
    return [
        f"https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/{tail}",
        f"https://{domain}/.well-known/openpgpkey/{tail}",
    ]


def configured_base() -> str | None:
    """$CHROOTFORGE_WKD_URL, checked: None for Gentoo's own hosts, "off" for no lookup."""
    value = os.environ.get(URL_ENV, "").strip()
    if not value or value == "off":
        return value or None
    parsed = urlparse(value)
    host = parsed.hostname or ""
    if parsed.scheme == "https" and host:
        return value
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parsed.scheme == "http" and loopback:
        return value
    raise UsageError(
        f"{URL_ENV}={value}: not an https:// URL (plain http only on a loopback address)",
        hint=f"set {URL_ENV} to an https:// base URL, or to `off`",
    )


def key_file(fingerprint: str) -> Path:
    return confined(source_area(kind_root("sources"), "keys"), f"{fingerprint}.asc", what="key file")


def import_pinned(gpg, pinned) -> set[str]:
    """Import into `gpg` (a python-gnupg GPG) each pinned key Gentoo publishes, cached or fetched.

    Returns the fingerprints now present. A server that sends another key is refused; a WKD that
    cannot be reached is an error naming the manual way to get the key.
    """
    base = configured_base()
    found = set()
    for fingerprint in sorted(fp.upper() for fp in pinned):
        address = ADDRESSES.get(fingerprint)
        if address is None:
            continue
        cached = key_file(fingerprint)
        have = cached.is_file() and fingerprint in _import(gpg, cached.read_bytes())
        if have and not _expired(gpg, fingerprint):
            found.add(fingerprint)
            continue
        if base == "off":
            found.update([fingerprint] if have else [])  # gpg then says the key has expired
            continue
        try:
            _fetch(gpg, fingerprint, address, base, cached)
        except _Unreachable:
            if not have:
                raise
            log.warn(
                f"the cached Gentoo key {fingerprint} has expired and Gentoo's key directory could not "
                "be reached to refresh it: using the expired copy"
            )
        found.add(fingerprint)
    return found


class _Unreachable(VerificationError):
    """No URL of the key directory answered with a key."""


def _import(gpg, data: bytes) -> set[str]:
    return {fp.upper() for fp in (gpg.import_keys(data).fingerprints or []) if fp}


def _expired(gpg, fingerprint: str) -> bool:
    for key in gpg.list_keys():
        if key.get("fingerprint", "").upper() == fingerprint:
            expires = key.get("expires") or ""
            return expires.isdigit() and int(expires) <= time.time()
    return True


def _fetch(gpg, fingerprint: str, address: str, base: str | None, cached: Path) -> None:
    failures: list[CfError] = []
    for url in urls(address, base):
        try:
            data = download.get_small(url, retries=2)
        except (download.NotFound, download.Unavailable) as err:
            failures.append(err)
            continue
        served = _import(gpg, data)
        if fingerprint not in served:
            got = ", ".join(sorted(served)) or "no OpenPGP key"
            raise VerificationError(
                f"{url} served {got} for {address}, not the pinned key {fingerprint}",
                hint="refused: that key directory, or the way to it, cannot be trusted; "
                f"give the Gentoo key with {remedies.keyring(table_of(fingerprint))} ({_MANUAL})",
            )
        exported = gpg.export_keys(fingerprint)  # the pinned key alone, whatever else came with it
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, exported)
        log.notice(f"fetched Gentoo's OpenPGP key {fingerprint} ({address}) from {url}; cached in {cached}")
        return
    raise _Unreachable(
        f"no OpenPGP key to verify the signature (need key {fingerprint}), and Gentoo's "
        f"key directory could not be reached ({download.summarize(failures)})",
        hint=f"{remedies.offline()}; or give the key with {remedies.keyring(table_of(fingerprint))} "
        f"({_MANUAL})",
    )
