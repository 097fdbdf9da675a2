"""The layer's byte stream in reused blocks (oci/fanout.py) and the tar written into it."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time

import pytest

from chrootforge.oci import tree
from chrootforge.oci.fanout import Fanout
from chrootforge.oci.tarwrite import write_tar


class Collect:
    def __init__(self):
        self.data = bytearray()
        self.threads: set[str] = set()

    def __call__(self, block: memoryview) -> None:
        self.data += block
        self.threads.add(threading.current_thread().name)


def _file(tmp_path, name: str, size: int) -> int:
    data = hashlib.sha256(name.encode()).digest() * (size // 32 + 1)
    (tmp_path / name).write_bytes(data[:size])
    return os.open(tmp_path / name, os.O_RDONLY)


@pytest.mark.parametrize("block", [512, 1000, 4096])
def test_every_consumer_gets_the_whole_stream_in_order(tmp_path, block):
    a, b = Collect(), Collect()
    stream = Fanout([a, b], block_size=block, depth=2)
    expected = bytearray()
    for i, size in enumerate([0, 1, 511, 512, 513, 999, 5000, 12345]):
        header = f"header {i};".encode() * (i + 1)
        stream.write(header)
        fd = _file(tmp_path, f"f{i}", size)
        try:
            assert stream.read_from(fd, size) == size
            assert stream.read_from(fd, 10) == 0  # at its end
        finally:
            os.close(fd)
        expected += header + (tmp_path / f"f{i}").read_bytes()
    stream.close()
    assert a.data == expected and b.data == expected
    assert a.threads.isdisjoint(b.threads) and threading.current_thread().name not in a.threads | b.threads


def test_consumers_run_at_the_same_time():
    """Hashing and compressing overlap: each consumer waits inside its call until the other one
    has the same block, which a serial pipeline could never satisfy."""
    seen = [threading.Event(), threading.Event()]

    def consumer(me: int):
        def consume(block: memoryview) -> None:
            seen[me].set()
            if not seen[1 - me].wait(30):
                raise AssertionError("the other consumer never ran while this one held the block")

        return consume

    stream = Fanout([consumer(0), consumer(1)], block_size=64, depth=2)
    stream.write(b"x" * 64)
    stream.close()


def test_a_slow_consumer_holds_the_producer_back():
    """Memory stays bounded: with `depth` blocks, the producer waits for them to come back."""
    gate = threading.Event()
    taken = []

    def slow(block: memoryview) -> None:
        taken.append(len(block))
        gate.wait(30)

    stream = Fanout([slow], block_size=16, depth=3)
    done = threading.Event()

    def produce():
        stream.write(b"y" * 16 * 10)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    time.sleep(0.5)
    assert not done.is_set() and len(taken) <= 3
    gate.set()
    assert done.wait(30)
    stream.close()
    assert sum(taken) == 160


def test_a_consumer_error_reaches_the_producer_and_nothing_hangs():
    calls = []

    def broken(block: memoryview) -> None:
        calls.append(1)
        raise OSError(28, "No space left on device")

    ok = Collect()
    stream = Fanout([ok, broken], block_size=8, depth=2)
    with pytest.raises(OSError, match="No space"):
        for _ in range(100):
            stream.write(b"z" * 8)
    stream.abort()
    assert len(calls) == 1  # the failed consumer is not called again

    stream = Fanout([broken], block_size=8, depth=2)
    stream.write(b"short")  # not a full block: the error comes with close()
    with pytest.raises(OSError, match="No space"):
        stream.close()


def test_a_file_that_shrank_is_padded_to_its_recorded_size(tmp_path, capsys):
    (tmp_path / "f").write_bytes(b"abc")
    entry = tree.Entry("f", tree.FILE, 0o644, 0, 0, 0, size=1000)
    out = Collect()
    stream = Fanout([out], block_size=512, depth=2)
    assert write_tar([entry], str(tmp_path), stream) == 1
    stream.close()
    assert "shrank while it was being committed" in capsys.readouterr().err
    with tarfile.open(fileobj=io.BytesIO(bytes(out.data))) as tar:
        member = tar.getmember("f")
        assert member.size == 1000
        data = tar.extractfile(member)
        assert data is not None and data.read() == b"abc" + bytes(997)


def test_a_big_blob_goes_to_disk_while_it_is_written(tmp_path, monkeypatch):
    """The final fsync of a layer must not be the first time the disk hears of it: writeback of
    every WRITEBACK bytes starts as they are written, over contiguous ranges."""
    from chrootforge import fsutil
    from chrootforge.oci import layout as lo

    calls = []
    monkeypatch.setattr(lo, "start_writeback", lambda fd, offset, length: calls.append((offset, length)))
    layout = lo.ensure_layout(tmp_path / "layout")
    writer = lo.BlobWriter(layout)
    piece = os.urandom(1 << 20)
    for _ in range(3 * lo.WRITEBACK // len(piece) + 1):
        writer.write(piece)
    digest, size = writer.finish()
    assert calls == [(i * lo.WRITEBACK, lo.WRITEBACK) for i in range(3)]
    assert digest == "sha256:" + hashlib.sha256(piece * (size // len(piece))).hexdigest()
    writer.abort()
    # the real call is a hint: on what cannot take it (a pipe), nothing happens
    read, write = os.pipe()
    try:
        fsutil.start_writeback(write, 0, 4096)
    finally:
        os.close(read)
        os.close(write)
