"""Fetch a stage3 or a portage snapshot: discover, download, verify, then cache. The public API.

    fetch_stage3(arch="amd64", variant="openrc", mirrors=None, date=None, keyrings=(),
                 cache_dir=None, insecure=False, offline=False) -> FetchedFile
    fetch_snapshot(date=None, mirrors=None, keyrings=(), cache_dir=None, insecure=False,
                   offline=False) -> FetchedFile
    use_local_stage(path, keyrings=(), insecure=False, cache_dir=None) -> FetchedFile
    use_local_snapshot(path, keyrings=(), insecure=False, cache_dir=None) -> FetchedFile

Order of trust: the signature is checked on our own copy (in the cache's scratch dir), then the
digests, and only then is the file renamed into the cache. A verification failure is fatal at once
(no fallback to the next mirror: tampering is a signal, not an outage); a missing file or a failing
server moves on to the next mirror.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
from pathlib import Path
from urllib.parse import unquote

from chrootforge import log
from chrootforge.cache.kinds import source_area
from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.sources import compression, digests, download, remedies
from chrootforge.sources import mirrorlayout as layout
from chrootforge.sources.cache import SourceCache
from chrootforge.sources.fetched import FetchedFile
from chrootforge.sources.mirrors import resolve_mirrors
from chrootforge.sources.pinned import GENTOO_RELENG, GENTOO_SNAPSHOT
from chrootforge.sources.verify import (
    Verifier,
    keyring_fingerprints,
    unsigned_text_of_clearsigned,
)


def _warn_insecure(what: str) -> None:
    log.warn(
        f"{remedies.insecure()}: the {what} is NOT verified; anyone on the path could have "
        f"replaced it. The result is marked insecure and builds label the image so."
    )


@contextlib.contextmanager
def _verifier(pinned: str, keyrings, insecure: bool):
    if insecure:
        yield None
        return
    with Verifier((pinned,), keyrings) as verifier:
        yield verifier


# -- the cache remembers whom it trusted ----------------------------------------------------------
def _trusted(hit: FetchedFile | None, pinned: str, keyrings) -> FetchedFile | None:
    """A cache hit counts as verified only if its recorded signer is one this run trusts: the pinned
    fingerprint or a key of this run's --keyring. Otherwise it is verified again from the signature
    kept beside it, with this run's keys; if that fails, it is refused (VerificationError)."""
    if hit is None or hit.insecure:
        return hit
    signer = (hit.verified_by or "").upper()
    if signer == pinned.upper():
        return hit
    if keyrings and signer in keyring_fingerprints(keyrings):
        return hit
    log.info(
        f"{hit.name}: cached as verified by {signer or 'nobody'}, which this run does not trust "
        "by itself: checking its kept signature with this run's keys"
    )
    try:
        with Verifier((pinned,), keyrings) as verifier:
            if hit.kind == "snapshot":
                fpr = verifier.verify_detached(hit.path, _kept(hit, ".gpgsig"), hit.name)
            else:
                fpr = verifier.verify_detached(hit.path, _kept(hit, ".asc"), hit.name)
    except VerificationError as err:
        raise VerificationError(
            f"{hit.name} in the source cache was verified by {signer or 'nobody'}, "
            f"and this run does not trust that key: {err}",
            hint=f"give the signer's key with {remedies.keyring()}, or fetch the file again",
        ) from err
    return dataclasses.replace(hit, verified_by=fpr)


def _kept(hit: FetchedFile, suffix: str) -> Path:
    return hit.path.with_name(hit.path.name + suffix)


# -- stage3 --------------------------------------------------------------------------------------
def resolve_stage3(
    arch: str = "amd64", variant: str = "openrc", mirrors=None, keyrings=(), insecure: bool = False
) -> layout.StageRef:
    """The release that "latest" names right now: the small clearsigned latest file, verified."""
    if insecure:
        _warn_insecure("latest-stage3 file")
    failures: list[CfError] = []
    with _verifier(GENTOO_RELENG, keyrings, insecure) as verifier:
        for mirror in resolve_mirrors(mirrors):
            try:
                return _discover(mirror, arch, variant, verifier)
            except (download.NotFound, download.Unavailable) as err:
                log.info(f"mirror {mirror}: {err}")
                failures.append(err)
    raise CfError(
        f"cannot resolve the latest {layout.stage_name(arch, variant)} from any mirror: "
        + download.summarize(failures),
        hint=f"check the mirrors ({remedies.mirrors()}); {remedies.offline()}",
    )


