"""Read layers back: the uncompressed stream of a layer blob, and its tar members in order."""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from chrootforge import rootpath
from chrootforge.errors import CfError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.compress import Decompressor
from chrootforge.oci.layout import VerifyingReader


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
            raise CfError(f"layer {desc['digest']} in {layout} does not decompress: {err}") from None
        except Exception as err:
            if type(err).__module__.startswith("zstandard"):
                raise CfError(f"layer {desc['digest']} in {layout} does not decompress: {err}") from None
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
            raise CfError(f"layer {desc['digest']} in {layout} is not a valid tar: {err}") from None


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
