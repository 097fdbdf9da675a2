"""A streaming tar header validator: it sees every header before tar does.

Bytes flow decompressor -> TarStreamChecker.feed() -> tar. Each member header (with its GNU long-name
and PAX extended headers) is parsed and checked before any of its bytes are forwarded, so a refused
member never reaches tar. The checker keeps a model of the symlinks the archive has created so far:
the destination starts empty, so those are the only symlinks a later member can traverse.

It is pure (no I/O), so the policy is unit-tested on hand-made byte streams.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chrootforge.errors import VerificationError

BLOCK = 512
_MAX_EXT = 1 << 20  # GNU long names and PAX records are small; refuse absurd ones
_ZERO = bytes(BLOCK)

REGULAR = (b"0", b"\0", b"7")
HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
LONGNAME, LONGLINK, PAX, PAX_GLOBAL, OLD_SPARSE = b"L", b"K", b"x", b"g", b"S"
_KNOWN = {*REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO, OLD_SPARSE}
_TYPE_NAMES = {
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "character device",
    b"4": "block device",
    b"5": "directory",
    b"6": "fifo",
}


class UnsafeArchive(VerificationError):
    """The archive is malformed or has a member that could write outside the destination."""

    def __init__(self, message: str, member: str | None = None):
        text = f"refusing archive member {member!r}: {message}" if member is not None else message
        super().__init__(text, hint="the tarball is corrupt or hostile; nothing was extracted")
        self.member = member


@dataclasses.dataclass
class CheckStats:
    members: int = 0
    skipped_dev: int = 0
    newest_mtime: int | None = None  # of the members extracted (a stand-in for SOURCE_DATE_EPOCH)


def _num(field: bytes, what: str) -> int:
    """A tar numeric field: NUL/space-terminated octal, or GNU base-256 when the high bit is set."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            raise UnsafeArchive(f"negative {what} field")
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError as err:
        raise UnsafeArchive(f"bad {what} field {text!r}") from err


