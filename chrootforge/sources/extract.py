"""Safe, fast extraction of a (compressed) tarball into a directory that does not exist yet.

Pipeline: a decompressor -> TarStreamChecker (every header is checked before its bytes move on) ->
GNU `tar -x` into a temp dir beside `dest`, renamed onto `dest` only on success. Any refusal kills tar
and removes the temp dir, so nothing is ever half-extracted. xz, gzip and bzip2 are decompressed by a
(multi-threaded) subprocess, whose big members move on to tar by splice; zstd, which decompresses
faster than tar writes files, is decompressed here, straight into a reused buffer: one process and
two copies of every byte fewer than a zstd subprocess (bench/bench_sources.py).

Owners depend on the uid mapping: `extract()` runs `extract_here()` under the build's mapping
(chrootforge.sandbox.call_mapped), so files land with the owners that builds will see, and the
temp dir can be removed by the same mapped root. A single-id mapping has no id but 0: there every
file belongs to 0, and the archive's other owners are recorded in the user.rootlesscontainers xattr
(chrootforge.ownerxattr), from the headers the checker saw, so that they reach the images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

import zstandard

from chrootforge import errors, log, ownerxattr
from chrootforge.errors import CfError, VerificationError
from chrootforge.progress import ByteProgress
from chrootforge.rootpath import PathRefused, RootDir
from chrootforge.sandbox import call_mapped, check_reachable, owned_dir, remove_tree
from chrootforge.sandbox.idmap import detect_idmap
from chrootforge.sources import compression
from chrootforge.sources.tarcheck import TarStreamChecker

_CHUNK = 1 << 20
_ZSTD_CHUNK = 256 << 10  # decompressed bytes per piece: small enough to stay in cache until written
_SPLICE_MIN = 256 << 10  # big members' data moves pipe-to-pipe in the kernel (no copies through us)
_F_SETPIPE_SZ = 1031

# xattrs: what stages carry (file capabilities, user.* such as user.pax.flags), never overlayfs'
# control attributes (user.overlay.* steers a userxattr overlay built on this tree), trusted.* or SELinux
TAR_ARGS = [
    "-x",
    "-p",
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=user.*",
    "--xattrs-include=security.capability",
    "--xattrs-exclude=user.overlay.*",
    "--xattrs-exclude=user.rootlesscontainers",  # recorded owners: only chrootforge writes them
    "--warning=no-unknown-keyword",
    "-f",
    "-",
]


def tar_argv(dest: Path, same_owner: bool = True) -> list[str]:
    # (namespace) root keeps the archive's owners; a plain user (extract_here on a read-only tree
    # such as a portage snapshot) gets its own: chown would fail there, as it does for any id but 0
    # in a single-id namespace (same_owner=False: the owners are recorded instead)
    owner = "--same-owner" if os.geteuid() == 0 and same_owner else "--no-same-owner"
    return ["tar", *TAR_ARGS, owner, "-C", str(dest)]


@dataclasses.dataclass(frozen=True)
class ExtractResult:
    dest: Path
    members: int
    skipped_dev: int
    newest_mtime: int | None = None
    recorded: int = 0  # single-id: owners recorded in xattrs
    unrecorded: tuple[str, ...] = ()  # single-id: members whose owner no xattr can hold (symlinks)


def _grow_pipe(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _writev_all(fd: int, chunks: list) -> None:
    """Gather-write the forwarded pieces of one read without joining them (no extra copy)."""
    while chunks:
        batch = chunks[:1024]  # IOV_MAX
        written = os.writev(fd, batch)
        total = sum(len(c) for c in batch)
        if written == total:
            chunks = chunks[1024:]
            continue
        rest = []
        for chunk in batch:  # a partial write: drop what went out, keep the rest in order
            if written >= len(chunk):
                written -= len(chunk)
                continue
            rest.append(memoryview(chunk)[written:])
            written = 0
        chunks = rest + chunks[1024:]


def _fd_chunks(fd: int):
    while data := os.read(fd, _CHUNK):
        yield data


class _ZstdPieces:
    """A zstd file decompressed by a thread into a ring of reused buffers; iterate for the pieces.

    Each piece is a view that stays valid until the next one is asked for. zstandard releases the
    GIL while it decompresses, so decompression runs beside the header checks and the writes to tar.
    """

    def __init__(self, tarball: Path, buffers: int = 4) -> None:
        self.tarball = tarball
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._full: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(buffers):
            self._free.put(bytearray(_ZSTD_CHUNK))
        self._thread = threading.Thread(target=self._run, name="zstd", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.tarball, "rb") as source:
                reader = zstandard.ZstdDecompressor().stream_reader(
                    source, read_size=_CHUNK, read_across_frames=True
                )
                while (buf := self._free.get()) is not None:
                    n = reader.readinto(buf)
                    if not n:
                        break  # a stream cut short ends early: the checker finds the archive truncated
                    self._full.put((buf, n))
            self._full.put(None)
        except zstandard.ZstdError as err:
            self._full.put(
                VerificationError(
                    f"{self.tarball}: corrupt zstd stream ({err})", hint="the file is damaged; fetch it again"
                )
            )
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread, raised there
            self._full.put(err)

    def __iter__(self):
        while (item := self._full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            yield memoryview(buf)[:n]
            self._free.put(buf)

    def close(self) -> None:
        self._free.put(None)  # wakes a thread waiting for a buffer: it stops
        self._thread.join()


def _stream(tarball: Path, tmp: Path, skip_dev: bool, record_owners: bool = False) -> TarStreamChecker:
    kind = compression.sniff(tarball)
    decomp_argv = compression.decompressor(kind) if kind != "zstd" else None
    checker = TarStreamChecker(skip_top="dev" if skip_dev else None, record_owners=record_owners)
    with contextlib.ExitStack() as stack:
        # the archive's bytes as they go to tar (a stage takes a minute under TCG: say so)
        progress = stack.enter_context(ByteProgress(f"extracting {tarball.name}"))
        err_tar = stack.enter_context(tempfile.TemporaryFile())
        err_dec = stack.enter_context(tempfile.TemporaryFile())
        tar = subprocess.Popen(
            tar_argv(tmp, same_owner=not record_owners),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err_tar,
        )
        procs = [tar]
        tar_in = _piped(tar.stdin)
        stack.callback(_close_quietly, tar_in)
        _grow_pipe(tar_in.fileno())
        decomp, in_fd = None, None
        if kind == "zstd":
            pieces = stack.enter_context(contextlib.closing(_ZstdPieces(tarball)))
        elif decomp_argv:
            decomp = subprocess.Popen(
                [*decomp_argv, str(tarball)], stdout=subprocess.PIPE, stderr=err_dec, stdin=subprocess.DEVNULL
            )
            procs.append(decomp)
            decomp_out = _piped(decomp.stdout)
            stack.callback(decomp_out.close)
            _grow_pipe(decomp_out.fileno())
            in_fd = decomp_out.fileno()
        else:
            in_fd = stack.enter_context(open(tarball, "rb", buffering=0)).fileno()
        if in_fd is not None:
            pieces = _fd_chunks(in_fd)

        @stack.callback  # registered last, so it runs first: kill before tar could see an EOF
        def _reap() -> None:  # on any failure: no process outlives us
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

        out_fd = tar_in.fileno()
        try:
            for data in pieces:
                chunks = checker.feed(data)
                if chunks:
                    _writev_all(out_fd, chunks)  # before the next piece: zstd pieces share a buffer
                progress.update(len(data))
                left, forward = checker.pending_data()
                if in_fd is not None and forward and left >= _SPLICE_MIN:
                    moved = _splice(in_fd, out_fd, left)
                    checker.consumed_data(moved)
                    progress.update(moved)
            if decomp is not None and decomp.wait() != 0:
                err_dec.seek(0)
                detail = err_dec.read().decode(errors="replace").strip().splitlines()
                raise VerificationError(
                    f"{tarball}: corrupt or truncated {kind} stream" + (f" ({detail[-1]})" if detail else ""),
                    hint="the file is damaged; fetch it again",
                )
            _writev_all(out_fd, checker.finish())
        except BrokenPipeError:
            pass  # tar stopped early: its exit status and message explain why
        _close_quietly(tar_in)
        if tar.wait() != 0:
            err_tar.seek(0)
            lines = err_tar.read().decode(errors="replace").strip().splitlines()
            raise CfError(
                f"tar failed extracting {tarball}: {'; '.join(lines[-3:]) or tar.returncode}",
                hint="see tar's message; the partial extraction was removed",
            )
        return checker


def _splice(in_fd: int, out_fd: int, count: int) -> int:
    """Move up to `count` bytes in the kernel; returns how many moved (fewer only at end of input)."""
    moved = 0
    while moved < count:
        try:
            n = os.splice(in_fd, out_fd, count - moved)
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.ENOSYS) and moved == 0:
                return 0  # not spliceable here: the read loop carries the data instead
            raise
        if n == 0:
            break
        moved += n
    return moved


def _piped(stream: IO[bytes] | None) -> IO[bytes]:
    """A Popen pipe end asked for with subprocess.PIPE (always there; typed Optional)."""
    if stream is None:
        raise CfError("internal error: a subprocess pipe is missing")
    return stream


def _close_quietly(stream) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        stream.close()


def extract_here(
    tarball: str | os.PathLike, dest: str | os.PathLike, skip_dev: bool = True, record_owners: bool = False
) -> ExtractResult:
    """Extract with the current credentials (the caller is already under the right mapping).
    record_owners: every file becomes ours, and the archive's owners are recorded in xattrs."""
    tarball, dest = Path(tarball).resolve(), Path(dest).absolute()
    if dest.exists() or dest.is_symlink():
        raise errors.UsageError(f"{dest} already exists", hint="extract into a new directory")
    if not dest.parent.is_dir():
        raise errors.UsageError(f"{dest.parent} is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    unrecorded: list[str] = []
    try:
        tmp.chmod(0o755)
        checker = _stream(tarball, tmp, skip_dev, record_owners)
        if checker.owners:
            unrecorded = _record_owners(tmp, checker.owners)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stats = checker.stats
    recorded = len(checker.owners or ()) - len(unrecorded)
    return ExtractResult(
        dest, stats.members, stats.skipped_dev, stats.newest_mtime, recorded, tuple(unrecorded)
    )


def _record_owners(tree: Path, owners: dict[tuple[str, ...], tuple[int, int]]) -> list[str]:
    """Record the archive's owners on the extracted files (through the root-confined resolver:
    the tree is the archive's, its symlinks are never followed); the names that cannot hold one."""
    unrecorded = []
    with RootDir(tree) as root:
        for parts, (uid, gid) in owners.items():
            rel = "/".join(parts)
            try:
                with root.locate(rel, follow=False, what="archive member") as loc:
                    where = ownerxattr.fd_path(loc.dirfd, loc.entry) if loc.name else str(tree)
                    if not ownerxattr.record(where, uid, gid):
                        unrecorded.append(f"/{rel} ({uid}:{gid})")
            except (FileNotFoundError, PathRefused):
                continue  # replaced by a later member of another kind (tar's last one wins)
    return unrecorded


def extract(tarball, dest: str | os.PathLike, idmap=None, *, skip_dev: bool = True) -> ExtractResult:
    """Extract `tarball` (a path or a FetchedFile) into the new directory `dest` under `idmap`.

    The work runs as id 0 of a user namespace with the mapping (chrootforge.sandbox.call_mapped),
    so owners 0..65535 land as the builds will see them. It extracts into a private directory
    beside `dest` that the namespace's root owns, and `dest` appears only once everything is in.
    Raises UnsafeArchive/VerificationError naming the offending member.
    """
    tarball = Path(getattr(tarball, "path", tarball)).resolve()
    dest = Path(dest).absolute()
    if not tarball.is_file():
        raise errors.UsageError(f"{tarball} is not a file")
    if dest.exists() or dest.is_symlink():
        raise errors.UsageError(f"{dest} already exists", hint="extract into a new directory")
    if not dest.parent.is_dir():
        raise errors.UsageError(f"{dest.parent} is not a directory")
    idmap = idmap or detect_idmap()
    check_reachable(tarball, idmap, "stage tarball")
    check_reachable(dest.parent, idmap, "extraction directory", enter=True)
    private = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        owned_dir(private, idmap)
        result = call_mapped(idmap, extract_here, tarball, private / "tree", skip_dev, idmap.single_id)
        os.rename(private / "tree", dest)
    finally:
        remove_tree(private, idmap)
    if result.skipped_dev:
        log.notice(f"skipped {result.skipped_dev} entries under /dev (the sandbox provides /dev)")
    if idmap.single_id and (result.recorded or result.unrecorded):
        log.notice(
            f"single-id: {result.recorded} files of {tarball.name} belong to other ids than 0; "
            "their owners are recorded in the user.rootlesscontainers xattr"
        )
    if result.unrecorded:
        log.warn(
            f"single-id: the owners of {len(result.unrecorded)} symlinks of {tarball.name} cannot "
            f"be recorded (no xattr on symlinks); they belong to 0 here: "
            + ", ".join(result.unrecorded[:5])
            + (" ..." if len(result.unrecorded) > 5 else "")
        )
    return dataclasses.replace(result, dest=dest)
