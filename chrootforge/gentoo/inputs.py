"""The build inputs of a namespace: the stage3 and the portage tree, identified by content.

Identification (for cache keys) must say what the bytes are, never where they live:
- a stage is its file name and sha512: of a local file (the sha512 memoized by path, size, mtime and
  inode, so a no-op build does not hash), of the release that "latest" names right now (resolved on
  every run from the small signed latest file, then fetched or found in the source cache), or as
  the lock file pins it;
- a tree is the content hash of its directory (plus each extra repository's), or a snapshot's name
  and sha512, or what "latest" names right now, or what the lock pins.
Where a file came from goes to the log and the image's build state, never into a digest.

Verification (signature and digests) happens only when something is actually built; with a lock,
what is fetched must equal what the lock says, or the build stops. The public functions take the
namespace's inputs, so the hints of a failed fetch or check name its chrootforge.toml keys
(`sources.remedies`), never a flag of `chrootforge fetch`.
"""

from __future__ import annotations

import calendar
import email.utils
import functools
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from chrootforge import holds, lockfile, untrusted
from chrootforge.cache.kinds import bookkeeping, entry
from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.gentoo import lockcheck, repro
from chrootforge.gentoo.native_cpu import NativeCpu
from chrootforge.gentoo.state import tree_id
from chrootforge.sources import fetch, remedies
from chrootforge.sources.extract import extract_here
from chrootforge.sources.fetched import FetchedFile
from chrootforge.sources.mirrorlayout import StageRef, stage_arch
from chrootforge.spec.model import Namespace

_STAMP_RE = re.compile(r"(\d{8})T(\d{6})Z")
_SNAPSHOT_DATE_RE = re.compile(r"gentoo-(\d{8})\.")


@dataclass(frozen=True)
class Inputs:
    stage_id: str  # "<file name>:<sha512>"
    tree_id: str
    tree_path: Path | None  # the directory bound as the main tree (None: a snapshot)
    stage_release: StageRef | None = None  # the release of a mirror stage
    lock: lockfile.Lock | None = None
    stage_record: FetchedFile | None = None  # a mirror stage (fetched to know it)
    native: NativeCpu | None = None  # what -march=native means here, when the project uses it


def _namespace_hints(func):
    """Run `func(ns, ...)` with the source hints naming ns's chrootforge.toml keys."""

    @functools.wraps(func)
    def wrapper(ns: Namespace, *args, **kwargs):
        with remedies.for_namespace(ns.spec_path):
            return func(ns, *args, **kwargs)

    return wrapper


def _memo_sha512(path: Path) -> str:
    st = path.stat()
    memo_file = bookkeeping("stage-digests.json")
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    try:
        memo = untrusted.read_json(memo_file)
    except (OSError, ValueError):
        memo = {}
    if stamp in memo:
        return memo[stamp]
    h = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    with file_lock(memo_file.parent / ".stage-digests.lock"):
        try:
            memo = untrusted.read_json(memo_file)
        except (OSError, ValueError):
            memo = {}
        memo[stamp] = h.hexdigest()
        atomic_write(memo_file, json.dumps(memo, indent=1))
    return memo[stamp]


def stage_path(ns: Namespace, override: Path | None = None) -> Path | None:
    return override or ns.stage3.path


def _mismatch(what: str, got: str, locked: str, ns: Namespace) -> VerificationError:
    return lockcheck.mismatch(ns, what, got, locked, cut=True)


def _check_stage_arch(ns: Namespace, path: Path) -> None:
    """A local stage3 named the Gentoo way (stage3-<arch>-...) must be of the platform's arch: a
    ${VAR} that fell back from $VAR_<ARCH> to another platform's stage stops here."""
    arch = stage_arch(path.name)
    if arch is not None and arch != ns.stage3.arch:
        raise UsageError(
            f"stage3 {path.name} is a stage for {arch}, but the build is for {ns.platform}",
            hint=f"give the {ns.stage3.arch} stage3 for {ns.platform} in [stage3] path "
            f"(a ${{VAR}} there takes ${{VAR_{ns.platform.env_suffix}}} for this platform)",
        )