def fetch_stage3(
    arch: str = "amd64",
    variant: str = "openrc",
    mirrors=None,
    date: str | None = None,
    keyrings=(),
    cache_dir=None,
    insecure: bool = False,
    offline: bool = False,
    release: layout.StageRef | None = None,
) -> FetchedFile:
    """release: an exact release (from resolve_stage3 or a lock file); it wins over `date`."""
    cache = SourceCache(cache_dir)
    base = layout.stage_name(arch, variant)
    if release is not None:
        date = release.stamp
    if date:
        ref = release or layout.dated_stage(arch, variant, date)
        hit = None if insecure else _trusted(cache.lookup(ref.cache_key), GENTOO_RELENG, keyrings)
        if hit:
            log.info(f"{ref.filename}: cached ({hit.path})")
            return hit
    elif offline:
        hit = _trusted(_newest_named(cache, arch, base), GENTOO_RELENG, keyrings)
        if hit:
            log.info(f"offline: newest cached {base} is {hit.name}")
            return hit
    if offline:
        raise CfError(
            f"--offline: no cached {base}" + (f" for {date}" if date else ""),
            hint="fetch it once while online, or use --stage3 PATH",
        )
    if insecure:
        _warn_insecure("stage3")
    mirror_list = resolve_mirrors(mirrors)
    failures: list[CfError] = []
    with _verifier(GENTOO_RELENG, keyrings, insecure) as verifier:
        for mirror in mirror_list:
            try:
                ref = (
                    (release or layout.dated_stage(arch, variant, date))
                    if date
                    else _discover(mirror, arch, variant, verifier)
                )
                hit = None if insecure else _trusted(cache.lookup(ref.cache_key), GENTOO_RELENG, keyrings)
                if hit:
                    log.info(f"{ref.filename}: cached ({hit.path})")
                    return hit
                return _download_stage(cache, mirror, ref, verifier)
            except (download.NotFound, download.Unavailable) as err:
                log.info(f"mirror {mirror}: {err}")
                failures.append(err)
    what = f"{base}" + (f" {date}" if date else " (latest)")
    raise CfError(
        f"could not fetch {what} from any mirror: " + download.summarize(failures),
        hint=f"check {remedies.stage_choice()} and the mirrors ({remedies.mirrors()}); {remedies.offline()}",
    )


def _newest_named(cache: SourceCache, arch: str, base: str) -> FetchedFile | None:
    best = None
    names = source_area(cache.root, "names")
    for path in names.glob("*.json") if names.is_dir() else ():
        key = unquote(path.name[:-5])
        if key.startswith(f"stage3/{arch}/") and key.rsplit("/", 1)[-1].startswith(f"{base}-"):
            hit = cache.lookup(key)
            if hit and (best is None or key > best[0]):
                best = (key, hit)
    return best[1] if best else None


def _discover(mirror: str, arch: str, variant: str, verifier: Verifier | None) -> layout.StageRef:
    url = layout.join(mirror, layout.latest_relpath(arch, variant))
    raw = download.get_small(url)
    if verifier is None:
        text = unsigned_text_of_clearsigned(raw)
    else:
        text, _ = verifier.verify_clearsigned(raw, f"latest file {url}")
    ref = layout.parse_latest(text, arch, variant)
    log.info(f"latest {layout.stage_name(arch, variant)}: {ref.stamp} ({ref.filename})")
    return ref


def _download_stage(
    cache: SourceCache, mirror: str, ref: layout.StageRef, verifier: Verifier | None
) -> FetchedFile:
    url = layout.join(mirror, ref.relpath)
    partial = cache.partial_path(url)
    with cache.download_lock(partial), cache.scratch() as scratch:
        hit = (
            None
            if verifier is None
            else _trusted(cache.lookup(ref.cache_key), GENTOO_RELENG, verifier.keyrings)
        )
        if hit:  # another process fetched it while we waited for the lock
            return hit
        asc = cache.file_in(scratch, f"{ref.filename}.asc")
        dig = cache.file_in(scratch, f"{ref.filename}.DIGESTS")
        download.get_file(url, partial, label=ref.filename, expected_size=ref.size)
        local = cache.file_in(scratch, ref.filename)
        shutil.move(partial, local)  # from here on the file is ours: verify this very copy
        try:
            asc.write_bytes(_get_optional(url + ".asc", verifier is None))
            dig.write_bytes(_get_optional(url + ".DIGESTS", verifier is None))
        except download.NotFound as err:
            raise VerificationError(
                f"{ref.filename}: the mirror has no .asc or .DIGESTS beside it",
                hint="no signature, no trust; try another mirror",
            ) from err
        record = _verify_stage_files(local, asc, dig, verifier, url)
        return cache.store(local, record, key=ref.cache_key, extras={".asc": asc, ".DIGESTS": dig})


