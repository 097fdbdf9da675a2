"""binfmt_misc registrations as pure values: which ELF files go to which QEMU emulator.

The magic and mask of each architecture are QEMU's own (scripts/qemu-binfmt-conf.sh, the same bytes
Debian's qemu-user-static ships in /usr/lib/binfmt.d): they match the ELF header's class, byte order
and e_machine, for executables and position-independent ones (e_type 2 or 3), whatever the OS/ABI
byte says. The tests compare them with Debian's files.

Flags (Documentation/admin-guide/binfmt-misc.rst):
  F  the kernel opens the emulator when the registration is written, so it need not exist in the
     sandbox's root (and the root's own files cannot replace it);
  P  pass the original argv[0] (busybox-style multi-call binaries and login shells need it);
  O  pass the binary as an open file (an executable the caller may not read still runs);
  C  take the credentials from the binary, not from the emulator (set-id programs behave as on the
     real machine). Debian leaves C out of its host-wide registrations, where a set-uid program
     would run QEMU as host root; chrootforge registers in the sandbox's own user namespace, where
     the most any program can become is the sandbox's root, an unprivileged host id.
"""

from __future__ import annotations

from chrootforge.values import Value

FLAGS = "POCF"
EMULATOR_DIR = "/usr/bin"
EMULATOR_PACKAGE = "qemu-user-static"
_HDR = "7f454c46"  # \x7fELF
# qemu name: (magic, mask), hex, both 20 bytes from offset 0
MAGIC = {
    "x86_64": (
        _HDR + "020101000000000000000000" + "02003e00",
        "fffffffffffefe00ffffffffffffffff" + "feffffff",
    ),
    "i386": (
        _HDR + "010101000000000000000000" + "02000300",
        "fffffffffffefe00ffffffffffffffff" + "feffffff",
    ),
    "aarch64": (
        _HDR + "020101000000000000000000" + "0200b700",
        "ffffffffffffff00ffffffffffffffff" + "feffffff",
    ),
    "arm": (
        _HDR + "010101000000000000000000" + "02002800",
        "ffffffffffffff00ffffffffffffffff" + "feffffff",
    ),
    "riscv64": (
        _HDR + "020101000000000000000000" + "0200f300",
        "ffffffffffffff00ffffffffffffffff" + "feffffff",
    ),
    "ppc64le": (
        _HDR + "020101000000000000000000" + "02001500",
        "fffffffffffffffcffffffffffffffff" + "feffff00",
    ),
    "s390x": (
        _HDR + "020201000000000000000000" + "00020016",
        "fffffffffffffffcffffffffffffffff" + "fffeffff",
    ),
}
ET_TYPE_AT = {"s390x": 17}  # the low byte of e_type: big-endian arches keep it second


class Registration(Value):
    """One `register` line: name, magic and mask (bytes), the emulator's path and the flags."""

    __slots__ = ("name", "magic", "mask", "interpreter", "flags")  # noqa: RUF023 - the fields' order
    name: str
    magic: bytes
    mask: bytes
    interpreter: str
    flags: str

    def __init__(self, name: str, magic: bytes, mask: bytes, interpreter: str, flags: str = FLAGS) -> None:
        self._init(name, magic, mask, interpreter, flags)

    def line(self) -> bytes:
        """What is written to binfmt_misc's `register` file (bytes escaped as \\xHH)."""
        if ":" in self.interpreter or "\n" in self.interpreter or not self.interpreter.startswith("/"):
            raise ValueError(f"emulator path {self.interpreter!r} must be absolute, without ':'")
        fields = (
            "",
            self.name,
            "M",
            "",
            _escape(self.magic),
            _escape(self.mask),
            self.interpreter,
            self.flags,
        )
        return ":".join(fields).encode()


def _escape(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def emulator_path(qemu: str, directory: str = EMULATOR_DIR) -> str:
    return f"{directory}/qemu-{qemu}-static"


def registration(qemu: str, interpreter: str | None = None) -> Registration:
    """The registration that sends `qemu`-architecture ELF files to its static emulator."""
    magic, mask = MAGIC[qemu]
    return Registration(
        f"qemu-{qemu}", bytes.fromhex(magic), bytes.fromhex(mask), interpreter or emulator_path(qemu)
    )


def sample_headers(qemu: str) -> list[bytes]:
    """The first bytes of an executable and of a position-independent one for `qemu`'s arch."""
    magic = bytearray(bytes.fromhex(MAGIC[qemu][0]))
    at = ET_TYPE_AT.get(qemu, 16)
    out = []
    for e_type in (2, 3):
        magic[at] = e_type
        out.append(bytes(magic))
    return out


class HostEntry(Value):
    """A registration as binfmt_misc shows it in /proc/sys/fs/binfmt_misc/NAME."""

    __slots__ = ("name", "enabled", "interpreter", "flags", "offset", "magic", "mask")  # noqa: RUF023
    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes | None  # None: an extension (E) entry
    mask: bytes | None

    def __init__(self, name, enabled, interpreter, flags, offset, magic, mask) -> None:
        self._init(name, enabled, interpreter, flags, offset, magic, mask)

    def handles(self, qemu: str) -> bool:
        """Does it take both kinds of executables of `qemu`'s arch?"""
        if self.magic is None:
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        for header in sample_headers(qemu):
            window = header[self.offset : self.offset + len(self.magic)]
            if len(window) < len(self.magic):
                return False
            if any((w & m) != (g & m) for w, m, g in zip(window, mask, self.magic, strict=True)):
                return False
        return True


def parse_entry(name: str, text: str) -> HostEntry:
    """The kernel's text for one entry (fs/binfmt_misc.c, entry_status)."""
    fields: dict[str, str] = {}
    enabled = False
    for line in text.splitlines():
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
            continue
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    magic = fields.get("magic")
    mask = fields.get("mask")
    return HostEntry(
        name,
        enabled,
        fields.get("interpreter", ""),
        fields.get("flags", ""),
        int(fields.get("offset", "0") or 0),
        bytes.fromhex(magic) if magic is not None else None,
        bytes.fromhex(mask) if mask is not None else None,
    )


def usable_entry(entries: list[HostEntry], qemu: str) -> tuple[HostEntry | None, str]:
    """The enabled entry that handles `qemu`'s arch with F (its emulator open on the host, so the
    sandbox's root needs no copy), and if none, why the closest one does not do."""
    why = ""
    for entry in entries:
        if not entry.handles(qemu):
            continue
        if not entry.enabled:
            why = f"the host's registration {entry.name} is disabled"
        elif "F" not in entry.flags:
            why = (
                f"the host's registration {entry.name} lacks the F flag: its emulator "
                f"{entry.interpreter} would have to exist inside the root"
            )
        else:
            return entry, ""
    return None, why
