"""TLS settings for one registry, the way containers' certs.d works.

The system CAs are always trusted. Extra trust and client certificates come from ONE directory:
`--cert-dir DIR` if given, else the first existing `BASE/HOST[:PORT]/` where BASE is, in order,
~/.config/containers/certs.d (unprivileged users only), /etc/containers/certs.d and
/etc/docker/certs.d ($CHROOTFORGE_CERTS_D, os.pathsep-separated, replaces that list). In the
directory, every `*.crt` is a CA; every `NAME.cert` is a client certificate whose key is `NAME.key`.
`tls_verify=False` turns verification off (and lets the client fall back to plain HTTP).
"""

from __future__ import annotations

import dataclasses
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError, UsageError
from chrootforge.registry.options import ENV_CERTS_D


@dataclasses.dataclass(frozen=True)
class TLSConfig:
    verify: bool
    cert_dir: Path | None
    ca_files: tuple[Path, ...] = ()
    client_cert: tuple[Path, Path] | None = None


def certs_d_bases(env: Mapping[str, str] | None = None, uid: int | None = None) -> list[Path]:
    env = os.environ if env is None else env
    if env.get(ENV_CERTS_D):
        return [Path(p) for p in env[ENV_CERTS_D].split(os.pathsep) if p]
    uid = os.getuid() if uid is None else uid
    out = []
    if uid != 0:
        config = env.get("XDG_CONFIG_HOME") or os.path.join(
            env.get("HOME") or os.path.expanduser("~"), ".config"
        )
        out.append(Path(config) / "containers" / "certs.d")
    return out + [Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d")]


def find_cert_dir(registry: str, cert_dir: str | None, bases: list[Path]) -> Path | None:
    if cert_dir:
        path = Path(cert_dir)
        if not path.is_dir():
            raise UsageError(f"--cert-dir {cert_dir} is not a directory")
        return path
    for base in bases:
        if (base / registry).is_dir():
            return base / registry
    return None


def plan_from_files(verify: bool, cert_dir: Path | None, names: list[str]) -> TLSConfig:
    """Which files of `cert_dir` (listed in `names`) are CAs and client pairs."""
    if cert_dir is None:
        return TLSConfig(verify, None)
    names = sorted(names)
    cas = tuple(cert_dir / n for n in names if n.endswith(".crt"))
    certs = [n for n in names if n.endswith(".cert")]
    keys = [n for n in names if n.endswith(".key")]
    for key in keys:
        if key[:-4] + ".cert" not in certs:
            raise CfError(
                f"{cert_dir / key} has no matching {key[:-4]}.cert",
                hint="a client key NAME.key needs its certificate NAME.cert beside it",
            )
    for cert in certs:
        if cert[:-5] + ".key" not in keys:
            raise CfError(
                f"{cert_dir / cert} has no matching {cert[:-5]}.key",
                hint="a client certificate NAME.cert needs its key NAME.key beside it",
            )
    pairs = [(cert_dir / c, cert_dir / (c[:-5] + ".key")) for c in certs]
    if len(pairs) > 1:
        log.notice(f"{cert_dir} holds {len(pairs)} client certificates; using {pairs[0][0].name}")
    return TLSConfig(verify, cert_dir, cas, pairs[0] if pairs else None)


def tls_config(registry: str, tls_verify: bool = True, cert_dir: str | None = None) -> TLSConfig:
    found = find_cert_dir(registry, cert_dir, certs_d_bases())
    if found is None:
        return TLSConfig(tls_verify, None)
    try:
        names = [p.name for p in found.iterdir() if p.is_file()]
    except OSError as err:
        raise CfError(f"cannot read the certificate directory {found}: {err.strerror}") from err
    return plan_from_files(tls_verify, found, names)


_HASHED = re.compile(r"^[0-9a-f]{8}\.[0-9]+\Z")


def _same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def _load_system_cas(context: ssl.SSLContext) -> None:
    """The system trust store. A hashed CA directory (c_rehash, as Debian's /etc/ssl/certs) is read
    lazily, one issuer at a time: parsing the whole bundle costs more than a small push's network
    work. Without one, or when $SSL_CERT_FILE names a bundle of its own, that bundle is loaded."""
    paths = ssl.get_default_verify_paths()
    hashed = False
    if paths.capath and os.path.isdir(paths.capath):
        with os.scandir(paths.capath) as entries:
            hashed = any(_HASHED.match(e.name) for e in entries)
    if not hashed:
        context.load_default_certs()
        return
    context.load_verify_locations(capath=paths.capath)
    if paths.cafile and not _same_file(paths.cafile, paths.openssl_cafile):
        context.load_verify_locations(cafile=paths.cafile)


def ssl_context(config: TLSConfig) -> ssl.SSLContext:
    """The system CAs plus the directory's; the client certificate if any."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    _load_system_cas(context)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for ca in config.ca_files:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as err:
            raise CfError(
                f"cannot load the CA certificate {ca}: {getattr(err, 'strerror', None) or err}",
                hint="it must be a PEM certificate",
            ) from err
    if config.client_cert:
        cert, key = config.client_cert
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as err:
            raise CfError(
                f"cannot load the client certificate {cert} with {key.name}: "
                f"{getattr(err, 'strerror', None) or err}",
                hint="both must be PEM, and the key must belong to the certificate",
            ) from err
    return context
