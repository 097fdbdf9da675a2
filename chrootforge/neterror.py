"""A failed network request in a few words: which host, and why (DNS, refused, timeout, TLS, ...).

requests and urllib3 wrap the cause several levels deep ("HTTPSConnectionPool(host=..., port=443):
Max retries exceeded with url: ... (Caused by NameResolutionError(...))"), which says the same
thing in 300 characters. `cause(err)` walks that chain to the first thing that names the reason.
"""

from __future__ import annotations

import errno
import socket
import ssl
from urllib.parse import urlsplit

_MAX_DEPTH = 12  # the chains are 3 to 5 deep; a cycle (__context__) must not loop


def host(url: str) -> str:
    """HOST[:PORT] of a URL, or the URL when it has none."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1] or url
    except ValueError:
        return url


def _chain(err: BaseException):
    seen: set[int] = set()
    todo = [err]
    while todo and len(seen) < _MAX_DEPTH:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__]
        linked += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [e for e in linked if isinstance(e, BaseException)]


def cause(err: BaseException) -> str:
    """Why the request failed, in a few words."""
    chain = list(_chain(err))
    names = {type(e).__name__ for e in chain}
    for e in chain:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return "cannot resolve the host name (DNS)"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS: the certificate is not trusted ({e.verify_message})"
        if isinstance(e, ssl.SSLError):
            return f"TLS failed ({e.reason or e.strerror or 'handshake'})"
    for e in chain:
        if type(e).__name__ == "TooSlow":  # registry/pace.py's rate floor: its own words say it
            return str(e)
    if names & {"ConnectTimeoutError", "ConnectTimeout"}:
        return "timed out connecting"
    if names & {"ReadTimeoutError", "ReadTimeout", "Timeout", "TimeoutError"} or any(
        isinstance(e, TimeoutError) for e in chain
    ):
        return "timed out waiting for data"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(e, OSError) and e.errno == errno.ENETUNREACH:
            return "network unreachable"
        if isinstance(e, OSError) and e.errno == errno.EHOSTUNREACH:
            return "host unreachable"
    if names & {"ProtocolError", "ChunkedEncodingError", "IncompleteRead", "RemoteDisconnected"}:
        return "the connection broke off"
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def describe(url: str, err: BaseException) -> str:
    """'HOST: cause', one short line."""
    return f"{host(url)}: {cause(err)}"
