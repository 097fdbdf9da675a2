"""The OCI layout on disk: oci-layout, index.json and the content-addressed blob store.

Blobs are written to `<layout>/.tmp/` and renamed into blobs/sha256/ once complete (fsynced), so a
blob name always matches its content. index.json is only ever replaced atomically, under an flock on
`<layout>/.index.lock`, after every blob it references is in place: a crash at any point leaves the
previous tags valid (at worst a stray temp file or unreferenced blob).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Self

from chrootforge import untrusted
from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.fsutil import atomic_write, file_lock, read_regular, start_writeback
from chrootforge.oci import mediatypes as mt

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
MAX_INDEX = 64 << 20  # index.json: about 200,000 tags
WRITEBACK = 8 << 20  # a blob being written goes to disk in pieces this big (fsutil.start_writeback)


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise CfError(f"unsupported or malformed digest {digest!r}")
    return Path(layout) / "blobs" / "sha256" / hexpart


def _writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CfError(
            f"cannot create {path}: {err.strerror}", hint="choose a --layout directory you can write to"
        ) from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise CfError(f"{path} is not writable", hint="choose a --layout directory you can write to")


def check_layout_target(layout: str | os.PathLike) -> Path:
    """Refuse a path a layout may not be written at, before anything is created there or beside
    it: anything but a directory (a device, a file, ...), or a non-empty directory that is not a
    layout."""
    layout = Path(layout)
    if layout.exists() and not layout.is_dir():
        raise UsageError(
            f"{layout} exists and is not a directory", hint="give a new directory or an OCI layout"
        )
    # Only the names a concurrent commit may be creating right now are tolerated.
    skeleton = {".tmp", ".index.lock", "blobs", "index.json", "oci-layout"}
    if (
        layout.is_dir()
        and not (layout / "oci-layout").exists()
        and any(
            p.name not in skeleton and not p.name.startswith((".oci-layout.", ".index.json."))
            for p in layout.iterdir()
        )
    ):
        raise UsageError(
            f"{layout} is not an OCI layout and not empty",
            hint="give an empty or new directory, or an existing OCI layout",
        )
    return layout


def ensure_layout(layout: str | os.PathLike) -> Path:
    """Create the layout skeleton if needed (check_layout_target refuses what is not one)."""
    layout = check_layout_target(layout)
    _writable(layout / "blobs" / "sha256")
    _writable(layout / ".tmp")
    with file_lock(layout / ".index.lock"):
        if not (layout / "oci-layout").exists():
            atomic_write(layout / "oci-layout", canonical_json(LAYOUT_VERSION))
        if not (layout / "index.json").exists():
            atomic_write(
                layout / "index.json",
                canonical_json({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": []}),
            )
    _clean_stale_temps(layout / ".tmp")
    return layout


def view_dir(layout: Path) -> Path:
    """A new directory in <layout>/.tmp for a process's scratch layout (a pull's check)."""
    path = Path(layout) / ".tmp" / f"view.{os.getpid()}.{os.urandom(6).hex()}"
    path.mkdir()
    return path


def _stale_temps(tmpdir: Path) -> list[Path]:
    """Temp blobs and views of processes that died (their pid is in the name)."""
    out = []
    for path in sorted([*tmpdir.glob("blob.*.tmp"), *tmpdir.glob("view.*")]):
        try:
            os.kill(int(path.name.split(".")[1]), 0)
        except ProcessLookupError:
            out.append(path)
        except (ValueError, PermissionError, IndexError):
            pass
    return out


def _remove_temp(path: Path) -> None:
    """A temp blob, or a pull's scratch view (a directory)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _temp_size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*"))
    return path.lstat().st_size


def _clean_stale_temps(tmpdir: Path) -> None:
    for path in _stale_temps(tmpdir):
        with contextlib.suppress(OSError):
            _remove_temp(path)


def _not_a_layout_dir(layout: Path) -> UsageError:
    """What is wrong with a layout path that is not a directory, with the likely intent."""
    if layout.exists():
        return UsageError(f"{layout} is not a directory (an OCI layout is a directory)")
    hint = None
    for parent in layout.parents:
        if (parent / "oci-layout").is_file():  # `out/layout/nginx` meant `out/layout:nginx`
            hint = f"did you mean {parent}:{layout.relative_to(parent)}?"
            break
    return UsageError(f"{layout} does not exist", hint=hint)


