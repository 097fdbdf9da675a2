"""How the user changes a source setting in the command that is running, for the hints of sources/.

`chrootforge fetch` takes flags (--keyring, --mirror, --arch ...); `build` and `lock` read the same
settings from a namespace's chrootforge.toml and have no such flags. The fetch code is shared, so
its hints ask here: by default they name fetch's flags; within `for_namespace(spec_path)` (which
build and lock enter) they name the spec's keys and the air-gapped way of those commands.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from pathlib import Path

_SPEC: ContextVar[Path | None] = ContextVar("chrootforge_sources_spec", default=None)


@contextlib.contextmanager
def for_namespace(spec_path: Path):
    token = _SPEC.set(Path(spec_path))
    try:
        yield
    finally:
        _SPEC.reset(token)


def _spec() -> Path | None:
    return _SPEC.get()


def keyring(table: str = "stage3") -> str:
    """How to trust a key file: `table` is "stage3" or "tree" (the snapshot's keys)."""
    spec = _spec()
    if spec is None:
        return "--keyring FILE"
    return f"[{table}] keyring = FILE (or $CHROOTFORGE_GENTOO_KEYRING)"


def mirrors() -> str:
    spec = _spec()
    return "--mirror or GENTOO_MIRRORS" if spec is None else "[stage3] mirror or GENTOO_MIRRORS"


def stage_choice() -> str:
    spec = _spec()
    return "--arch/--variant/--date" if spec is None else "[stage3] arch, variant and date"


def snapshot_choice() -> str:
    spec = _spec()
    return "--date" if spec is None else "[tree] snapshot"


def insecure() -> str:
    """What the user set to skip the signature check."""
    spec = _spec()
    return "--insecure-skip-verify" if spec is None else "insecure_skip_verify = true"


def offline() -> str:
    """What to do without a network."""
    spec = _spec()
    if spec is None:
        return (
            "offline, fetch on a connected machine and copy its source cache here "
            "(docs/sources.md), or give local files (--stage3 PATH, --snapshot PATH)"
        )
    return (
        f"offline, run `chrootforge lock {_shown(spec.parent)}` on a connected machine and copy its "
        "chrootforge.lock and source cache here (README: air-gapped hosts), or set [stage3] path "
        "and [tree] snapshot to local files"
    )


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter in a message)."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)