@_namespace_hints
def identify(ns: Namespace, stage_override: Path | None = None) -> Inputs:
    lock = lockfile.load(ns.root)
    release = None
    path = stage_path(ns, stage_override)
    if lock is not None:
        lockcheck.fits(ns, lock, path)  # before anything is fetched or hashed
    if path is not None:
        if not path.is_file():
            raise UsageError(
                f"stage3 {path} does not exist",
                hint=f"fix [stage3] path in {ns.spec_path} or run `chrootforge fetch stage3`",
            )
        _check_stage_arch(ns, path)
        sha512 = _memo_sha512(path)
        pinned = lockcheck.pinned_stage(ns, lock) if lock is not None else None
        if pinned is not None and sha512 != pinned.sha512:
            raise _mismatch(f"stage3 {path.name}: its sha512", sha512, pinned.sha512, ns)
        stage_id = f"{path.name}:{sha512}"
    elif lock is not None:
        pinned = lockcheck.pinned_stage(ns, lock)
        release = StageRef(ns.stage3.arch, pinned.release, pinned.name)  # fits: a mirror release
        stage_id = f"{pinned.name}:{pinned.sha512}"
    else:
        # "latest" is resolved on every run (the small signed latest file); the release it names is
        # fetched (from the source cache when it is there) so that its sha512 is known: the same
        # key then as with a lock pinning it.
        from chrootforge.sources.mirrorlayout import dated_stage

        s = ns.stage3
        release = dated_stage(s.arch, s.variant, s.date) if s.date else _latest_release(s)
        record = _fetch_mirror_stage(s, release=release)
        return Inputs(
            f"{record.name}:{record.sha512}", _tree_id(ns, lock), ns.tree.path, release, lock, record
        )
    return Inputs(stage_id, _tree_id(ns, lock), ns.tree.path, release, lock)


def _latest_release(s):
    """The release that the mirrors' "latest" names now (the small signed latest file)."""
    return fetch.resolve_stage3(s.arch, s.variant, list(s.mirrors) or None, s.keyrings, s.insecure)


def _fetch_mirror_stage(s, release=None, date: str | None = None):
    """The namespace's stage3 ([stage3] s) from its mirrors, or from the source cache."""
    return fetch.fetch_stage3(
        arch=s.arch,
        variant=s.variant,
        mirrors=list(s.mirrors) or None,
        date=date,
        keyrings=s.keyrings,
        insecure=s.insecure,
        release=release,
    )


def _tree_id(ns: Namespace, lock: lockfile.Lock | None) -> str:
    """The main tree's id, then every extra repository's name and content hash (whatever the main
    tree is: the build key has the repositories only through this)."""
    parts = [_main_tree_id(ns, lock)]
    for name, repo in sorted(ns.repos.items()):
        if not repo.is_dir():
            raise UsageError(f"repository {name}: {repo} is not a directory")
        rid = tree_id(repo)
        if lock is not None and name in lock.repos and rid != lock.repos[name]:
            raise _mismatch(f"repository {name}", rid, lock.repos[name], ns)
        parts.append(f"{name}:{rid}")
    return "+".join(parts)


def _main_tree_id(ns: Namespace, lock: lockfile.Lock | None) -> str:
    if ns.tree.path is not None:
        if not ns.tree.path.is_dir():
            raise UsageError(
                f"portage tree {ns.tree.path} is not a directory", hint=f"fix [tree] path in {ns.spec_path}"
            )
        main = tree_id(ns.tree.path)
        if lock is not None and lock.tree.id and main != lock.tree.id:
            raise _mismatch(f"the tree {ns.tree.path}", main, lock.tree.id, ns)
        return main
    if lock is not None and lock.tree.sha512:
        return f"snapshot:{lock.tree.name}:{lock.tree.sha512}"
    snap = ns.tree.snapshot_path
    if snap:
        return f"snapshot:{snap.name}:{_memo_sha512(snap)}"
    if ns.tree.snapshot and ns.tree.snapshot != "latest":
        return f"snapshot:gentoo-{ns.tree.snapshot}.tar.xz"

    return "snapshot:latest:" + fetch.resolve_snapshot(None)


