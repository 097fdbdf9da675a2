"""export (oci-archive, docker-archive) and load (through the podman or docker CLI).

Both archives hold only the exported tag: oci-layout, an index.json with its descriptor, and the
blobs it references; an oci-archive also carries the image's referrers (its SBOM), so that
`skopeo copy` and registries receive them. Every blob is checked against its digest as it is
copied. A multi-platform tag (an image index) goes whole into an oci-archive, with every image,
unless `platform` picks one; a docker-archive, and what `load` hands to podman or docker, is
always one image: `platform`'s, else the only one, else this machine's.
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
from chrootforge.fsutil import atomic_writer
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


def _whole_index(layout: Path, tag: str, with_referrers: bool) -> tuple[list, list]:
    """(blobs, index.json descriptors) of a multi-platform tag with every image of it."""
    from chrootforge.oci import imageindex
    from chrootforge.oci.writer import tagged_descriptor

    match, top = tagged_descriptor(layout, tag)
    blobs = [(top["digest"], top["size"])]
    descriptors = [top]
    index = lo.read_index(layout)
    for child in imageindex.entries(layout, top, f"tag {match} in {layout}"):
        doc = shapes.manifest(lo.read_json_blob(layout, child["digest"], child["size"], "manifest"), match)
        blobs += _blobs_of(doc, child)
        for ref in referrers(index, child["digest"]) if with_referrers else []:
            art = shapes.manifest(lo.read_json_blob(layout, ref["digest"], ref["size"], "referrer"), match)
            blobs += _blobs_of(art, ref)
            descriptors.append(ref)
    return blobs, descriptors


def write_archive(
    layout, tag: str, fmt: str, out, with_referrers: bool = True, platform=None, one_image: bool = False
) -> None:
    """`platform`: which image of a multi-platform tag; `one_image`: never the whole index."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use oci-archive or docker-archive")
    from chrootforge.oci.writer import tagged_descriptor

    if fmt == "oci-archive" and platform is None and not one_image:
        _match, top = tagged_descriptor(layout, tag)
        if top["mediaType"] == mt.INDEX:
            blobs, descriptors = _whole_index(Path(layout), tag, with_referrers)
            _write_tar(Path(layout), out, blobs, descriptors, {})
            return
    found = resolve(layout, tag, platform)
    layout = Path(layout)
    layers = found.manifest["layers"]
    if fmt == "docker-archive" and any(x["mediaType"] == mt.LAYER_ZSTD for x in layers):
        raise CfError(
            f"{found.tag} has zstd layers, which docker load (Docker 20.10) cannot read",
            hint="commit the image with --compression gzip, or export it as oci-archive",
        )
    blobs = _blobs_of(found.manifest, found.descriptor)
    descriptors = [found.descriptor]
    if found.index is not None:  # one image of a multi-platform tag: tagged as the tag itself
        descriptors = [dict(found.descriptor, annotations=found.index.get("annotations") or {})]
    if fmt == "oci-archive" and with_referrers:  # the image's referrers (its SBOM) travel with it
        for ref in referrers(lo.read_index(layout), found.descriptor["digest"]):
            doc = shapes.manifest(
                lo.read_json_blob(layout, ref["digest"], ref["size"], "referrer"),
                f"referrer {ref['digest']} in {layout}",
            )
            blobs += _blobs_of(doc, ref)
            descriptors.append(ref)
    extra = {}
    if fmt == "docker-archive":
        extra["manifest.json"] = json.dumps(
            [
                {
                    "Config": "blobs/sha256/" + found.manifest["config"]["digest"].split(":")[1],
                    "RepoTags": [refs.docker_tag(found.tag)],
                    "Layers": ["blobs/sha256/" + x["digest"].split(":")[1] for x in layers],
                }
            ]
        ).encode()
    _write_tar(layout, out, blobs, descriptors, extra)


def _write_tar(layout: Path, out, blobs: list, descriptors: list, extra: dict) -> None:
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": descriptors}
    small = {
        "oci-layout": lo.canonical_json(lo.LAYOUT_VERSION),
        "index.json": lo.canonical_json(index),
        **extra,
    }
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


def export(
    layout, tag: str, fmt: str, output, with_referrers: bool = True, platform=None, one_image: bool = False
) -> None:
    """Write `tag` of `layout` as an archive at `output` (atomically). podman load (4.3) refuses an
    oci-archive whose index lists more than the image, so `load` leaves the referrers out."""
    output = Path(output)
    if output.is_dir():
        raise UsageError(f"cannot write {output}: it is a directory", hint="give a file name, e.g. image.tar")
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: {output.parent} is not a directory")
    if not os.access(output.parent, os.W_OK):
        raise CfError(f"cannot write {output}: {output.parent} is not writable")
    try:
        with atomic_writer(output) as handle:
            write_archive(layout, tag, fmt, handle, with_referrers, platform, one_image)
    except OSError as err:
        raise CfError(f"cannot write {output}: {err.strerror or err}") from None


def load(layout, tag: str, into: str = "podman", extra_args: list[str] | None = None, platform=None) -> str:
    """Load `tag` (of a multi-platform tag, `platform`'s image) into podman or docker via their
    CLI; returns the tool's output."""
    if into not in ("podman", "docker"):
        raise UsageError(f"cannot load into {into!r}", hint="use podman or docker")
    fmt = "oci-archive" if into == "podman" else "docker-archive"
    resolve(layout, tag, platform)  # fail early, before making a temp file
    with tempfile.TemporaryDirectory(prefix="chrootforge-load.") as tmp:
        archive = Path(tmp) / "image.tar"
        export(layout, tag, fmt, archive, with_referrers=False, platform=platform, one_image=True)
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
