"""Run a command under a seccomp filter that blocks user namespaces, as CI containers do.

    python3 tests/helpers/seccomp.py CMD...
    python3 tests/helpers/seccomp.py --fsopen CMD...

The filter (raw BPF, installed with prctl through ctypes) refuses unshare(2) and clone(2) with
CLONE_NEWUSER with EPERM, and clone3(2) with ENOSYS, so that glibc falls back to clone(2) for threads
(clone3 passes its flags in memory, where a filter cannot look). Everything else is allowed.

With --fsopen it refuses only fsopen(2), with EPERM: what a kernel before 6.7 answers a user
namespace that asks for a binfmt_misc (chrootforge makes nothing else through fsopen). It is a
plain script with no imports from the project, so it runs inside the QEMU guest too.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR_CLONE, NR_UNSHARE, NR_CLONE3 = 56, 272, 435  # x86_64
NR_FSOPEN = 430  # the same on every arch
CLONE_NEWUSER = 0x10000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
LD_ABS_W, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program() -> bytes:
    """seccomp_data: nr at offset 0, arch at 4, args[0] (low 32 bits, little endian) at 16."""
    return b"".join(
        (
            _insn(LD_ABS_W, 0, 0, 4),
            _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            _insn(RET_K, 0, 0, RET_ALLOW),  # another arch: leave it alone
            _insn(LD_ABS_W, 0, 0, 0),
            _insn(JEQ_K, 0, 1, NR_UNSHARE),
            _insn(RET_K, 0, 0, RET_ERRNO | errno.EPERM),
            _insn(JEQ_K, 0, 1, NR_CLONE3),
            _insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
            _insn(JEQ_K, 0, 3, NR_CLONE),
            _insn(LD_ABS_W, 0, 0, 16),
            _insn(JSET_K, 0, 1, CLONE_NEWUSER),
            _insn(RET_K, 0, 0, RET_ERRNO | errno.EPERM),
            _insn(RET_K, 0, 0, RET_ALLOW),
        )
    )


def fsopen_program() -> bytes:
    return b"".join(
        (
            _insn(LD_ABS_W, 0, 0, 4),
            _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            _insn(RET_K, 0, 0, RET_ALLOW),
            _insn(LD_ABS_W, 0, 0, 0),
            _insn(JEQ_K, 0, 1, NR_FSOPEN),
            _insn(RET_K, 0, 0, RET_ERRNO | errno.EPERM),
            _insn(RET_K, 0, 0, RET_ALLOW),
        )
    )


def install(code: bytes | None = None) -> None:
    code = program() if code is None else code
    count = len(code) // 8
    buffer = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(count, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> int:
    code = None
    if argv[:1] == ["--fsopen"]:
        argv, code = argv[1:], fsopen_program()
    if not argv:
        print("usage: seccomp.py [--fsopen] CMD...", file=sys.stderr)
        return 2
    install(code)
    os.execvp(argv[0], argv)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