@_namespace_hints
def fetch_stage(ns: Namespace, inputs: Inputs, stage_override: Path | None = None):
    """Verify (and fetch) the stage3 -> FetchedFile; with a lock, it must be the locked one."""
    s = ns.stage3
    path = stage_path(ns, stage_override)
    if path is not None:
        record = fetch.use_local_stage(path, keyrings=s.keyrings, insecure=s.insecure)
    elif inputs.stage_record is not None:
        record = inputs.stage_record
    else:
        # a dated release is served from the source cache when it is there: no network needed
        record = _fetch_mirror_stage(s, release=inputs.stage_release)
    if inputs.lock is not None:
        locked = lockcheck.pinned_stage(ns, inputs.lock)
        lockcheck.check_record(ns, "stage3", record, locked.name, locked.sha512, locked.signer)
    return record


@_namespace_hints
def resolve_tree(ns: Namespace, inputs: Inputs) -> tuple[Path, object | None]:
    """The main tree directory: the configured one, or a verified snapshot extracted once."""
    if ns.tree.path is not None:
        return ns.tree.path, None

    t = ns.tree
    locked = inputs.lock.tree if inputs.lock is not None else None
    if t.snapshot_path:
        record = fetch.use_local_snapshot(t.snapshot_path, keyrings=t.keyrings, insecure=t.insecure)
    else:
        dated = _SNAPSHOT_DATE_RE.match(locked.name) if locked else None
        date = dated.group(1) if dated else (None if t.snapshot == "latest" else t.snapshot)
        record = fetch.fetch_snapshot(date=date, keyrings=t.keyrings, insecure=t.insecure)
    if locked is not None:
        lockcheck.check_record(ns, "snapshot", record, locked.name, locked.sha512, locked.signer)
    return extracted_tree(record), record


def extracted_tree(record) -> Path:
    """A verified snapshot, extracted once into the tree cache (atomically, under a lock), held
    for the run (holds.current())."""
    dest = holds.current().hold(entry("trees", record.sha512[:32]))  # before looking: prune waits
    if dest.is_dir():
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        if dest.is_dir():
            return dest
        tmp = dest.parent / f".{dest.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed or failed earlier attempt
        try:
            extract_here(record.path, tmp)
            tops = [p for p in tmp.iterdir() if p.is_dir()]
            if len(tops) != 1:
                raise CfError(
                    f"snapshot {record.name}: expected one top directory, found "
                    f"{', '.join(sorted(p.name for p in tops)) or 'none'}",
                    hint="is this a Gentoo portage snapshot?",
                )
            tops[0].rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


@_namespace_hints
def resolve_lock(ns: Namespace, keep: lockfile.Lock | None = None) -> lockfile.Lock:
    """Resolve every input of `ns` now, fetch and verify it, and pin it. "latest" is resolved
    again, unless `keep` (the lock as it is: `lock` without --update) pins a release or a dated
    snapshot that still fits the spec: that one stays, fetched and verified again."""
    s = ns.stage3
    kept = keep if keep is not None and lockcheck.stage_problem(ns, keep, s.path) is None else None
    if s.path is not None:
        stage = fetch.use_local_stage(s.path, keyrings=s.keyrings, insecure=s.insecure)
        release = ""
    elif kept is not None:
        k = lockcheck.pinned_stage(ns, kept)
        release = k.release
        stage = _fetch_mirror_stage(s, release=StageRef(s.arch, release, k.name))
    else:
        ref = _latest_release(s) if not s.date else None
        stage = _fetch_mirror_stage(s, release=ref, date=s.date)
        release = ref.stamp if ref else (s.date or "")
    locked_stage = lockfile.LockedStage(
        stage.name, stage.sha512, stage.verified_by or "UNVERIFIED", release, s.arch
    )
    if kept is not None:  # the same release must still be the same bytes, signed by the same key
        k = lockcheck.pinned_stage(ns, kept)
        lockcheck.check_record(ns, "stage3", stage, k.name, k.sha512, k.signer)
    if ns.tree.path is not None:
        repos = {name: tree_id(path) for name, path in sorted(ns.repos.items())}
        return lockfile.Lock(locked_stage, lockfile.LockedTree(id=tree_id(ns.tree.path)), repos)
    t = ns.tree
    pinned = None  # the dated snapshot the lock took for "latest", kept without --update
    if keep is not None and t.snapshot == "latest" and lockcheck.tree_problem(ns, keep) is None:
        pinned = keep.tree if keep.tree.date else None
    if t.snapshot_path:
        record = fetch.use_local_snapshot(t.snapshot_path, keyrings=t.keyrings, insecure=t.insecure)
    else:
        date = pinned.date if pinned else (None if t.snapshot == "latest" else t.snapshot)
        record = fetch.fetch_snapshot(date=date, keyrings=t.keyrings, insecure=t.insecure)
    if pinned is not None:
        lockcheck.check_record(ns, "snapshot", record, pinned.name, pinned.sha512, pinned.signer)
    name, date = record.name, ""
    match = _SNAPSHOT_DATE_RE.match(name)
    if match:
        date = match.group(1)
    else:  # "latest": pin the dated snapshot it is, by the date inside it
        stamp = _snapshot_timestamp(extracted_tree(record))
        if stamp is not None:
            import time

            date = time.strftime("%Y%m%d", time.gmtime(stamp))
            name = f"gentoo-{date}.tar.xz"
    tree = lockfile.LockedTree(
        name=name, date=date, sha512=record.sha512, signer=record.verified_by or "UNVERIFIED"
    )
    return lockfile.Lock(locked_stage, tree, {})


