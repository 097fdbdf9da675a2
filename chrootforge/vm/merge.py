"""Merge what a guest build copied out into the host's layout, build dir and binpkgs cache.

    out/layout/blobs/sha256/*   blobs the host lacked      -> checked against their digest, added
    out/layout/index.json       the guest's index          -> its tags replace the host's same tags,
                                                              under the layout lock (other tags stay)
    out/build/{state,sbom,logs} image state, SBOMs, logs   -> <layout>.build/, file by file, atomically
    out/binpkgs/                new binary packages        -> the namespace's binpkgs cache

Nothing the guest wrote is taken on trust: a blob must hash to its name, and an index entry must
point at a manifest the host layout holds after the copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_writer
from chrootforge.oci import layout as oci_layout
from chrootforge.oci import mediatypes as mt


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or (not path.is_file() and not path.is_dir()):
            raise CfError(f"the guest's results hold an unexpected entry: {path}")
        if path.is_file():
            out.append(path)
    return out


def copy_blobs(src: Path, layout: Path) -> int:
    """Add the blobs under src (blobs/sha256/<hex>) to `layout`, each checked against its name."""
    count = 0
    for path in _files(src):
        digest = f"sha256:{path.name}"
        oci_layout.blob_path(layout, digest)  # a malformed name is refused here
        if path.parent.name != "sha256" or path.parent.parent != src:
            raise CfError(f"the guest's results hold an unexpected blob path: {path}")
        if oci_layout.blob_path(layout, digest).exists():
            continue
        writer = oci_layout.BlobWriter(layout)
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    writer.write(chunk)
            if writer.digest != digest:
                raise CfError(
                    f"a blob the guest built does not match its name: {path.name} is {writer.digest}"
                )
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        count += 1
    return count


def merged_manifests(host: list[dict], guest: list[dict]) -> list[dict]:
    """The host's descriptors with the guest's: a guest tag replaces the host's descriptor of that tag
    in place; untagged guest descriptors (referrers) are added once."""

    def ref(desc: dict) -> str | None:
        return (desc.get("annotations") or {}).get(mt.REF_NAME)

    by_ref = {ref(d): d for d in guest if ref(d)}
    out = [by_ref.pop(ref(d)) if ref(d) in by_ref else d for d in host]
    out += [d for d in guest if ref(d) in by_ref]
    for d in guest:
        if not ref(d) and d not in out:
            out.append(d)
    return out


def merge_index(guest_layout: Path, layout: Path) -> list[str]:
    guest = oci_layout.read_index(guest_layout)["manifests"]
    for desc in guest:
        if not oci_layout.blob_path(layout, desc.get("digest", "")).is_file():
            raise CfError(f"the guest's index names {desc.get('digest')!r}, which the host layout lacks")
    oci_layout.update_index(layout, lambda host: merged_manifests(host, guest))
    names = [(d.get("annotations") or {}).get(mt.REF_NAME) for d in guest]
    return [name for name in names if name]


def copy_files(src: Path, dest: Path, replace: bool = True) -> int:
    """Copy every file under src to the same relative path under dest, each atomically."""
    count = 0
    for path in _files(src):
        target = dest / path.relative_to(src)
        if not replace and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as handle, atomic_writer(target) as out:
            shutil.copyfileobj(handle, out, 1 << 20)
        count += 1
    return count


def merge_results(out: Path, layout: Path, build_dir: Path, binpkgs: Path) -> list[str]:
    """Merge a guest build's results -> the tags now in the host layout from the guest."""
    refs: list[str] = []
    guest_layout = out / "layout"
    if (guest_layout / "index.json").is_file():
        oci_layout.ensure_layout(layout)
        copy_blobs(guest_layout / "blobs", layout)
        refs = merge_index(guest_layout, layout)
    for part in ("state", "sbom", "logs"):
        copy_files(out / "build" / part, build_dir / part)
    copy_files(out / "binpkgs", binpkgs, replace=False)
    os.sync()
    return refs
