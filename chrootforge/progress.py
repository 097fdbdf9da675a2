"""Progress for long work: bytes done, MB/s and percent on a terminal, silent otherwise."""

from __future__ import annotations

import sys
import time
from typing import Self

from chrootforge import log


class ByteProgress:
    """Call update(n) as bytes are processed and close() at the end.

    It draws only when stderr is a terminal and quiet mode is off, at most 10 times a second.
    """

    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self._last_draw = 0.0
        if enabled is None:
            enabled = sys.stderr.isatty() and not log.is_quiet()
        self.enabled = enabled

    def update(self, nbytes: int) -> None:
        self.done += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed / 1e6
        text = f"\r{self.label}: {self.done / 1e6:8.1f} MB"
        if self.total:
            text += f" / {self.total / 1e6:.1f} MB ({100 * self.done / self.total:5.1f}%)"
        text += f"  {rate:6.1f} MB/s"
        sys.stderr.write(text + end)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")
            self.enabled = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
