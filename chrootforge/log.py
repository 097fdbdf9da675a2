"""Tiny stderr reporting helpers, so every module speaks with one voice."""

import os
import sys

_quiet = bool(os.environ.get("CHROOTFORGE_QUIET"))
_prefix = ""  # e.g. "[hello] " in a parallel build's worker


def set_quiet(value: bool) -> None:
    global _quiet
    _quiet = value


def is_quiet() -> bool:
    return _quiet


def set_prefix(value: str) -> None:
    global _prefix
    _prefix = value


def info(message: str) -> None:
    if not _quiet:
        print(_prefix + message, file=sys.stderr, flush=True)


def notice(message: str) -> None:
    """Something the user should know even in quiet mode (degraded modes, fallbacks)."""
    print(f"chrootforge: notice: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"chrootforge: WARNING: {message}", file=sys.stderr, flush=True)