def _checksum_ok(header: bytes) -> bool:
    stored = _num(header[148:156], "checksum")
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    signed = sum((b - 256 if b > 127 else b) for b in header[:148] + header[156:]) + 8 * 32
    return stored == signed


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def parse_pax(data: bytes) -> dict[str, bytes]:
    """PAX records: '<len> <key>=<value>\\n', where len counts the whole record."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise UnsafeArchive("malformed PAX header")
        try:
            length = int(data[pos:space])
        except ValueError as err:
            raise UnsafeArchive("malformed PAX record length") from err
        record = data[space + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise UnsafeArchive("malformed PAX record")
        key, value = record[:-1].split(b"=", 1)
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records


def split_path(raw: str, member: str, *, link: bool = False) -> tuple[str, ...]:
    """Normalize a member (or hardlink target) name to components; refuse absolute and '..' names."""
    what = "hardlink target" if link else "path"
    if raw.startswith("/"):
        raise UnsafeArchive(f"absolute {what} {raw!r}", member)
    parts = tuple([p for p in raw.split("/") if p and p != "."])
    if ".." in parts:
        raise UnsafeArchive(f"'..' in {what} {raw!r}", member)
    return parts


class TarStreamChecker:
    """Feed tar bytes in any chunking; get back the chunks that are safe to hand to tar."""

    def __init__(self, skip_top: str | None = "dev", record_owners: bool = False):
        self.skip_top = skip_top
        self.stats = CheckStats()
        # record_owners: the owner of every extracted member that is not 0:0, by its components
        # (the last member of a name wins), for a single-id extraction (ownerxattr.py)
        self.owners: dict[tuple[str, ...], tuple[int, int]] | None = {} if record_owners else None
        self.symlinks: dict[tuple[str, ...], str] = {}
        self._link_names: set[str] = set()  # last components of the symlinks: a cheap pre-filter
        self.files: set[tuple[str, ...]] = set()  # non-directories, possible hardlink targets
        self.skipped: set[tuple[str, ...]] = set()
        self._buf = bytearray()  # a partial header block or extended-header payload
        self._need = BLOCK  # bytes wanted in _buf before _on_block / _on_ext runs
        self._mode = "header"  # header | ext | data | sparse-ext | done
        self._data_left = 0
        self._forward = True
        self._held: list[bytes] = []  # extended headers held until their member is judged
        self._ext: dict[str, Any] = {}
        self._ext_type = b""
        self._zero_blocks = 0

    # -- streaming -------------------------------------------------------------------------
    def feed(self, data: bytes) -> list:
        out: list = []
        view = memoryview(data)
        pos, size = 0, len(view)
        while pos < size:
            if self._mode == "done":
                break  # bytes after the end-of-archive marker are never given to tar
            if self._mode == "data":
                take = min(self._data_left, size - pos)
                if self._forward:
                    out.append(view[pos : pos + take])
                pos += take
                self._data_left -= take
                if self._data_left == 0:
                    self._mode = "header"
                    self._need = BLOCK
                continue
            if not self._buf and size - pos >= self._need:  # the whole block is here: no buffering
                block = bytes(view[pos : pos + self._need])
                pos += self._need
                out.extend(self._dispatch(block))
                continue
            take = min(self._need - len(self._buf), size - pos)
            self._buf += view[pos : pos + take]
            pos += take
            if len(self._buf) == self._need:
                block = bytes(self._buf)
                self._buf.clear()
                out.extend(self._dispatch(block))
        return out

    def pending_data(self) -> tuple[int, bool]:
        """(bytes left in the current member's data, whether they are forwarded)."""
        return (self._data_left if self._mode == "data" else 0), self._forward

    def consumed_data(self, nbytes: int) -> None:
        """The caller moved `nbytes` of the current member's data itself (e.g. with splice)."""
        if self._mode != "data" or not 0 <= nbytes <= self._data_left:
            raise AssertionError("consumed_data outside a data region")
        self._data_left -= nbytes
        if self._data_left == 0:
            self._mode = "header"
            self._need = BLOCK

    def finish(self) -> list:
        """Call at end of input: refuses a truncated archive."""
        if self._mode != "done":
            if self._mode == "header" and not self._buf and self._zero_blocks == 1:
                self._mode = "done"
                return [_ZERO]  # one zero block then EOF: tolerated, complete the marker
            raise UnsafeArchive("truncated tar archive (no end-of-archive marker)")
        return []

    def _dispatch(self, block: bytes) -> list:
        if self._mode == "header":
            return self._on_header(block)
        if self._mode == "ext":
            return self._on_ext(block)
        if self._mode == "sparse-ext":
            return self._on_sparse_ext(block)
        raise AssertionError(self._mode)

    # -- headers ---------------------------------------------------------------------------
    def _on_header(self, header: bytes) -> list:
        if header == _ZERO:
            if self._held:
                raise UnsafeArchive("extended header without a member")
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self._mode = "done"
                return [_ZERO, _ZERO]
            return []
        if self._zero_blocks:
            raise UnsafeArchive("data after a zero block (corrupt archive)")
        if not _checksum_ok(header):
            raise UnsafeArchive("bad tar header checksum (corrupt or not a tar archive)")
        magic = header[257:265]
        if magic[:5] != b"ustar":
            raise UnsafeArchive("not a ustar/GNU/PAX tar header (old v7 tar archives are not supported)")
        typeflag = header[156:157]
        size = _num(header[124:136], "size")
        if typeflag in (LONGNAME, LONGLINK, PAX, PAX_GLOBAL):
            if size > _MAX_EXT:
                raise UnsafeArchive(f"extended header of {size} bytes")
            self._held.append(header)
            self._ext_type = typeflag
            self._data_left = size
            if size == 0:
                return self._ext_done(b"")
            self._mode = "ext"
            self._need = -(-size // BLOCK) * BLOCK
            return []
        return self._on_member(header, typeflag, size, magic)

    def _on_ext(self, payload: bytes) -> list:
        self._held.append(payload)
        self._need = BLOCK
        self._mode = "header"
        return self._ext_done(payload[: self._data_left])

    def _ext_done(self, payload: bytes) -> list:
        kind = self._ext_type
        if kind == LONGNAME:
            self._ext["longname"] = _cstr(payload)
        elif kind == LONGLINK:
            self._ext["longlink"] = _cstr(payload)
        elif kind == PAX:
            self._ext.setdefault("pax", {}).update(parse_pax(payload))
        else:  # a global PAX header: forwarded at once, but it may not rename things
            records = parse_pax(payload)
            bad = sorted(k for k in records if k in ("path", "linkpath", "size") or k.startswith("GNU."))
            if bad:
                raise UnsafeArchive(f"global PAX header sets {', '.join(bad)}")
            held, self._held = self._held, []
            return held
        return []

    def _on_member(self, header: bytes, typeflag: bytes, size: int, magic: bytes) -> list:
        name_b = _cstr(header[0:100])
        if magic[:6] == b"ustar\0":  # ustar/pax (any version, as GNU tar reads it): a prefix field;
            prefix = _cstr(header[345:500])  # old GNU magic ("ustar  \0") uses those bytes otherwise
            if prefix:
                name_b = prefix + b"/" + name_b
        link_b = _cstr(header[157:257])
        pax_mtime = None
        pax_ids: dict[str, bytes] = {}
        if self._ext:
            pax: dict[str, bytes] = self._ext.get("pax", {})  # type: ignore[assignment]
            pax_mtime = pax.get("mtime")
            pax_ids = {k: pax[k] for k in ("uid", "gid") if k in pax}
            name_b = self._ext.get("longname", name_b)  # type: ignore[assignment]
            name_b = pax.get("path", name_b)
            name_b = pax.get("GNU.sparse.name", name_b)
            link_b = self._ext.get("longlink", link_b)  # type: ignore[assignment]
            link_b = pax.get("linkpath", link_b)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError as err:
                    raise UnsafeArchive("bad PAX size") from err
        name = name_b.decode("utf-8", "surrogateescape")
        link = link_b.decode("utf-8", "surrogateescape")
        self._ext = {}
        held, self._held = self._held, []
        if typeflag not in _KNOWN:
            raise UnsafeArchive(f"unsupported tar member type {typeflag!r}", name)
        if b"\0" in name_b or (typeflag in (HARDLINK, SYMLINK) and not link_b):
            raise UnsafeArchive("empty or NUL-containing name", name)

        if size and typeflag in (HARDLINK, SYMLINK, DIRECTORY, CHARDEV, BLOCKDEV, FIFO):
            # readers disagree on whether such data blocks exist: refuse rather than guess
            raise UnsafeArchive(f"{_TYPE_NAMES[typeflag]} with a data size of {size}", name)
        forward = self._judge(name, typeflag, link)
        self.stats.members += 1
        if forward:
            self._note_mtime(header, pax_mtime)
            if self.owners is not None and typeflag != HARDLINK:  # a hardlink shares its target's
                self._note_owner(split_path(name, name), header, pax_ids)
        self._forward = forward
        self._data_left = -(-size // BLOCK) * BLOCK
        out = [*held, header] if forward else []
        if typeflag == OLD_SPARSE and header[482]:
            self._mode = "sparse-ext"
            self._need = BLOCK
        elif self._data_left:
            self._mode = "data"
        else:
            self._mode, self._need = "header", BLOCK
        return out

    def _note_mtime(self, header: bytes, pax_mtime: bytes | None) -> None:
        try:
            mtime = int(float(pax_mtime)) if pax_mtime else _num(header[136:148], "mtime")
        except ValueError:
            return
        if self.stats.newest_mtime is None or mtime > self.stats.newest_mtime:
            self.stats.newest_mtime = mtime

    def _note_owner(self, parts: tuple[str, ...], header: bytes, pax_ids: dict[str, bytes]) -> None:
        assert self.owners is not None
        try:
            uid = int(pax_ids["uid"]) if "uid" in pax_ids else _num(header[108:116], "uid")
            gid = int(pax_ids["gid"]) if "gid" in pax_ids else _num(header[116:124], "gid")
        except ValueError as err:
            raise UnsafeArchive("bad PAX uid or gid", "/".join(parts)) from err
        if uid or gid:
            self.owners[parts] = (uid, gid)
        else:
            self.owners.pop(parts, None)

    def _on_sparse_ext(self, block: bytes) -> list:
        if not block[504]:
            self._mode = "data" if self._data_left else "header"
            self._need = BLOCK
        return [block] if self._forward else []

    # -- policy ----------------------------------------------------------------------------
    def _judge(self, name: str, typeflag: bytes, link: str) -> bool:
        """True to forward the member, False to skip it silently (counted); raises to refuse."""
        parts = split_path(name, name)
        if not parts and typeflag != DIRECTORY:
            raise UnsafeArchive("a non-directory member names the destination root", name)
        if self.skip_top and len(parts) > 1 and parts[0] == self.skip_top:
            self.stats.skipped_dev += 1
            self.skipped.add(parts)
            return False
        if self.skip_top and parts == (self.skip_top,) and typeflag != DIRECTORY:
            raise UnsafeArchive(f"/{self.skip_top} must be a directory", name)
        if typeflag in (CHARDEV, BLOCKDEV):
            raise UnsafeArchive(f"{_TYPE_NAMES[typeflag]} outside /dev", name)
        if parts in self.symlinks:
            raise UnsafeArchive("redefines a symlink the archive already created", name)
        self._resolve(parts[:-1], name)  # the parent directories must stay inside the root
        if typeflag == HARDLINK:
            target = split_path(link, name, link=True)
            self._resolve(target[:-1], name)
            if target in self.skipped:
                raise UnsafeArchive(f"hardlink to skipped member {link!r}", name)
            if target not in self.files:
                raise UnsafeArchive(
                    f"hardlink to {link!r}, which is not an earlier file of the archive", name
                )
            if target in self.symlinks:  # a hardlink to a symlink is that symlink
                self.symlinks[parts] = self.symlinks[target]
                self._link_names.add(parts[-1])
            self.files.add(parts)
        elif typeflag == SYMLINK:
            self.symlinks[parts] = link
            self._link_names.add(parts[-1])
            self.files.add(parts)
        elif typeflag != DIRECTORY:
            self.files.add(parts)
        return True

    def _resolve(self, parts: tuple[str, ...], member: str) -> tuple[str, ...]:
        """Walk `parts` through the archive's symlinks; refuse any walk that leaves the root."""
        if self._link_names.isdisjoint(parts):
            return parts  # the common case: no component can be a symlink
        links = self.symlinks
        if not any(parts[:i] in links for i in range(1, len(parts) + 1)):
            return parts  # e.g. usr/lib/x while lib -> usr/lib exists: no prefix is a symlink
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            comp = pending.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if not resolved:
                    raise UnsafeArchive("path climbs out of the root through a symlink", member)
                resolved.pop()
                continue
            candidate = (*resolved, comp)
            target = self.symlinks.get(candidate)
            if target is None:
                resolved.append(comp)
                continue
            hops += 1
            if hops > 40:
                raise UnsafeArchive("too many levels of symlinks", member)
            if target.startswith("/"):
                # tar runs on the host: an absolute symlink would be followed on the host
                raise UnsafeArchive(f"writes through symlink {'/'.join(candidate)!r} -> {target!r}", member)
            pending[:0] = target.split("/")
        return tuple(resolved)
