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
from collections.abc import Callable
from pathlib import Path

from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.oci import mediatypes as mt

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


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
        raise CfError(f"cannot create {path}: {err.strerror}",
                      hint="choose a --layout directory you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CfError(f"{path} is not writable", hint="choose a --layout directory you can write to")


def ensure_layout(layout: str | os.PathLike) -> Path:
    """Create the layout skeleton if needed (an existing non-layout, non-empty dir is refused)."""
    layout = Path(layout)
    if layout.exists() and not layout.is_dir():
        raise UsageError(f"{layout} exists and is not a directory")
    # Only the names a concurrent commit may be creating right now are tolerated.
    skeleton = {".tmp", ".index.lock", "blobs", "index.json", "oci-layout"}
    if layout.is_dir() and not (layout / "oci-layout").exists() and any(
            p.name not in skeleton and not p.name.startswith((".oci-layout.", ".index.json."))
            for p in layout.iterdir()):
        raise UsageError(f"{layout} is not an OCI layout and not empty",
                         hint="give an empty or new directory, or an existing OCI layout")
    _writable(layout / "blobs" / "sha256")
    _writable(layout / ".tmp")
    with file_lock(layout / ".index.lock"):
        if not (layout / "oci-layout").exists():
            atomic_write(layout / "oci-layout", canonical_json(LAYOUT_VERSION))
        if not (layout / "index.json").exists():
            atomic_write(layout / "index.json", canonical_json(
                {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": []}))
    _clean_stale_temps(layout / ".tmp")
    return layout


def _clean_stale_temps(tmpdir: Path) -> None:
    """Remove temp blobs of commits that died (their pid is in the name)."""
    for path in tmpdir.glob("blob.*.tmp"):
        try:
            pid = int(path.name.split(".")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()
        except (ValueError, PermissionError, IndexError):
            pass


def open_layout(layout: str | os.PathLike) -> Path:
    """Check that `layout` is an OCI layout we can read."""
    layout = Path(layout)
    marker = layout / "oci-layout"
    try:
        data = json.loads(marker.read_text())
    except FileNotFoundError:
        raise UsageError(f"{layout} is not an OCI layout (no oci-layout file)") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"{layout}: unreadable oci-layout file: {err}") from None
    if not isinstance(data, dict) or data.get("imageLayoutVersion") != "1.0.0":
        raise UsageError(f"{layout}: unsupported oci-layout {data!r}")
    return layout


def read_index(layout: Path) -> dict:
    try:
        index = json.loads((Path(layout) / "index.json").read_text())
    except FileNotFoundError:
        raise UsageError(f"{layout} has no index.json") from None
    except (OSError, ValueError) as err:
        raise CfError(f"{layout}/index.json is unreadable: {err}") from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise CfError(f"{layout}/index.json is not an image index")
    index.setdefault("manifests", [])
    return index


def update_index(layout: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    """Apply `change` to the index's manifests under the layout lock; replace index.json atomically."""
    layout = Path(layout)
    with file_lock(layout / ".index.lock"):
        index = read_index(layout)
        index["manifests"] = change(list(index["manifests"]))
        index.setdefault("schemaVersion", 2)
        index.setdefault("mediaType", mt.INDEX)
        atomic_write(layout / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")


def tagged(index: dict) -> dict[str, dict]:
    """ref.name -> descriptor."""
    out = {}
    for desc in index.get("manifests", []):
        name = (desc.get("annotations") or {}).get(mt.REF_NAME)
        if name:
            out[name] = desc
    return out


class BlobWriter:
    """A temp file in <layout>/.tmp that becomes blobs/sha256/<digest> on commit()."""

    def __init__(self, layout: Path):
        self.layout = Path(layout)
        self.sha = hashlib.sha256()
        self.size = 0
        name = f"blob.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        self.tmp = self.layout / ".tmp" / name
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def write(self, data) -> None:
        self.sha.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()

    def commit(self) -> tuple[str, int]:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.chmod(self.tmp, 0o644)
        dest = blob_path(self.layout, self.digest)
        if dest.exists():
            self.tmp.unlink()
        else:
            os.replace(self.tmp, dest)
        return self.digest, self.size

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def write_blob(layout: Path, data: bytes) -> tuple[str, int]:
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


def read_json_blob(layout: Path, digest: str) -> dict:
    path = blob_path(layout, digest)
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CfError(f"blob {digest} is missing from {layout}") from None
    except ValueError as err:
        raise CfError(f"blob {digest} is not valid JSON: {err}") from None
