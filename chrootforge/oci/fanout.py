"""A byte stream cut into big reused blocks, each handed to several consumer threads at once.

Committing a layer does three things to the same bytes: read them from the tree, hash them (the
diff_id) and compress them. Each is C code that releases the GIL, so on two cores they overlap
only if none of them waits on another or on the interpreter. Here the producer reads files straight
into preallocated blocks (`read_from`: readv, the one copy out of the page cache; no bytes object
per read, no joining of pieces), and every full block goes to each consumer's own thread, which
passes it to C in one call. A block returns to the pool when the last consumer is done with it, so
memory stays at `depth` blocks, and a slow consumer (compression) holds the producer back instead of
letting the stream pile up.

A consumer gets a memoryview that is valid only during its call: it must copy what it keeps
(hashlib and the compressors do). An error in a consumer reaches the producer at its next block,
and close() re-raises it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence

# 4 MiB: big enough that a consumer crosses into C (and back through the GIL) rarely, small enough
# that zstd's first 8 MiB job starts early and that the blocks in flight stay a few MiB.
BLOCK = 4 << 20
DEPTH = 4  # blocks in the pool: one filling, the others with the consumers


class _Release:
    """Counts the consumers still holding a block; the last one gives it back to the pool."""

    def __init__(self, block: bytearray, holders: int, pool: queue.SimpleQueue):
        self.block, self.left, self.pool = block, holders, pool
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.left -= 1
            last = self.left == 0
        if last:
            self.pool.put(self.block)


class _Consumer:
    def __init__(self, consume: Callable[[memoryview], object], index: int):
        self.consume = consume
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"layer-{index}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            view, release = item
            del item
            try:
                if self.error is None:
                    self.consume(view)
            except BaseException as err:  # noqa: BLE001 - re-raised in the producer
                self.error = err
            finally:
                del view
                release()


class Fanout:
    """write(bytes) and read_from(fd, n) append to the stream; close() flushes it and waits."""

    def __init__(
        self,
        consumers: Sequence[Callable[[memoryview], object]],
        block_size: int = BLOCK,
        depth: int = DEPTH,
    ):
        self.size = block_size
        self.pool: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(depth):
            self.pool.put(bytearray(block_size))
        self.consumers = [_Consumer(c, i) for i, c in enumerate(consumers)]
        self.block = self.pool.get()
        self.view = memoryview(self.block)
        self.pos = 0
        self.closed = False

    def _check(self) -> None:
        for c in self.consumers:
            if c.error is not None:
                raise c.error

    def _emit(self) -> None:
        self._check()
        if self.pos:
            release = _Release(self.block, len(self.consumers), self.pool)
            for c in self.consumers:
                c.queue.put((self.view[: self.pos], release))
            self.view.release()
            self.block = self.pool.get()
            self.view = memoryview(self.block)
            self.pos = 0

    def write(self, data: bytes) -> None:
        n = len(data)
        if self.pos + n < self.size:  # most writes: a header or padding, inside the block
            self.view[self.pos : self.pos + n] = data
            self.pos += n
            return
        rest = memoryview(data)
        while rest:
            n = min(len(rest), self.size - self.pos)
            self.view[self.pos : self.pos + n] = rest[:n]
            self.pos += n
            rest = rest[n:]
            if self.pos == self.size:
                self._emit()

    def read_from(self, fd: int, count: int) -> int:
        """Append up to `count` bytes read from `fd`; returns how many (fewer at end of file)."""
        done = 0
        while done < count:
            n = min(count - done, self.size - self.pos)
            got = os.readv(fd, [self.view[self.pos : self.pos + n]])
            if not got:
                break
            self.pos += got
            done += got
            if self.pos == self.size:
                self._emit()
        return done

    def close(self) -> None:
        """Hand over the last partial block, wait for every consumer, raise the first error."""
        self._emit()
        self._stop()
        self._check()

    def abort(self) -> None:
        """Stop the consumers, dropping what they have not taken yet."""
        for c in self.consumers:
            c.error = c.error or RuntimeError("aborted")
        self._stop()

    def _stop(self) -> None:
        if not self.closed:
            self.closed = True
            for c in self.consumers:
                c.queue.put(None)
            for c in self.consumers:
                c.thread.join()
