"""RegistryOptions: how to reach a registry (auth, TLS, timeouts), from flags or from Python.

Light on purpose: the CLI modules import it while building the parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os

from chrootforge.errors import UsageError

ENV_TIMEOUT = "CHROOTFORGE_REGISTRY_TIMEOUT"
ENV_RETRIES = "CHROOTFORGE_REGISTRY_RETRIES"
ENV_CHUNK = "CHROOTFORGE_REGISTRY_CHUNK_SIZE"
ENV_MIN_RATE = "CHROOTFORGE_REGISTRY_MIN_RATE"  # bytes/s every transfer must keep (pace.py)
ENV_CERTS_D = "CHROOTFORGE_CERTS_D"  # replaces the certs.d base directories (os.pathsep-separated)


def _env_number(name: str, default: float, kind=float, minimum: float = 0) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError as err:
        raise UsageError(f"${name}={text!r} is not a number") from err
    if not math.isfinite(value):
        raise UsageError(f"${name}={text!r} is not a finite number")
    if value < minimum:
        raise UsageError(f"${name} must be at least {minimum}")
    return value


@dataclasses.dataclass(frozen=True)
class RegistryOptions:
    """Auth: `creds` ("USER:PASS") wins over `authfile`, which wins over the default auth files.
    TLS: `cert_dir` (ca.crt, *.cert/*.key) wins over certs.d; `tls_verify=False` also allows plain
    HTTP. `timeout` is per network operation (connect, or silence while reading) in seconds, and
    the window over which a request attempt must move at least `min_rate` bytes per second (so a
    request that moves little ends after `timeout` seconds overall; 0 turns the floor off);
    `retries` is how often a failed request is tried again; `chunk_size` is where uploads switch
    from one request to chunks; `jobs` is how many blobs move at once."""

    authfile: str | None = None
    creds: str | None = dataclasses.field(default=None, repr=False)
    cert_dir: str | None = None
    tls_verify: bool = True
    timeout: float = dataclasses.field(default_factory=lambda: _env_number(ENV_TIMEOUT, 60.0, float, 0.1))
    retries: int = dataclasses.field(default_factory=lambda: int(_env_number(ENV_RETRIES, 3, int, 0)))
    min_rate: float = dataclasses.field(default_factory=lambda: _env_number(ENV_MIN_RATE, 1024.0, float, 0))
    chunk_size: int = dataclasses.field(
        default_factory=lambda: int(_env_number(ENV_CHUNK, 16 << 20, int, 64 << 10))
    )
    jobs: int = 4
    quiet: bool = False


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """The auth/TLS/network flags, as skopeo spells them (shared by push, pull and build)."""
    g = parser.add_argument_group("registry access")
    g.add_argument(
        "--authfile",
        metavar="FILE",
        help="auth file (default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, "
        "~/.docker/config.json)",
    )
    g.add_argument("--creds", metavar="USER:PASS", help="credentials for the registry")
    g.add_argument(
        "--cert-dir", metavar="DIR", help="ca.crt and client *.cert/*.key (default: certs.d/HOST:PORT)"
    )
    g.add_argument(
        "--tls-verify",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="verify the registry's certificate (default true; false also allows plain HTTP)",
    )
    g.add_argument(
        "--retry-times",
        type=int,
        default=None,
        metavar="N",
        help=f"retries of a failed request (default 3, or ${ENV_RETRIES})",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"seconds of silence, or of less than ${ENV_MIN_RATE} (default 1024) bytes/s, that "
        f"end a request attempt (default 60, or ${ENV_TIMEOUT})",
    )


def options_from_args(args: argparse.Namespace) -> RegistryOptions:
    """RegistryOptions from the flags that add_registry_options() added."""
    extra = {}
    if args.retry_times is not None:
        if args.retry_times < 0:
            raise UsageError("--retry-times must be 0 or more")
        extra["retries"] = args.retry_times
    if args.timeout is not None:
        if not (math.isfinite(args.timeout) and args.timeout > 0):
            raise UsageError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
        extra["timeout"] = args.timeout
    if args.creds is not None and ":" not in args.creds:
        raise UsageError("--creds must be USER:PASS")
    return RegistryOptions(
        authfile=args.authfile,
        creds=args.creds,
        cert_dir=args.cert_dir,
        tls_verify=args.tls_verify,
        quiet=bool(getattr(args, "quiet", False)),
        **extra,
    )
