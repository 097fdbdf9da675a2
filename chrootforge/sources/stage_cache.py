"""The extracted-stage cache: extract a stage once, start every build from it without re-extracting.

    pristine_root(tarball, idmap=None, cache_dir=None, holds=None) -> Path
        <cache>/<sha512[:32]>-<idmap key>/ : the stage extracted under `idmap`, made once under a
        lock, atomically (extract() renames a finished temp dir into place). Owners on disk depend
        on the mapping, hence the idmap in the key. Never modify it. The entry is held
        (chrootforge.holds) in `holds`, or until this process exits: `cache prune` leaves it alone.
    fresh_builder(pristine, workdir, idmap=None) -> OverlayRoot | Path
        A writable root for one build: an overlay (pristine as lower, upper/work in workdir) when
        overlayfs works in a user namespace on workdir's filesystem; else a reflink/plain copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write, file_lock, user_cache_dir
from chrootforge.holds import process_holds
from chrootforge.sources.mapping import idmap_key, remove_under_mapping, run_under_mapping


def default_root() -> Path:
    return user_cache_dir() / "stages"


def _tarball_digest(path: Path, root: Path) -> str:
    """sha512 of a tarball path, memoized by (path, size, mtime, inode) so a warm start does not hash."""
    from chrootforge.sources.digests import hash_file

    st = path.stat()
    memo = root / "digests.json"
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if stamp in known:
        return known[stamp]
    digest = hash_file(path)[0]
    with file_lock(root / ".digests.lock"):
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
        known[stamp] = digest
        atomic_write(memo, json.dumps(known, indent=1))
    return digest


def pristine_root(tarball, idmap=None, cache_dir=None, holds=None) -> Path:
    """`tarball` is a path or a FetchedFile (whose sha512 saves hashing); `holds` a holds.Holds."""
    root = Path(cache_dir) if cache_dir else default_root()
    root.mkdir(parents=True, exist_ok=True)
    path = Path(getattr(tarball, "path", tarball))
    digest = getattr(tarball, "sha512", None) or _tarball_digest(path, root)
    key = f"{digest[:32]}-{idmap_key(idmap)}"
    dest = (holds or process_holds()).hold(root / key)  # before looking: prune may not take it now
    if dest.is_dir():
        return dest
    with file_lock(root / f".{key}.lock"):
        if dest.is_dir():
            return dest
        for stale in root.glob(f".{key}.extract-*"):  # left by a killed run
            remove_under_mapping(stale, idmap)
        from chrootforge.sources.extract import extract

        log.info(f"extracting {path.name} into the stage cache")
        extract(path, dest, idmap)
    return dest


def fresh_builder(pristine: Path, workdir: Path, idmap=None, *, allow_overlay: bool = True):
    """A writable root for one build, without touching `pristine`.

    workdir must be empty or missing; it holds the overlay's upper/ and work/ (or a copy in root/).
    """
    from chrootforge.sandbox import OverlayRoot, overlay_supported

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if allow_overlay and overlay_supported(workdir, idmap):
        upper, work = workdir / "upper", workdir / "work"
        upper.mkdir()
        work.mkdir()
        return OverlayRoot(lower=[Path(pristine)], upper=upper, work=work)
    log.notice("overlayfs is unavailable here: copying the pristine stage (reflink where possible)")
    copy = workdir / "root"
    code = run_under_mapping(["cp", "-a", "--reflink=auto", "--", os.fspath(pristine), os.fspath(copy)], idmap)
    if code != 0:
        remove_under_mapping(copy, idmap)
        raise CfError(f"copying {pristine} failed (cp exited {code})")
    return copy


def remove_builder(workdir: Path, idmap=None) -> None:
    """Delete a builder's workdir (its files belong to the mapping's ids)."""
    remove_under_mapping(workdir, idmap)

