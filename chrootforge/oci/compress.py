"""Streaming compression for layers, reproducible byte for byte.

gzip: independent 1 MiB blocks deflated in threads (zlib-ng releases the GIL), each primed with the
previous block's last 32 KiB as dictionary (like pigz) and ended with a sync flush, so the pieces
concatenate into ONE raw deflate stream inside ONE gzip member (header mtime 0, no name, OS 255).
The output depends only on the input, the level and the zlib-ng version, never on the number of
threads nor on the CPU: zlib-ng >= 2.2 hashes the same way everywhere (its SSE4.2/ACLE hashes were
removed) and its CPU-specific match finders compute the same matches (docs/compression.md).
The zlib-ng wheel bundles the library, so pinning the package pins the bytes; a runtime version
other than the pinned one is announced, since other machines would then write other digests.

zstd: `zstandard` in multi-threaded mode. zstd output is identical for every threads >= 1 but
differs for threads == 0, so we always use >= 1 worker (pinned mode, any count).
"""

from __future__ import annotations

import collections
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, cast

from zlib_ng import zlib_ng

from chrootforge import log

GZIP_BLOCK = 1 << 20
# zlib-ng level 4: layers ~2% smaller than Go's default gzip (what umoci writes) and ~4% bigger than
# zlib -6's, at about 3x zlib -6's speed: 0.8x umoci's CPU time (docs/compression.md, bench/bench_oci.py)
GZIP_LEVEL = 4
ZLIBNG_PINNED = "2.3.3"  # the library inside the pinned zlib-ng wheel (pyproject.toml)
ZSTD_LEVEL = 3
_WINDOW = 32768
# 10-byte gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown (255).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _deflate_block(block: bytes, zdict: bytes, level: int, last: bool) -> bytes:
    raw = (level, zlib_ng.DEFLATED, -15, 8, zlib_ng.Z_DEFAULT_STRATEGY)  # -15: no zlib header
    comp = zlib_ng.compressobj(*raw, zdict) if zdict else zlib_ng.compressobj(*raw)
    return comp.compress(block) + comp.flush(zlib_ng.Z_FINISH if last else zlib_ng.Z_SYNC_FLUSH)


_version_checked = False


def _check_zlibng_version() -> None:
    global _version_checked
    if not _version_checked:
        _version_checked = True
        if zlib_ng.ZLIBNG_RUNTIME_VERSION != ZLIBNG_PINNED:
            log.warn(
                f"zlib-ng {zlib_ng.ZLIBNG_RUNTIME_VERSION} is not the pinned {ZLIBNG_PINNED}: gzip "
                "layers written here may get other digests than on other machines"
            )


def workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))  # the CPUs this process may run on (cgroups, taskset)


class ParallelGzip:
    """write(bytes) ... close(): emits one gzip member through `out`, in order."""

    def __init__(self, out: Callable[[bytes], object], level: int = GZIP_LEVEL, threads: int | None = None):
        self.out = out
        self.level = level
        self.threads = threads or workers()
        _check_zlibng_version()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gzip")
        self.pending: collections.deque = collections.deque()
        self.buf = bytearray()
        self.tail = b""
        self.crc = 0
        self.size = 0
        out(GZIP_HEADER)

    def write(self, data) -> None:
        self.crc = zlib_ng.crc32(data, self.crc)
        self.size += len(data)
        self.buf += data
        if len(self.buf) >= GZIP_BLOCK:
            view = memoryview(self.buf)
            start = 0
            while len(self.buf) - start >= GZIP_BLOCK:
                self._submit(bytes(view[start : start + GZIP_BLOCK]), last=False)
                start += GZIP_BLOCK
            view.release()
            del self.buf[:start]

    def _submit(self, block: bytes, last: bool) -> None:
        zdict, self.tail = self.tail, block[-_WINDOW:]
        self.pending.append(self.pool.submit(_deflate_block, block, zdict, self.level, last))
        while len(self.pending) > 2 * self.threads:
            self.out(self.pending.popleft().result())

    def close(self) -> None:
        try:
            self._submit(bytes(self.buf), last=True)
            self.buf = bytearray()
            while self.pending:
                self.out(self.pending.popleft().result())
            self.out(struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))
        finally:
            self.abort()

    def abort(self) -> None:
        for fut in self.pending:
            fut.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)


class _Forward:
    """The minimal file object zstandard's stream_writer writes into."""

    def __init__(self, out: Callable[[bytes], object]):
        self._out = out

    def write(self, data) -> int:
        self._out(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class Zstd:
    def __init__(self, out: Callable[[bytes], object], level: int = ZSTD_LEVEL, threads: int | None = None):
        import zstandard

        cctx = zstandard.ZstdCompressor(level=level, threads=max(1, threads or workers()))
        sink = cast("IO[bytes]", _Forward(out))  # stream_writer only calls write() and flush()
        self.writer = cctx.stream_writer(sink, closefd=False, write_return_read=True)

    def write(self, data) -> None:
        self.writer.write(data)

    def close(self) -> None:
        import zstandard

        self.writer.flush(zstandard.FLUSH_FRAME)
        self.writer.close()

    def abort(self) -> None:
        pass


def compressor(kind: str, out: Callable[[bytes], object]):
    if kind == "gzip":
        return ParallelGzip(out)
    if kind == "zstd":
        return Zstd(out)
    raise ValueError(f"unknown compression {kind!r}")


class Decompressor:
    """A read(n) file object over a compressed stream: gzip (multi-member) or zstd or none."""

    def __init__(self, raw, kind: str | None, chunk: int = 1 << 20):
        self.raw = raw
        self.kind = kind
        self.chunk = chunk
        self.buf = bytearray()
        self.eof = False
        if kind == "zstd":
            import zstandard

            self.reader = zstandard.ZstdDecompressor().stream_reader(
                raw, read_across_frames=True, closefd=False
            )
        elif kind == "gzip":
            self.zobj = zlib.decompressobj(31)
        elif kind is not None:
            raise ValueError(f"unknown compression {kind!r}")

    def _fill(self) -> None:
        if self.kind is None:
            data = self.raw.read(self.chunk)
        elif self.kind == "zstd":
            data = self.reader.read(self.chunk)
        else:
            data = b""
            while not data:
                comp = self.zobj.unused_data or self.raw.read(self.chunk)
                if self.zobj.eof:  # next gzip member
                    if not comp:
                        break
                    self.zobj = zlib.decompressobj(31)
                elif not comp:
                    raise zlib.error("truncated gzip stream")
                data = self.zobj.decompress(comp)
        if not data:
            self.eof = True
        self.buf += data

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buf) < n) and not self.eof:
            self._fill()
        if n < 0:
            n = len(self.buf)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out
