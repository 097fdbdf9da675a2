"""Read layers back: the uncompressed stream of a layer blob, its tar members in order, and what
each member means to an applier (`events`: the one classifier of whiteouts and opaque markers,
which unpack and the parent index of commit and verify both consume)."""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chrootforge import rootpath
from chrootforge.errors import CfError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.compress import Decompressor
from chrootforge.oci.layout import VerifyingReader
from chrootforge.rootpath import PathRefused

WHITEOUT_PREFIX = ".wh."  # `.wh.NAME` deletes NAME of the layers below
OPAQUE = ".wh..wh..opq"  # hides what the layers below hold in its directory


def compression_of(desc: dict) -> str | None:
    media = desc.get("mediaType", "")
    if media not in mt.COMPRESSION_OF:
        raise CfError(f"layer {desc.get('digest')} has an unsupported media type {media!r}")
    return mt.COMPRESSION_OF[media]


@contextlib.contextmanager
def open_layer(layout: Path, desc: dict):
    """Yield a read(n) object over the uncompressed bytes of the layer described by `desc`. The
    compressed blob is checked against the descriptor's digest and size as it is read, and in
    full when the block ends normally, so a corrupt layer is refused, naming it."""
    kind = compression_of(desc)
    with VerifyingReader(layout, desc["digest"], desc.get("size"), "layer") as raw:
        stream = Decompressor(raw, kind)
        try:
            yield stream
        except (zlib.error, EOFError) as err:
            raise CfError(f"layer {desc['digest']} in {layout} does not decompress: {err}") from err
        except Exception as err:
            if type(err).__module__.startswith("zstandard"):
                raise CfError(f"layer {desc['digest']} in {layout} does not decompress: {err}") from err
            raise
        raw.drain()


def diff_id(layout: Path, desc: dict) -> tuple[str, int]:
    """sha256 and size of the uncompressed layer."""
    sha = hashlib.sha256()
    size = 0
    with open_layer(layout, desc) as stream:
        while True:
            data = stream.read(1 << 20)
            if not data:
                break
            sha.update(data)
            size += len(data)
    return "sha256:" + sha.hexdigest(), size


def members(layout: Path, desc: dict) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Yield (member, tarfile) in stream order; read content with tar.extractfile(member)."""
    with open_layer(layout, desc) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
                for member in tar:
                    yield member, tar
        except tarfile.TarError as err:
            raise CfError(f"layer {desc['digest']} in {layout} is not a valid tar: {err}") from err


def member_xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    prefix = "SCHILY.xattr."
    return tuple(
        sorted(
            (k[len(prefix) :], v.encode("utf-8", "surrogateescape"))
            for k, v in member.pax_headers.items()
            if k.startswith(prefix)
        )
    )


def entry_parts(member: tarfile.TarInfo) -> list[str]:
    """A member's path components; absolute names and `..` are refused (rootpath.entry_parts)."""
    return rootpath.entry_parts(member.name, "layer entry")


@dataclass(frozen=True, slots=True)
class Entry:
    """An ordinary member: it writes `path`."""

    path: str
    parts: tuple[str, ...]  # the member's name, normalised (rootpath.entry_parts)
    member: tarfile.TarInfo
    tar: tarfile.TarFile  # read a regular member's content with tar.extractfile(member)


@dataclass(frozen=True, slots=True)
class Whiteout:
    """A `.wh.NAME` marker: `path` (and what is below it) is gone from the layers underneath."""

    path: str
    parts: tuple[str, ...]  # the marker's own name, normalised
    member: tarfile.TarInfo


@dataclass(frozen=True, slots=True)
class Opaque:
    """A `.wh..wh..opq` marker: the directory `dir` ("" is the root) keeps nothing of the layers
    underneath but `kept`, the names of its children that this layer wrote before the marker."""

    dir: str
    parts: tuple[str, ...]  # the marker's own name, normalised (so `dir` is all but the last)
    kept: frozenset[str]
    member: tarfile.TarInfo


Event = Entry | Whiteout | Opaque


def events(layout: Path, desc: dict) -> Iterator[Event]:
    """What each member of the layer does, in stream order; the one place that tells whiteouts,
    opaque markers and entries apart. Names are normalised and checked here: an absolute name or
    `..` is a PathRefused (rootpath.entry_parts), as is a whiteout that names no entry (`.wh.`,
    `.wh..`, `.wh...`). A member naming the root itself is skipped. A whiteout of a path that this
    layer wrote earlier is dropped (a layer's markers apply to the layers below it only), and an
    opaque marker keeps the children this layer wrote before it."""
    written: set[str] = set()
    children: dict[str, set[str]] = {}  # directory -> names of its children this layer wrote
    for member, tar in members(layout, desc):
        parts = tuple(entry_parts(member))
        if not parts:
            continue
        parent, name = "/".join(parts[:-1]), parts[-1]
        if name == OPAQUE:
            yield Opaque(parent, parts, frozenset(children.get(parent, ())), member)
        elif name.startswith(WHITEOUT_PREFIX):
            target = name[len(WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                raise PathRefused(f"refusing whiteout {member.name!r}: it names no entry")
            path = f"{parent}/{target}" if parent else target
            if path not in written:
                yield Whiteout(path, parts, member)
        else:
            path = "/".join(parts)
            yield Entry(path, parts, member, tar)
            written.add(path)
            children.setdefault(parent, set()).add(name)