# -- the build's one timestamp ------------------------------------------------------------------
def derived_epoch(stage_record, stage_newest_mtime: int | None, tree_dir: Path | None, tree_record) -> int:
    """SOURCE_DATE_EPOCH's stand-in, from content only: the stage3's release stamp (else the newest
    mtime inside the stage), and the snapshot's date; the later of the two. Never a file's mtime
    on this machine, never the clock."""
    times = []
    match = _STAMP_RE.search(stage_record.name) if stage_record is not None else None
    if match:
        times.append(calendar.timegm(_parse_stamp(match)))
    elif stage_newest_mtime is not None:
        times.append(stage_newest_mtime)
    if tree_record is not None:
        date = _SNAPSHOT_DATE_RE.match(tree_record.name)
        if date:
            times.append(calendar.timegm(_parse_day(date.group(1))))
        elif tree_dir is not None:
            stamp = _snapshot_timestamp(tree_dir)
            if stamp is not None:
                times.append(stamp)
    return max(times) if times else 0


def _parse_stamp(match):
    return time.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")


def _parse_day(day: str):
    return time.strptime(day, "%Y%m%d")


def _snapshot_timestamp(tree_dir: Path) -> int | None:
    """metadata/timestamp.chk of a snapshot ("Sat, 30 Nov 2024 00:45:01 +0000")."""
    try:
        text = (tree_dir / "metadata" / "timestamp.chk").read_text().strip()
        return int(email.utils.parsedate_to_datetime(text).timestamp())
    except (OSError, ValueError, TypeError):
        return None


def binpkg_key(ns: Namespace, inputs: Inputs, package_env: tuple = ()) -> str:
    """What makes binary packages interchangeable: the stage, the tree, the profile, make.conf and
    an image's per-package environment (CFLAGS in package.env: portage tells USE variants apart,
    --binpkg-respect-use, but never checks the flags a package was compiled with), with
    -march=native resolved to this machine's CPU (gentoo/native_cpu.py). It names the binpkgs
    directory, and so the binhost directory a build reads (gentoo/binhost.py)."""
    flags = inputs.native.resolve if inputs.native else str
    parts = {
        "platform": str(ns.platform),
        "stage": inputs.stage_id,
        "tree": inputs.tree_id,
        "profile": ns.tree.profile or "",
        "make_conf": {k: flags(v) for k, v in sorted(ns.make_conf.items())},
        "package_env": [[flags(x) for x in e] for e in package_env],
    }
    if inputs.native:  # the CPU "native" is here: its name and every target option gcc enabled
        parts["native"] = inputs.native.fingerprint()
    parts["repro"] = repro.key_parts()  # the flags every build adds (no build path)
    if epoch_override():  # packages embed the epoch (busybox's banner): another one, other binaries
        parts["source_date_epoch"] = epoch_override()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def epoch_override() -> str:
    """SOURCE_DATE_EPOCH as the caller set it, "" when unset. The build's epoch is then derived
    from the stage and the tree (derived_epoch), which every key hashes already; a caller's epoch
    is an input of its own: it reaches the config, the layers' mtimes and the compiled packages."""
    return os.environ.get("SOURCE_DATE_EPOCH", "").strip()


def package_env_of(image) -> tuple:
    """An image's per-package environment, as binpkg_key takes it."""
    return tuple(sorted((s.atom, *(f"{k}={v}" for k, v in s.env)) for s in image.package_settings if s.env))