def _get_optional(url: str, insecure: bool) -> bytes:
    try:
        return download.get_small(url)
    except download.NotFound:
        if insecure:
            return b""
        raise


def _verify_stage_files(
    local: Path, asc: Path, dig: Path, verifier: Verifier | None, source: str
) -> FetchedFile:

    compression.sniff(local)  # an HTML error page or an empty file: say so plainly
    fpr = None
    if verifier is not None:
        fpr = verifier.verify_detached(local, asc, local.name)
    sha512, blake2b = digests.hash_file(local)
    text = dig.read_text(errors="replace") if dig.is_file() else ""
    if verifier is not None or text.strip():
        digests.check_digests(digests.parse_digests(text, local.name), sha512, blake2b, local.name)
    return FetchedFile(local, sha512, blake2b, fpr, source, "stage3", verifier is None)


def _local_key(kind: str, src: Path) -> str:
    """A cache name for a local file *and its signature files* as they are now.

    ctime cannot be set by users and changes with any write, rename or chmod, so an unchanged
    (dev, inode, size, ctime) of the file and of what sits beside it means the verified copy stands.
    """
    parts = []
    for path in (src, *(Path(f"{src}{suffix}") for suffix in (".asc", ".DIGESTS", ".gpgsig"))):
        try:
            st = path.stat()
        except FileNotFoundError:
            parts.append(f"{path.name}:-")
            continue
        parts.append(f"{path.name}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_ctime_ns}")
    digest = hashlib.sha256(f"{src.absolute()}|{'|'.join(parts)}".encode()).hexdigest()[:32]
    return f"local/{kind}/{digest}"


def _local_start(path, kind: str, what: str, insecure: bool, cache_dir, keyrings):
    """Common start of the air-gapped paths: check the file, and reuse an earlier verification of it
    when the file is unchanged (same inode, size and ctime) and its signer is trusted by this run."""
    src = Path(path)
    if not src.is_file():
        flag = "--stage3" if kind == "stage3" else "--snapshot"
        raise UsageError(f"{flag} {src}: no such file")
    if insecure:
        _warn_insecure(what)
    cache = SourceCache(cache_dir)
    memo_key = _local_key(kind, src)
    pinned = GENTOO_RELENG if kind == "stage3" else GENTOO_SNAPSHOT
    hit = None if insecure else _trusted(cache.lookup(memo_key), pinned, keyrings)
    if hit:
        log.info(f"{src.name}: unchanged since it was verified by {hit.verified_by} ({hit.path})")
    return src, cache, memo_key, hit


def use_local_stage(path, keyrings=(), insecure: bool = False, cache_dir=None) -> FetchedFile:
    """An air-gapped stage: PATH with PATH.asc and PATH.DIGESTS beside it. Same checks, no network."""
    src, cache, memo_key, hit = _local_start(path, "stage3", "stage3", insecure, cache_dir, keyrings)
    if hit:
        return hit
    with _verifier(GENTOO_RELENG, keyrings, insecure) as verifier, cache.scratch() as scratch:
        local = cache.file_in(scratch, src.name)
        shutil.copyfile(src, local)  # verify our own copy: the original may change under us
        asc, dig = cache.file_in(scratch, f"{src.name}.asc"), cache.file_in(scratch, f"{src.name}.DIGESTS")
        for beside, copy in ((Path(f"{src}.asc"), asc), (Path(f"{src}.DIGESTS"), dig)):
            if beside.is_file():
                shutil.copyfile(beside, copy)
            elif not insecure:
                raise VerificationError(
                    f"{beside} is missing", hint="keep the .asc and .DIGESTS files beside the stage tarball"
                )
        record = _verify_stage_files(local, asc, dig, verifier, src.absolute().as_uri())
        return cache.store(
            local,
            record,
            key=memo_key,
            extras={s: p for s, p in ((".asc", asc), (".DIGESTS", dig)) if p.is_file()},
        )


# -- snapshots -----------------------------------------------------------------------------------
def resolve_snapshot(mirrors=None) -> str:
    """What "latest" names right now, as content: the sha256 of gentoo-latest's detached signature
    (small; a new publication carries a new signature). Used as the tree's identity in cache keys."""
    failures: list[CfError] = []
    for mirror in resolve_mirrors(mirrors):
        url = layout.join(mirror, f"snapshots/{layout.snapshot_filename(None)}.gpgsig")
        try:
            return "sig-sha256:" + hashlib.sha256(download.get_small(url)).hexdigest()
        except (download.NotFound, download.Unavailable) as err:
            failures.append(err)
    raise CfError(
        "cannot resolve the latest portage snapshot from any mirror: " + download.summarize(failures),
        hint=f"check the mirrors ({remedies.mirrors()}); {remedies.offline()}",
    )


