"""export (oci-archive, docker-archive) and load (through the podman or docker CLI).

Both archives hold only the exported tag: oci-layout, an index.json with its descriptor, and the
blobs it references; an oci-archive also carries the image's referrers (its SBOM), so that
`skopeo copy` and registries receive them. Every blob is checked against its digest as it is copied.
docker-archive is the Docker >= 25 hybrid: the same plus `manifest.json`
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
from chrootforge.fsutil import open_output
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs, shapes
from chrootforge.oci.referrer import referrers
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


def _blobs_of(manifest: dict, manifest_desc: dict) -> list[tuple[str, int]]:
    """(digest, size) of a manifest and every blob it references."""
    return [
        (manifest_desc["digest"], manifest_desc["size"]),
        (manifest["config"]["digest"], manifest["config"]["size"]),
        *((x["digest"], x["size"]) for x in manifest["layers"]),
    ]


def write_archive(layout, tag: str, fmt: str, out, with_referrers: bool = True) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use oci-archive or docker-archive")
    found = resolve(layout, tag)
    layout = Path(layout)
    layers = found.manifest["layers"]
    if fmt == "docker-archive" and any(x["mediaType"] == mt.LAYER_ZSTD for x in layers):
        raise CfError(
            f"{found.tag} has zstd layers, which docker load (Docker 20.10) cannot read",
            hint="commit the image with --compression gzip, or export it as oci-archive",
        )
    blobs = _blobs_of(found.manifest, found.descriptor)
    descriptors = [found.descriptor]
    if fmt == "oci-archive" and with_referrers:  # the image's referrers (its SBOM) travel with it
        for ref in referrers(lo.read_index(layout), found.descriptor["digest"]):
            doc = shapes.manifest(
                lo.read_json_blob(layout, ref["digest"], ref["size"], "referrer"),
                f"referrer {ref['digest']} in {layout}",
            )
            blobs += _blobs_of(doc, ref)
            descriptors.append(ref)
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": descriptors}
    small = {"oci-layout": lo.canonical_json(lo.LAYOUT_VERSION), "index.json": lo.canonical_json(index)}
    if fmt == "docker-archive":
        small["manifest.json"] = json.dumps(
            [
                {
                    "Config": "blobs/sha256/" + found.manifest["config"]["digest"].split(":")[1],
                    "RepoTags": [refs.docker_tag(found.tag)],
                    "Layers": ["blobs/sha256/" + x["digest"].split(":")[1] for x in layers],
                }
            ]
        ).encode()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("blobs", 0, tarfile.DIRTYPE))
        tar.addfile(_info("blobs/sha256", 0, tarfile.DIRTYPE))
        for digest, size in sorted(set(blobs)):
            # Checked while copied: a corrupt or truncated blob aborts the export (the caller's
            # atomic writer then leaves no archive behind).
            with lo.VerifyingReader(layout, digest, size) as reader:
                tar.addfile(_info(f"blobs/sha256/{digest.split(':')[1]}", size), reader)
                reader.drain()
        for name in sorted(small):
            tar.addfile(_info(name, len(small[name])), io.BytesIO(small[name]))


def export(layout, tag: str, fmt: str, output, with_referrers: bool = True) -> None:
    """Write `tag` of `layout` as an archive at `output`: atomically to a new or regular file
    (fsutil.open_output refuses devices, FIFOs, sockets, directories and symlinks), or to stdout
    when `output` is `-`. podman load (4.3) refuses an oci-archive whose index lists more than the
    image, so `load` leaves the referrers out."""
    resolve(layout, tag)  # a wrong tag fails before a temp file exists
    output = os.fspath(output)
    try:
        with open_output(output, "the archive") as handle:
            write_archive(layout, tag, fmt, handle, with_referrers)
    except BrokenPipeError:
        raise  # the reader went away (`| head`): the CLI exits 1 without a message
    except OSError as err:
        raise CfError(
            f"cannot write {'stdout' if output == '-' else output}: {err.strerror or err}"
        ) from None


def load(layout, tag: str, into: str = "podman", extra_args: list[str] | None = None) -> str:
    """Load `tag` into podman or docker via their CLI; returns the tool's output."""
    if into not in ("podman", "docker"):
        raise UsageError(f"cannot load into {into!r}", hint="use podman or docker")
    fmt = "oci-archive" if into == "podman" else "docker-archive"
    resolve(layout, tag)  # fail early, before making a temp file
    with tempfile.TemporaryDirectory(prefix="chrootforge-load.") as tmp:
        archive = Path(tmp) / "image.tar"
        export(layout, tag, fmt, archive, with_referrers=False)
        argv = [into, *(extra_args or []), "load", "-i", str(archive)]
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise CfError(
                f"{into} is not installed", hint=f"install {into} or use chrootforge export"
            ) from None
    if proc.returncode != 0:
        raise CfError(f"{' '.join(argv[:-2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    log.info(proc.stdout.strip())
    return proc.stdout
