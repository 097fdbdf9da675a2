"""The hermetic network: bring up `lo` in the sandbox's fresh net namespace.

pyroute2 (the design's netlink library) costs ~110 ms to import here, five times the interpreter's
own start, and even the socket module costs ~4 ms; so the common path is the single SIOCSIFFLAGS
ioctl that `ip link set lo up` boils down to, made through the libc handle syscalls.py already
holds. pyroute2 is the fallback when that ioctl is refused (and imported only then). The runner
imports this module before it forks: an import in a freshly forked child costs several times more,
as every page the import machinery touches is copied.
"""

from __future__ import annotations

import ctypes

from chrootforge.sandbox.syscalls import libc

AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class _IfReq(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 16), ("flags", ctypes.c_short), ("pad", ctypes.c_char * 22)]


def _lo_up_ioctl() -> None:
    sock = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if sock < 0:
        err = ctypes.get_errno()
        raise OSError(err, "socket")
    try:
        req = _IfReq(b"lo")
        if libc.ioctl(sock, SIOCGIFFLAGS, ctypes.byref(req)) != 0:
            raise OSError(ctypes.get_errno(), "SIOCGIFFLAGS lo")
        req.flags |= IFF_UP
        if libc.ioctl(sock, SIOCSIFFLAGS, ctypes.byref(req)) != 0:
            raise OSError(ctypes.get_errno(), "SIOCSIFFLAGS lo")
    finally:
        libc.close(sock)


def _lo_up_pyroute2() -> None:
    from pyroute2 import IPRoute  # start-up speed: `run` loads it only when the ioctl way fails

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=index, state="up")


def bring_up_loopback() -> None:
    try:
        _lo_up_ioctl()
    except OSError:
        _lo_up_pyroute2()
