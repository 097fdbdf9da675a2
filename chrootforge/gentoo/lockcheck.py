"""Whether NS/chrootforge.lock fits the namespace's spec, and whether what was fetched is what it pins.

lockfile.py checks each field's grammar; this module checks the lock against the spec before
anything is fetched (`fits`), and each verified input against the lock after it was fetched or
found (`check_record`): its name, its sha512 and its signer (the verified signer's fingerprint must
equal the locked one). A lock that does not fit is never ignored: the build stops with one line
naming the lock file and the field.
"""

from __future__ import annotations

from pathlib import Path

from chrootforge import lockfile
from chrootforge.errors import VerificationError
from chrootforge.sources import grammar
from chrootforge.sources.mirrorlayout import stage_name


def _lock_path(ns) -> Path:
    return ns.root / lockfile.FILENAME


def mismatch(ns, what: str, got: str, locked: str, *, cut: bool = False) -> VerificationError:
    """`what` is `got`, but the lock pins `locked` (digests cut to a readable length)."""
    if cut:
        got, locked = f"{got[:24]}...", f"{locked[:24]}..."
    return VerificationError(
        f"{what} is {got}, but {_lock_path(ns)} pins {locked}",
        hint=f"the input changed since it was locked: restore it, or run "
        f"`chrootforge lock {ns.root} --update` to take the new one",
    )


def _stale(ns, problem: str) -> VerificationError:
    return VerificationError(
        f"{_lock_path(ns)} does not fit {ns.spec_path}: {problem}",
        hint=f"run `chrootforge lock {ns.root} --update` to pin what the spec names now",
    )


def fits(ns, lock: lockfile.Lock, stage_path: Path | None) -> None:
    """The lock pins inputs of the kind and name the spec asks for (no I/O)."""
    for problem in (stage_problem(ns, lock, stage_path), tree_problem(ns, lock)):
        if isinstance(problem, VerificationError):
            raise problem
        if problem is not None:
            raise _stale(ns, problem)


def stage_problem(ns, lock: lockfile.Lock, stage_path: Path | None) -> str | VerificationError | None:
    """Why the lock's [stage3] is not what the spec (or --stage3) names, or None."""
    s, locked = ns.stage3, lock.stage_for(ns.stage3.arch)
    if locked is None:
        return f"it pins no stage3 for {ns.platform} ({s.arch})"
    if stage_path is not None:
        if locked.name != stage_path.name:
            return mismatch(ns, f"the stage3 file {stage_path}: its name", stage_path.name, locked.name)
        return None
    if not locked.release:
        return "[stage3] name pins a local stage3 file, but [stage3] names no path"
    if s.date and s.date != locked.release:
        return f"[stage3] release is {locked.release}, but [stage3] date is {s.date}"
    base = stage_name(s.arch, s.variant)
    if not locked.name.startswith(f"{base}-{locked.release}.tar."):
        return f"[stage3] name {locked.name} is not a {base} stage ([stage3] arch, variant)"
    return None


def tree_problem(ns, lock: lockfile.Lock) -> str | VerificationError | None:
    """Why the lock's [tree] and [repos] are not what the spec names, or None."""
    t, tree = ns.tree, lock.tree
    if t.path is not None:
        if not tree.id:
            return "[tree] pins a snapshot, but [tree] path names a directory"
        if set(lock.repos) != set(ns.repos):
            return (
                f"[repos] pins {', '.join(sorted(lock.repos)) or 'no repository'}, but the spec names "
                f"{', '.join(sorted(ns.repos)) or 'none'}"
            )
        return None
    if tree.id:
        return "[tree] pins a directory (id), but [tree] snapshot names a snapshot"
    if t.snapshot_path is not None:
        if tree.name != t.snapshot_path.name:
            return mismatch(
                ns, f"the snapshot file {t.snapshot_path}: its name", t.snapshot_path.name, tree.name
            )
        return None
    problem = grammar.snapshot_file(tree.name)
    if problem:
        return f"[tree] name {problem}"
    if t.snapshot and t.snapshot != "latest" and tree.date != t.snapshot:
        return f"[tree] date is {tree.date or 'missing'}, but [tree] snapshot is {t.snapshot}"
    return None


def pinned_stage(ns, lock: lockfile.Lock) -> lockfile.LockedStage:
    """The lock's stage3 for the namespace's platform (`fits` made sure that it has one)."""
    stage = lock.stage_for(ns.stage3.arch)
    if stage is None:
        raise _stale(ns, f"it pins no stage3 for {ns.platform} ({ns.stage3.arch})")
    return stage


def check_record(ns, what: str, record, name: str, sha512: str, signer: str) -> None:
    """A verified input (a sources.FetchedFile) against what the lock pins for it."""
    if record.name != name:
        raise mismatch(ns, f"{what} {record.name}: its name", record.name, name)
    if record.sha512 != sha512:
        raise mismatch(ns, f"{what} {record.name}: its sha512", record.sha512, sha512, cut=True)
    if not grammar.same_signer(record.verified_by, signer):
        raise VerificationError(
            f"{what} {record.name} was verified as signed by {record.verified_by or grammar.UNVERIFIED}, "
            f"but {_lock_path(ns)} pins the signer {signer}",
            hint="the signing key is not the one the lock was made with: find out why before you "
            f"trust it; `chrootforge lock {ns.root} --update` pins the new signer",
        )
