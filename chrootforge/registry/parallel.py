"""Run one function over many blobs, `jobs` at a time, stopping everything at the first failure.

Workers are daemon threads: a worker stuck in a network read can delay neither Ctrl-C nor the
process exit. On a failure or an interrupt the shared `abort` event is set (bodies and downloads
check it between chunks), workers get a short grace period to notice, and the exception is raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

GRACE = 2.0  # seconds a stopping worker may take before the caller moves on


def run_all(fn: Callable, items: Iterable, jobs: int, abort: threading.Event, name: str) -> list:
    """[fn(item) for item in items], in parallel; results in the order of `items`."""
    items = list(items)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for index, item in enumerate(items):
        todo.put((index, item))
    done: queue.SimpleQueue = queue.SimpleQueue()

    def worker() -> None:
        while not abort.is_set():
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((index, fn(item), None))
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                done.put((index, None, err))
                return

    threads = [
        threading.Thread(target=worker, name=f"{name}-{i}", daemon=True)
        for i in range(max(1, min(jobs, len(items))))
    ]
    for thread in threads:
        thread.start()
    results: list = [None] * len(items)
    try:
        for _ in items:
            while True:
                try:  # a timeout keeps the wait interruptible by Ctrl-C and SIGTERM
                    index, result, err = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            if err is not None:
                raise err
            results[index] = result
    except BaseException:
        abort.set()
        for thread in threads:
            thread.join(GRACE / len(threads))
        raise
    return results
