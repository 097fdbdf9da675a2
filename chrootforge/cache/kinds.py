"""The kinds of things in the user cache (`chrootforge.fsutil.user_cache_dir()`), in one table, and
the ONE place that builds a path in it: every module asks `entry()`, `kind_root()` or
`bookkeeping()` here (tests/cache/test_cache_paths.py checks that nobody else does).

    kind       where                              an entry is                   made by
    sources    sources/blobs|unverified/<sha512>  a verified download + sigs    sources.cache
               sources/partial/<file>             a resumable download          sources.download
               sources/tmp/fetch-<id>             one fetch's scratch dir       sources.cache
    stages     stages/<sha512>-<idmap>            a stage3 extracted under a map sources.stage_cache
    trees      trees/<sha512>                     an extracted portage snapshot gentoo.inputs
    distfiles  distfiles/<file>                   a source archive for emerge   build (for all builds)
    binpkgs    binpkgs/<binpkgs key>              interchangeable binary pkgs   build (inputs.binpkg_key)
    binhost    binhost/<url id>/<binpkgs key>     packages from a binhost       gentoo.binhost_fetch
    work       work/<layout id>, work/native-<id> build roots (kept by --keep)  build, gentoo.native_cpu
    vm         vm/<hash>                          a guest's kernel/initrd/root  vm.artifacts
    vm-runs    vm-runs/run.<id>                   a guest's run dir, scratch    vm.runner
Anything else under the cache root is bookkeeping (`BOOKKEEPING`: digest memos, name records, lock
files): counted as "other", never pruned, so never held.

Names that go into a cache path come from lock files, mirrors' answers, specs and registries:
`entry()` and `confined()` take each one through the root resolver's name policy
(`chrootforge.rootpath.entry_parts`) and accept exactly one plain component, so that no name can
leave the cache directory whatever its source.

`scan(kind)` lists the entries as values (path, size, last use, which hold protects them); the
prune plan and `cache ls` work on those values only.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from chrootforge.holds import last_used


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    subdir: str
    what: str
    held_whole: bool = False  # builds hold the kind's directory as a whole (it is bound whole)
    mapped: bool = False  # entries may hold files owned by sub-ids: removed under the id mapping
    # `.<key><marker>*`: the temp dir its maker renames into place; left behind by a killed run
    temp_marker: str | None = None
    depth: int = 1  # how many names below the kind's directory make an entry
    # entries that only exist while their maker runs (it holds them): any unheld one is a leftover
    transient: bool = False


KINDS = (
    Kind("sources", "sources", "verified downloads (stage3 tarballs, snapshots) with their signatures"),
    Kind(
        "stages",
        "stages",
        "extracted stage3 trees, one per tarball and id mapping",
        mapped=True,
        temp_marker=".extract-",
    ),
    Kind("trees", "trees", "extracted portage tree snapshots", temp_marker=".tmp"),
    Kind(
        "distfiles",
        "distfiles",
        "source archives for emerge, shared by every build",
        held_whole=True,
        mapped=True,
    ),
    Kind("binpkgs", "binpkgs", "binary packages, one directory per binpkgs key", mapped=True),
    Kind("binhost", "binhost", "binary packages downloaded from a binhost, per URL and binpkgs key", depth=2),
    Kind(
        "work",
        "work",
        "build roots of a layout's builds (kept by --keep), and -march=native probes",
        mapped=True,
    ),
    Kind("vm", "vm", "VM guest artifacts (kernel, initramfs, root image)", temp_marker=".tmp-"),
    Kind("vm-runs", "vm-runs", "VM guest run dirs (scratch disks) of running guests", transient=True),
)
BY_NAME = {kind.name: kind for kind in KINDS}

# Small files and folders beside the kinds: what they are (for `cache ls`); never pruned.
BOOKKEEPING = {
    "stage-digests.json": "sha512 of local stage files, by path, size, mtime and inode",
    "treeids": "content ids of repository directories, per file",
    "native-cpu.json": "what -march=native means on this CPU, per stage",
    "registry": "where registries were seen to hold which blobs (cross-repository mounts)",
    "vm-apt.json": "the Debian packages the VM guest's recipe resolved",
    "vm-accel.json": "whether KVM works here",
    "vm-last-failure.console.log": "the whole console of the last guest that reported no status",
}

# the source cache's own areas (sources/...), see sources/cache.py
SOURCE_AREAS = ("blobs", "unverified", "partial", "tmp", "names", "keys")


def cache_home() -> Path:
    from chrootforge.fsutil import user_cache_dir

    return user_cache_dir()


def kind_root(name: str, root: Path | None = None) -> Path:
    return (root or cache_home()) / BY_NAME[name].subdir


def confined(base: Path, *names: str, what: str = "name") -> Path:
    """`base` joined with names that must each be one plain component: no `/`, `..`, `.`, NUL or
    leading dot (dot-names are the cache's holds, locks and temp dirs). PathRefused otherwise."""
    from chrootforge.rootpath import PathRefused, entry_parts

    path = Path(base)
    for name in names:
        if not isinstance(name, str) or "\0" in name:
            raise PathRefused(f"refusing {what} {name!r}: not a file name")
        parts = entry_parts(name, what)
        if parts != [name] or name.startswith(".") or len(name.encode()) > 255:
            raise PathRefused(
                f"refusing {what} {name!r}: a cache name must be one plain file name",
                hint="it came from an input (a lock file, a mirror, a spec): check it",
            )
        path = path / name
    return path


def entry(kind: str, *names: str, root: Path | None = None) -> Path:
    """The path of one entry of `kind` (names checked by `confined`)."""
    k = BY_NAME[kind]
    if len(names) != k.depth:
        raise ValueError(f"a {kind} entry is {k.depth} name(s) below {k.subdir}/, got {names!r}")
    return confined(kind_root(kind, root), *names, what=f"{kind} entry")


def source_area(root: Path, area: str) -> Path:
    """A folder of the source cache rooted at `root` (the user cache's, or --cache-dir)."""
    if area not in SOURCE_AREAS:
        raise ValueError(f"unknown source cache area {area!r}")
    return Path(root) / area


def bookkeeping(name: str, root: Path | None = None) -> Path:
    if name not in BOOKKEEPING:
        raise ValueError(f"{name!r} is not in the bookkeeping table")
    return (root or cache_home()) / name


@dataclasses.dataclass(frozen=True)
class Entry:
    kind: str
    name: str  # the path relative to the cache root, for messages
    path: Path
    size: int
    last_used: float  # the newest of the entry's mtime and its hold's stamp
    hold: Path  # the path whose hold protects this entry (itself, or its kind's dir)
    busy_lock: Path | None = None  # a creation/download lock that must be free to remove it
    stale: bool = False  # leftovers of an interrupted run: nothing can use them


def tree_size(path: Path) -> int:
    """Apparent bytes under `path`, hard links once; unreadable parts (sub-id owned, 0700) are skipped."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total, seen = 0, set()
    for dirpath, dirs, files in os.walk(path, onerror=lambda err: None):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1 and not os.path.isdir(os.path.join(dirpath, name)):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _entry(
    kind: Kind,
    root: Path,
    path: Path,
    *,
    hold: Path | None = None,
    busy_lock: Path | None = None,
    stale: bool = False,
) -> Entry:
    try:
        mtime = path.lstat().st_mtime
    except OSError:
        mtime = 0.0
    protector = hold or path
    used = max(mtime, last_used(protector) or 0.0)
    name = f"{kind.name}/{path.relative_to(root).as_posix()}"
    return Entry(kind.name, name, path, tree_size(path), used, protector, busy_lock, stale)


def _children(folder: Path) -> list[Path]:
    """Visible entries of a folder: dot-files are locks, holds and temp files of their owners."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def _stale_temps(folder: Path, marker: str) -> list[tuple[Path, Path]]:
    """(temp dir, its creation lock) for `.<key><marker>*` leftovers of killed runs."""
    out: list[tuple[Path, Path]] = []
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return out
    for name in names:
        if (
            name.startswith(".")
            and marker in name
            and not name.endswith(".hold")
            and (folder / name).is_dir()
        ):
            key = stale_key(name, marker)  # also `..<id>.tmp.extract-*`: extract_here's own temp dir
            out.append((folder / name, folder / f".{key}.lock"))
    return out


def stale_key(name: str, marker: str) -> str:
    """The cache key a leftover temp dir belongs to (keys are hex: no dots)."""
    return name.lstrip(".").split(marker, 1)[0]


def _sources(kind: Kind, root: Path) -> list[Entry]:
    entries = [
        _entry(kind, root, p) for area in ("blobs", "unverified") for p in _children(source_area(root, area))
    ]
    entries += [
        _entry(kind, root, p, busy_lock=p.with_name(p.name + ".lock"))
        for p in _children(source_area(root, "partial"))
        if not p.name.endswith(".lock")
    ]
    # a fetch's scratch dir exists only while the fetch holds it; a killed fetch's stays behind
    entries += [_entry(kind, root, p, stale=True) for p in _children(source_area(root, "tmp"))]
    # SourceCache.store's `.new-*` (renamed into place under sources/.lock): a killed store's
    for area in ("blobs", "unverified"):
        entries += [
            _entry(kind, root, temp, busy_lock=root / ".lock", stale=True)
            for temp, _lock in _stale_temps(source_area(root, area), ".new-")
        ]
    return entries


def scan(kind: Kind, cache_root: Path | None = None) -> list[Entry]:
    """The entries of one kind, as values."""
    root = kind_root(kind.name, cache_root)
    if kind.name == "sources":
        return _sources(kind, root)
    if kind.held_whole:
        return [_entry(kind, root, p, hold=root) for p in _children(root)]
    folders = [root]
    for _ in range(kind.depth - 1):
        folders = [p for folder in folders for p in _children(folder) if p.is_dir()]
    entries = [
        _entry(kind, root, p, stale=kind.transient)
        for folder in folders
        for p in _children(folder)
        if p.is_dir()
    ]
    if kind.temp_marker:
        entries += [
            _entry(kind, root, temp, busy_lock=lock, stale=True)
            for temp, lock in _stale_temps(root, kind.temp_marker)
        ]
    return entries


@dataclasses.dataclass(frozen=True)
class KindUsage:
    kind: str
    path: Path
    entries: int
    size: int  # everything under the kind's directory


def usage(cache_root: Path | None = None) -> tuple[list[KindUsage], int]:
    """Per-kind sizes, and the bytes of everything else under the cache root ("other")."""
    root = cache_root or cache_home()
    rows = []
    for kind in KINDS:
        entries = scan(kind, root)
        folder = kind_root(kind.name, root)
        # the entries plus what lies beside them (locks, memos, name records)
        rest = tree_size(folder) if not entries else _size_besides(folder, {e.path for e in entries})
        rows.append(KindUsage(kind.name, folder, len(entries), sum(e.size for e in entries) + rest))
    known = {kind.subdir for kind in KINDS}
    other = sum(tree_size(p) for p in (root.iterdir() if root.is_dir() else []) if p.name not in known)
    return rows, other


def _size_besides(folder: Path, entries: set[Path]) -> int:
    """Bytes under `folder` outside the given entry paths (walked once more, entries pruned)."""
    total = 0
    for dirpath, dirs, files in os.walk(folder, onerror=lambda err: None):
        here = Path(dirpath)
        dirs[:] = [d for d in dirs if here / d not in entries]
        for name in files:
            if here / name in entries:
                continue
            try:
                total += os.lstat(here / name).st_size
            except OSError:
                continue
    return total
