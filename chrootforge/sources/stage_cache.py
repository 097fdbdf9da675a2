"""The extracted-stage cache: extract a stage once, start every build from it without re-extracting.

pristine_root(tarball, idmap=None, cache_dir=None, holds=None) -> Path
    <cache>/<sha512[:32]>-<idmap key>/ : the stage extracted under `idmap`, made once under a
    lock, atomically (extract() renames a finished temp dir into place). Owners on disk depend
    on the mapping, hence the idmap in the key. Never modify it. The entry is held
    (chrootforge.holds) in `holds`, else in the run's (`holds.current()`): `cache prune` leaves it
    alone.
fresh_builder(pristine, workdir, idmap=None) -> OverlayRoot | Path
    A writable root for one build: an overlay (pristine as lower, upper/work in workdir) when
    overlayfs works in a user namespace on workdir's filesystem; else a reflink/plain copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from chrootforge import holds as hl
from chrootforge import log, untrusted
from chrootforge.cache.kinds import confined, kind_root
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.sandbox import OverlayRoot, overlay_supported, owned_dir
from chrootforge.sources.digests import hash_file
from chrootforge.sources.fetched import FetchedFile
from chrootforge.sources.mapped_run import idmap_key, remove_under_mapping, resolved_idmap, run_under_mapping


def default_root() -> Path:
    return kind_root("stages")


def pristine_root(tarball: FetchedFile, idmap=None, cache_dir=None, holds=None) -> Path:
    """`tarball` is the FetchedFile of a stage this run verified (or accepted as insecure): the
    cache is addressed by its content, so an entry is as trusted as this run's verification.
    `holds` a holds.Holds (the entry is held until it is released, so prune leaves it alone)."""
    if not isinstance(tarball, FetchedFile):
        raise TypeError("pristine_root needs the FetchedFile of a verified stage, not a bare path")
    root = Path(cache_dir) if cache_dir else default_root()
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tarball.path)
    key = f"{tarball.sha512[:32]}-{idmap_key(idmap)}"
    # held before looking: prune may not take it now (in the run's holds: holds.current())
    dest = (holds or hl.current()).hold(confined(root, key, what="stage cache key"))
    if dest.is_dir():
        return dest
    with file_lock(root / f".{key}.lock"):
        if dest.is_dir():
            return dest
        for stale in root.glob(f".{key}.extract-*"):  # left by a killed run
            remove_under_mapping(stale, idmap)
        from chrootforge.sources.extract import extract

        log.info(f"extracting {path.name} into the stage cache")
        result = extract(path, dest, idmap)
        atomic_write(_facts(dest), json.dumps({"newest_mtime": result.newest_mtime}))
    return dest


def unverified_stage(path) -> FetchedFile:
    """A local stage taken as it is, marked insecure (what --insecure-skip-verify gives): for
    benchmarks and tests that build their own stages."""
    path = Path(path)
    return FetchedFile(path, *hash_file(path), None, path.absolute().as_uri(), "stage3", insecure=True)


def _facts(pristine: Path) -> Path:
    return pristine.with_name(f"{pristine.name}.facts.json")


def newest_mtime(pristine: Path) -> int | None:
    """The newest mtime among the stage's members, as its tar headers said (read at extraction)."""
    try:
        return untrusted.read_json(_facts(Path(pristine))).get("newest_mtime")
    except (OSError, ValueError):
        return None


def fresh_builder(pristine: Path, workdir: Path, idmap=None, *, allow_overlay: bool = True):
    """A writable root for one build, without touching `pristine`.

    workdir must be empty or missing; it holds the overlay's upper/ and work/ (or a copy in root/).
    """
    idmap = resolved_idmap(idmap)
    workdir = Path(workdir)
    owned_dir(workdir, idmap)  # the namespace's root writes upper/ and work/ (or the copy)
    if allow_overlay and overlay_supported(workdir, idmap):
        upper, work = workdir / "upper", workdir / "work"
        owned_dir(upper, idmap)
        owned_dir(work, idmap)
        return OverlayRoot(lower=[Path(pristine)], upper=upper, work=work)
    log.notice("overlayfs is unavailable here: copying the pristine stage (reflink where possible)")
    copy = workdir / "root"
    code = run_under_mapping(
        ["cp", "-a", "--reflink=auto", "--", os.fspath(pristine), os.fspath(copy)], idmap
    )
    if code != 0:
        remove_under_mapping(copy, idmap)
        raise CfError(f"copying {pristine} failed (cp exited {code})")
    return copy


def remove_builder(workdir: Path, idmap=None) -> None:
    """Delete a builder's workdir (its files belong to the mapping's ids)."""
    remove_under_mapping(workdir, idmap)