def fetch_snapshot(
    date: str | None = None,
    mirrors=None,
    keyrings=(),
    cache_dir=None,
    insecure: bool = False,
    offline: bool = False,
) -> FetchedFile:
    cache = SourceCache(cache_dir)
    filename = layout.snapshot_filename(date)
    key = f"snapshot/{filename}"
    if date and not insecure:
        hit = _trusted(cache.lookup(key), GENTOO_SNAPSHOT, keyrings)
        if hit:
            log.info(f"{filename}: cached ({hit.path})")
            return hit
    if offline:
        hit = _trusted(cache.lookup(key) or cache.newest("snapshot/gentoo-2"), GENTOO_SNAPSHOT, keyrings)
        if hit:
            return hit
        raise CfError(
            f"--offline: no cached {filename}", hint="fetch it once while online, or --snapshot PATH"
        )
    if insecure:
        _warn_insecure("portage snapshot")
    failures: list[CfError] = []
    with _verifier(GENTOO_SNAPSHOT, keyrings, insecure) as verifier:
        for mirror in resolve_mirrors(mirrors):
            url = layout.join(mirror, f"snapshots/{filename}")
            try:
                # `latest` is recorded too (overwritten by each fetch): --offline falls back to it
                return _download_snapshot(cache, url, filename, key, verifier, latest=not date)
            except (download.NotFound, download.Unavailable) as err:
                log.info(f"mirror {mirror}: {err}")
                failures.append(err)
    raise CfError(
        f"could not fetch {filename} from any mirror: " + download.summarize(failures),
        hint=f"check {remedies.snapshot_choice()} and the mirrors ({remedies.mirrors()}); "
        f"{remedies.offline()}",
    )


def _download_snapshot(
    cache: SourceCache, url: str, filename: str, key: str, verifier: Verifier | None, *, latest: bool
) -> FetchedFile:
    with cache.scratch() as scratch:
        sig = cache.file_in(scratch, f"{filename}.gpgsig")
        try:
            sig.write_bytes(_get_optional(url + ".gpgsig", verifier is None))
        except download.NotFound as err:
            raise VerificationError(
                f"{filename}: the mirror has no .gpgsig beside it",
                hint="no signature, no trust; try another mirror",
            ) from err
        if verifier is not None and latest:
            hit = _trusted(
                cache.find_by_signature(filename, sig.read_bytes(), ".gpgsig"),
                GENTOO_SNAPSHOT,
                verifier.keyrings,
            )
            if hit:
                log.info(f"{filename}: unchanged since the last fetch (same signature), cached")
                return hit
        partial = cache.partial_path(url)
        with cache.download_lock(partial):
            download.get_file(url, partial, label=filename)
            local = cache.file_in(scratch, filename)
            shutil.move(partial, local)
        record = _verify_snapshot_files(local, sig, verifier, url)
        return cache.store(local, record, key=key, extras={".gpgsig": sig})


def _verify_snapshot_files(local: Path, sig: Path, verifier: Verifier | None, source: str) -> FetchedFile:
    compression.sniff(local)
    fpr = verifier.verify_detached(local, sig, local.name) if verifier is not None else None
    sha512, blake2b = digests.hash_file(local)
    return FetchedFile(local, sha512, blake2b, fpr, source, "snapshot", verifier is None)


def use_local_snapshot(path, keyrings=(), insecure: bool = False, cache_dir=None) -> FetchedFile:
    """An air-gapped snapshot: PATH with PATH.gpgsig (or PATH.asc) beside it."""
    src, cache, memo_key, hit = _local_start(
        path, "snapshot", "portage snapshot", insecure, cache_dir, keyrings
    )
    if hit:
        return hit
    with _verifier(GENTOO_SNAPSHOT, keyrings, insecure) as verifier, cache.scratch() as scratch:
        local = cache.file_in(scratch, src.name)
        shutil.copyfile(src, local)
        sig = cache.file_in(scratch, f"{src.name}.gpgsig")
        beside = next((p for p in (Path(f"{src}.gpgsig"), Path(f"{src}.asc")) if p.is_file()), None)
        if beside is not None:
            shutil.copyfile(beside, sig)
        elif not insecure:
            raise VerificationError(f"{src}.gpgsig is missing", hint="keep the signature beside the snapshot")
        record = _verify_snapshot_files(local, sig, verifier, src.absolute().as_uri())
        return cache.store(local, record, key=memo_key, extras={".gpgsig": sig} if sig.is_file() else None)
