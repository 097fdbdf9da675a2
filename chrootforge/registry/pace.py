"""A floor under every registry transfer, beside the silence timeout.

The silence timeout (--timeout, per socket operation) cannot stop a server that sends one byte a
second. So every request attempt of a registry Client (ping, token, manifest, blob, upload) also
runs under a Pace: its I/O is measured in windows of --timeout seconds, and a window that moves
fewer than MIN_RATE * --timeout bytes (sent plus received) ends the attempt with TooSlow, a
TimeoutError that requests reports as a timeout, retried like one. A response that completes
within one window is never judged, so a small answer is bounded by --timeout overall, and a
large transfer must keep an average of MIN_RATE bytes per second over every window.

The Pace is found by the sockets themselves: the client's SSLContext makes PacedSSLSocket
instances and its plain-HTTP pools PacedSocket ones, whose recv/send consult the Pacer of their
client for the calling thread's current request (Pacer.begin() starts one; a request and the
reading of its body happen in one thread). Sends go out in 16 KiB pieces, so that progress is
seen while a large body is written.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import urllib3

PIECE = 16 << 10  # a TLS record: the unit of progress while sending


class TooSlow(TimeoutError):
    """A window of the transfer moved fewer bytes than the floor."""


class Pace:
    """The windows of one request attempt (not thread-safe: one thread drives an attempt)."""

    def __init__(self, window: float, min_rate: float):
        self.window = window
        self.min_rate = min_rate
        self.start: float | None = None  # of the current window
        self.moved = 0  # in the current window
        self.last = 0.0  # last progress (the silence timeout counts from there)

    def wait(self) -> float:
        """How long the next socket operation may block; TooSlow when a window closed short."""
        now = time.monotonic()
        if self.start is None:
            self.start = self.last = now
        if now >= self.start + self.window:
            if self.moved < self.min_rate * self.window:
                raise TooSlow(
                    f"the transfer moved {self.moved} bytes in {self.window:g}s, "
                    f"under the minimum of {self.min_rate:g} bytes/s"
                )
            self.start, self.moved = now, 0
        return max(0.001, min(self.start, self.last) + self.window - now)

    def silent(self) -> bool:
        """Whether the silence timeout has run out (no byte for a whole window)."""
        return time.monotonic() >= self.last + self.window

    def progressed(self, count: int) -> None:
        if count:
            self.moved += count
            self.last = time.monotonic()


class Pacer:
    """One client's paces, one per thread (begin() at each request attempt)."""

    def __init__(self, window: float, min_rate: float):
        self.window, self.min_rate = window, min_rate
        self._local = threading.local()

    def begin(self) -> None:
        self._local.pace = Pace(self.window, self.min_rate) if self.min_rate > 0 else None

    def current(self) -> Pace | None:
        return getattr(self._local, "pace", None)

    def pace_tls(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Make the context's sockets paced by this pacer."""
        context.sslsocket_class = type("PacedSSLSocket", (_Paced, ssl.SSLSocket), {"pacer": self})
        return context

    def http_pool(self) -> type:
        """A plain-HTTP connection pool class whose sockets this pacer paces."""
        pacer = self

        class Connection(urllib3.connection.HTTPConnection):
            def _new_conn(self) -> socket.socket:
                sock = super()._new_conn()
                timeout = sock.gettimeout()
                paced = PacedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
                paced.settimeout(timeout)
                paced.pacer = pacer
                return paced

        return type("PacedHTTPConnectionPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": Connection})


class _Paced:
    """recv/recv_into/send/sendall under the calling thread's Pace (plain when there is none)."""

    pacer: Pacer | None = None

    def _paced(self, operation, *args):
        pace = self.pacer.current() if self.pacer is not None else None
        if pace is None:
            return operation(*args)
        while True:
            self.settimeout(pace.wait())  # type: ignore[attr-defined]
            try:
                result = operation(*args)
            except TimeoutError:
                if pace.silent():
                    raise
                continue  # a window closed: wait() judges it
            pace.progressed(result if isinstance(result, int) else len(result))
            return result

    def recv(self, *args):
        return self._paced(super().recv, *args)  # type: ignore[misc]

    def recv_into(self, *args):
        return self._paced(super().recv_into, *args)  # type: ignore[misc]

    def send(self, data, *args):
        return self._paced(super().send, memoryview(data)[:PIECE], *args)  # type: ignore[misc]

    def sendall(self, data, *args) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, *args) :]


class PacedSocket(_Paced, socket.socket):
    pass