def open_layout(layout: str | os.PathLike) -> Path:
    """Check that `layout` is an OCI layout we can read."""
    layout = Path(layout)
    marker = layout / "oci-layout"
    if not layout.is_dir():
        raise _not_a_layout_dir(layout)
    try:
        data = untrusted.loads_json(read_regular(marker, 4096), str(marker))
    except FileNotFoundError as err:
        raise UsageError(
            f"{layout} is not an OCI layout (no oci-layout file)",
            hint="give the directory that holds oci-layout, index.json and blobs/",
        ) from err
    except untrusted.BadDocument as err:
        raise UsageError(str(err)) from err
    except OSError as err:
        raise UsageError(f"{marker} is unreadable: {err.strerror or err}") from err
    if not isinstance(data, dict) or data.get("imageLayoutVersion") != "1.0.0":
        raise UsageError(f"{layout}: unsupported oci-layout {data!r}")
    return layout


def read_index(layout: Path) -> dict:
    """index.json, with every entry checked to be a well-formed descriptor (shapes.index)."""
    from chrootforge.oci import shapes

    path = Path(layout) / "index.json"
    try:
        index = untrusted.loads_json(read_regular(path, MAX_INDEX), str(path))
    except FileNotFoundError as err:
        raise UsageError(f"{layout} has no index.json") from err
    except untrusted.BadDocument:
        raise
    except OSError as err:
        raise CfError(f"{path} is unreadable: {err.strerror or err}") from err
    shapes.index(index, str(path))
    index.setdefault("manifests", [])
    return index


