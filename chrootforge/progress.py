"""Progress for long work: bytes done, MB/s and percent on a terminal; when stderr is not a terminal
(a CI log, the --vm guest's streamed output), a plain line every PLAIN_EVERY seconds of work that
lasts that long, so a long step is never silent; nothing with --quiet."""

from __future__ import annotations

import sys
import time
from typing import Self

from chrootforge import log

PLAIN_EVERY = 10.0  # seconds between plain progress lines when stderr is not a terminal


class ByteProgress:
    """Call update(n) as bytes are processed and close() at the end.

    On a terminal (quiet mode off) it redraws one line, at most 10 times a second. Elsewhere it
    writes a plain line every `PLAIN_EVERY` seconds once the work has lasted that long, and a last
    one when it closes. enabled=False: silent.
    """

    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_plain = self.start
        self._plain_lines = 0
        automatic = enabled is None
        if enabled is None:
            enabled = sys.stderr.isatty() and not log.is_quiet()
        self.enabled = enabled
        self.plain = automatic and not enabled and not log.is_quiet()

    def update(self, nbytes: int) -> None:
        self.done += nbytes
        if self.enabled:
            now = time.monotonic()
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                self._draw(now)
        elif self.plain:
            now = time.monotonic()
            if now - self._last_plain >= PLAIN_EVERY:
                self._last_plain = now
                self._plain_lines += 1
                log.info(self._text(now))

    def _text(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-6)
        text = f"{self.label}: {self.done / 1e6:8.1f} MB"
        if self.total:
            text += f" / {self.total / 1e6:.1f} MB ({100 * self.done / self.total:5.1f}%)"
        return text + f"  {self.done / elapsed / 1e6:6.1f} MB/s"

    def _draw(self, now: float, end: str = "") -> None:
        sys.stderr.write("\r" + self._text(now) + end)
        sys.stderr.flush()

    def close(self, failed: bool = False) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")
            self.enabled = False
        elif self.plain and self._plain_lines and not failed:  # a long one: say how it ended
            now = time.monotonic()
            log.info(f"{self._text(now)}, done in {now - self.start:.0f}s")
        self.plain = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)
