"""export (oci-archive, docker-archive) and load (through the podman or docker CLI).

Both archives hold only the exported tag: oci-layout, an index.json with its one descriptor, and
the blobs it references. docker-archive is the Docker >= 25 hybrid: the same plus `manifest.json`
(Config/Layers pointing into blobs/sha256), which Docker 20.10's classic store loads. Docker 20.10
cannot read zstd layers, so a zstd image is refused for docker-archive (commit it with gzip).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_writer
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs
from chrootforge.oci.writer import resolve

FORMATS = ("oci-archive", "docker-archive")


def _info(name: str, size: int, kind=tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def write_archive(layout, tag: str, fmt: str, out) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use oci-archive or docker-archive")
    found = resolve(layout, tag)
    layout = Path(layout)
    layers = found.manifest["layers"]
    if fmt == "docker-archive" and any(x["mediaType"] == mt.LAYER_ZSTD for x in layers):
        raise CfError(f"{found.tag} has zstd layers, which docker load (Docker 20.10) cannot read",
                      hint="commit the image with --compression gzip, or export it as oci-archive")
    blobs = [found.descriptor["digest"], found.manifest["config"]["digest"]]
    blobs += [x["digest"] for x in layers if x["digest"] not in blobs]
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": [found.descriptor]}
    small = {"oci-layout": lo.canonical_json(lo.LAYOUT_VERSION), "index.json": lo.canonical_json(index)}
    if fmt == "docker-archive":
        small["manifest.json"] = json.dumps([{
            "Config": "blobs/sha256/" + found.manifest["config"]["digest"].split(":")[1],
            "RepoTags": [refs.docker_tag(found.tag)],
            "Layers": ["blobs/sha256/" + x["digest"].split(":")[1] for x in layers],
        }]).encode()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("blobs", 0, tarfile.DIRTYPE))
        tar.addfile(_info("blobs/sha256", 0, tarfile.DIRTYPE))
        for digest in sorted(set(blobs)):
            path = lo.blob_path(layout, digest)
            try:
                with open(path, "rb") as handle:
                    tar.addfile(_info(f"blobs/sha256/{digest.split(':')[1]}", os.fstat(handle.fileno()).st_size),
                                handle)
            except FileNotFoundError:
                raise CfError(f"blob {digest} of {tag} is missing", hint="run chrootforge verify") from None
        for name in sorted(small):
            tar.addfile(_info(name, len(small[name])), io.BytesIO(small[name]))


def export(layout, tag: str, fmt: str, output) -> None:
    """Write `tag` of `layout` as an archive at `output` (atomically)."""
    output = Path(output)
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: {output.parent} is not a directory")
    if not os.access(output.parent, os.W_OK):
        raise CfError(f"cannot write {output}: {output.parent} is not writable")
    with atomic_writer(output) as handle:
        write_archive(layout, tag, fmt, handle)


def load(layout, tag: str, into: str = "podman", extra_args: list[str] | None = None) -> str:
    """Load `tag` into podman or docker via their CLI; returns the tool's output."""
    if into not in ("podman", "docker"):
        raise UsageError(f"cannot load into {into!r}", hint="use podman or docker")
    fmt = "oci-archive" if into == "podman" else "docker-archive"
    resolve(layout, tag)  # fail early, before making a temp file
    with tempfile.TemporaryDirectory(prefix="chrootforge-load.") as tmp:
        archive = Path(tmp) / "image.tar"
        export(layout, tag, fmt, archive)
        argv = [into, *(extra_args or []), "load", "-i", str(archive)]
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise CfError(f"{into} is not installed", hint=f"install {into} or use chrootforge export") from None
    if proc.returncode != 0:
        raise CfError(f"{' '.join(argv[:-2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    log.info(proc.stdout.strip())
    return proc.stdout