def update_index(layout: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    """Apply `change` to the index's manifests under the layout lock; replace index.json atomically."""
    Staging(Path(layout)).publish(change)


def tagged(index: dict) -> dict[str, dict]:
    """ref.name -> descriptor."""
    out = {}
    for desc in index.get("manifests", []):
        name = (desc.get("annotations") or {}).get(mt.REF_NAME)
        if name:
            out[name] = desc
    return out


class BlobWriter:
    """A temp file in <layout>/.tmp that becomes blobs/sha256/<digest>: either at once (commit()),
    or together with an index change through a Staging (finish() then Staging.publish())."""

    def __init__(self, layout: Path):
        self.layout = Path(layout)
        self.sha = hashlib.sha256()
        self.size = 0
        self.flushed = 0  # bytes handed to start_writeback
        name = f"blob.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        self.tmp = self.layout / ".tmp" / name
        try:
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise _write_error(self.layout, err) from err

    def write(self, data) -> None:
        self.sha.update(data)
        self.size += len(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as err:
            raise _write_error(self.layout, err) from err
        if self.size - self.flushed >= WRITEBACK:  # a big blob: the disk starts on it now
            start_writeback(self.fd, self.flushed, self.size - self.flushed)
            self.flushed = self.size

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()

    def finish(self) -> tuple[str, int]:
        """Flush the temp file to disk; it stays in .tmp until published."""
        if self.fd >= 0:
            try:
                os.fsync(self.fd)
            except OSError as err:
                raise _write_error(self.layout, err) from err
            os.close(self.fd)
            self.fd = -1
            os.chmod(self.tmp, 0o644)
        return self.digest, self.size

    def commit(self) -> tuple[str, int]:
        """finish() and publish right away (under the layout lock)."""
        self.finish()
        with file_lock(self.layout / ".index.lock"):
            _publish(self.layout, self.tmp, self.digest)
        return self.digest, self.size

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def _write_error(layout: Path, err: OSError) -> CfError:
    """ENOSPC, EIO, EACCES... while writing into a layout: one line naming it."""
    return CfError(
        f"cannot write into the layout {layout}: {err.strerror or err}",
        hint="free space or fix permissions there; the layout's earlier tags are intact",
    )


def _publish(layout: Path, tmp: Path, digest: str) -> bool:
    """Rename a finished temp blob into place; True when it was not there before."""
    dest = blob_path(layout, digest)
    if dest.exists():
        tmp.unlink()
        return False
    os.replace(tmp, dest)
    return True


class Staging:
    """The blobs of one change to a layout: written to .tmp, published only together with the
    index change that references them, under the layout lock. Whatever fails (ENOSPC, EIO, a
    kill) leaves no new blob that nothing references: the temp files are removed, and blobs this
    change renamed into place are removed again before the lock is released (no other writer can
    have referenced them meanwhile, because every publication holds the lock)."""

    def __init__(self, layout: Path):
        self.layout = Path(layout)
        self.writers: list[BlobWriter] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

    def writer(self) -> BlobWriter:
        writer = BlobWriter(self.layout)
        self.writers.append(writer)
        return writer

    def add_bytes(self, data: bytes) -> tuple[str, int]:
        writer = self.writer()
        writer.write(data)
        return writer.finish()

    def publish(self, change: Callable[[list[dict]], list[dict]] | None = None) -> None:
        new: list[Path] = []
        with file_lock(self.layout / ".index.lock"):
            try:
                for writer in self.writers:
                    digest, _ = writer.finish()
                    if _publish(self.layout, writer.tmp, digest):
                        new.append(blob_path(self.layout, digest))
                if change is not None:
                    _write_index(self.layout, change)
            except BaseException as err:
                for path in new:
                    with contextlib.suppress(OSError):
                        path.unlink()
                if isinstance(err, OSError):
                    raise _write_error(self.layout, err) from err
                raise
        self.writers = []

    def abort(self) -> None:
        for writer in self.writers:
            writer.abort()
        self.writers = []


def _write_index(layout: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    """(Under the lock) apply `change` to the index's manifests; replace index.json atomically."""
    index = read_index(layout)
    index["manifests"] = change(list(index["manifests"]))
    index.setdefault("schemaVersion", 2)
    index.setdefault("mediaType", mt.INDEX)
    atomic_write(layout / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")


def write_blob(layout: Path, data: bytes) -> tuple[str, int]:
    """Store `data` as a blob now (prefer a Staging, which publishes with the index change)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    dest = blob_path(layout, digest)
    if not dest.exists():
        writer = BlobWriter(layout)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return digest, len(data)


# -- reading blobs: every read is checked against the descriptor's digest and size --------------
class VerifyingReader:
    """read(n) over a blob file that raises VerificationError, naming the blob, as soon as it
    reads more than `size` bytes, or at the end when the size or the sha256 differ."""

    def __init__(self, layout: Path, digest: str, size: int | None, what: str = "blob"):
        self.layout, self.digest, self.size, self.what = Path(layout), digest, size, what
        path = blob_path(layout, digest)
        try:
            # O_NONBLOCK: a FIFO planted as a blob must not hang the open; it is refused below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self.handle = os.fdopen(fd, "rb")
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.handle.close()
                raise VerificationError(
                    f"{what} {digest} in {layout} is not a regular file",
                    hint="the layout is damaged; remove that entry of blobs/sha256 and pull or rebuild",
                )
        except FileNotFoundError as err:
            raise VerificationError(
                f"{what} {digest} is missing from {layout}", hint="run chrootforge verify"
            ) from err
        except OSError as err:
            raise CfError(f"cannot read {what} {digest} in {layout}: {err.strerror}") from err
        self.sha = hashlib.sha256()
        self.seen = 0
        self.checked = False

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.handle.read(n)
        except OSError as err:
            raise CfError(f"cannot read {self.what} {self.digest} in {self.layout}: {err.strerror}") from err
        self.sha.update(data)
        self.seen += len(data)
        if self.size is not None and self.seen > self.size:
            self._bad(f"it is longer than the {self.size} bytes its descriptor says")
        if n is None or n < 0 or len(data) < n:  # a regular file reads short only at its end
            self._check()
        return data

    def drain(self) -> None:
        """Read to the end (a consumer may stop early, as a tar reader does) and check."""
        while self.read(1 << 20):
            pass

    def _check(self) -> None:
        if self.checked:
            return
        self.checked = True
        if self.size is not None and self.seen != self.size:
            self._bad(f"it has {self.seen} bytes, its descriptor says {self.size} (truncated?)")
        got = "sha256:" + self.sha.hexdigest()
        if got != self.digest:
            self._bad(f"its content hashes to {got}")

    def _bad(self, why: str):
        raise VerificationError(
            f"{self.what} {self.digest} in {self.layout} is corrupt: {why}",
            hint="the layout is damaged; run chrootforge verify, and rebuild or pull the image again",
        )

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MAX_JSON_BLOB = 4 << 20  # manifests and configs (registries refuse manifests above 4 MiB)


def read_blob(layout: Path, digest: str, size: int | None = None, what: str = "blob") -> bytes:
    if size is not None and size > MAX_JSON_BLOB:
        raise VerificationError(
            f"{what} {digest} in {layout} claims {size} bytes, more than the "
            f"{MAX_JSON_BLOB} a manifest or config may have"
        )
    with VerifyingReader(layout, digest, size, what) as reader:
        data = reader.read(MAX_JSON_BLOB + 1)
        if len(data) > MAX_JSON_BLOB:
            raise VerificationError(f"{what} {digest} in {layout} is larger than {MAX_JSON_BLOB} bytes")
        reader.drain()
    return data


def read_json_blob(layout: Path, digest: str, size: int | None = None, what: str = "blob") -> dict:
    """A verified JSON object blob (a manifest, config or index)."""
    doc = untrusted.loads_json(read_blob(layout, digest, size, what), f"{what} {digest} in {layout}")
    if not isinstance(doc, dict):
        raise CfError(f"{what} {digest} in {layout} is a JSON {type(doc).__name__}, not an object")
    return doc


# -- garbage -----------------------------------------------------------------------------------
def _root_name(i: int, desc: dict) -> str:
    name = (desc.get("annotations") or {}).get(mt.REF_NAME) if isinstance(desc, dict) else None
    return f"tag {name}" if name else f"index.json manifest {i}"


def reachable_blobs(layout: Path, index: dict) -> tuple[set[str], list[str]]:
    """(digests, doubts): every blob that a descriptor of the index reaches (manifests and nested
    indexes of both the OCI and the Docker v2 family, their configs, layers and referrers), and
    one line for each document the walk cannot follow: a manifest that is missing, corrupt or
    malformed, or of a media type it does not know. What such a document references is unknown,
    so while there are doubts no blob may be called garbage."""
    from chrootforge.oci import shapes

    seen: set[str] = set()  # every blob reached
    walked: set[str] = set()  # the manifests and indexes among them, read and followed
    doubts: list[str] = []
    todo = [(_root_name(i, d), d) for i, d in enumerate(index.get("manifests", []))]
    while todo:
        where, desc = todo.pop()
        digest = desc.get("digest") if isinstance(desc, dict) else None
        if not isinstance(digest, str):
            doubts.append(f"{where}: a descriptor without a digest")
            continue
        if digest in walked:
            continue
        seen.add(digest)
        walked.add(digest)
        media = desc.get("mediaType")
        if media not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            doubts.append(f"{where}: {digest[:19]} is a {str(media)[:100]!r}, not a manifest type it knows")
            continue
        size = desc.get("size")
        try:
            doc = read_json_blob(layout, digest, size if isinstance(size, int) else None, "manifest")
            if media in mt.INDEX_TYPES:
                children = shapes.index(doc, where).get("manifests", [])
                todo += [(f"{where} > manifest {i}", child) for i, child in enumerate(children)]
            else:
                doc = shapes.manifest(doc, where)
                # (a referrer keeps its subject's manifest blob: verify checks that it resolves)
                seen.update(
                    d["digest"] for d in [doc["config"], *doc["layers"], doc.get("subject") or {}] if d
                )
        except CfError as err:
            doubts.append(f"{where}: {err}")
    return seen, doubts


def unreferenced_blobs(layout: Path) -> list[tuple[Path, int]]:
    """(path, size) of blobs that nothing in index.json reaches; CfError when that cannot be told
    (a document reachable from the index that the walk cannot follow)."""
    live, doubts = reachable_blobs(layout, read_index(layout))
    if doubts:
        raise CfError(
            f"{layout}: cannot tell which blobs are unreferenced: {doubts[0]}"
            + (f" (and {len(doubts) - 1} more)" if len(doubts) > 1 else ""),
            hint=f"nothing was removed; `chrootforge verify {layout}` lists the problems: "
            "repair or untag those images first",
        )
    hexes = {d.split(":", 1)[-1] for d in live}
    out = []
    for path in sorted((Path(layout) / "blobs" / "sha256").iterdir()):
        if path.name not in hexes:
            with contextlib.suppress(OSError):
                out.append((path, path.lstat().st_size))
    return out


def gc(layout, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove blobs no tag or referrer reaches, and temp files of dead commits, under the layout
    lock (so never a blob a concurrent commit is publishing). Returns (path, bytes) of each file
    removed; with dry_run, of each file it would remove, removing nothing. Removes nothing
    (CfError) when a document reachable from the index cannot be followed."""
    layout = open_layout(layout)
    removed = []
    with file_lock(layout / ".index.lock"):
        garbage = unreferenced_blobs(layout)
        for path in _stale_temps(layout / ".tmp"):
            with contextlib.suppress(OSError):
                garbage.append((path, _temp_size(path)))
        for path, size in garbage:
            if dry_run:
                removed.append((path, size))
                continue
            with contextlib.suppress(FileNotFoundError):
                _remove_temp(path)
                removed.append((path, size))
    return removed
