"""Byte counting shared by the threads of one push or pull, drawn as progress on a terminal."""

from __future__ import annotations

import threading

from chrootforge.progress import ByteProgress


class Meter:
    def __init__(self, label: str, total: int, quiet: bool):
        self.progress = ByteProgress(label, total, enabled=False if quiet else None)
        self.lock = threading.Lock()
        self.moved = 0  # bytes that really crossed the network (re-sent bytes included)

    def network(self, nbytes: int) -> None:
        with self.lock:
            self.moved += nbytes
            self.progress.update(nbytes)

    def skipped(self, nbytes: int) -> None:
        """Bytes that count as done without moving (the blob was already there)."""
        with self.lock:
            self.progress.update(nbytes)

    def close(self) -> None:
        with self.lock:
            self.progress.close()
