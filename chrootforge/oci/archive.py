"""export (oci-archive, docker-archive) and load (through the podman or docker CLI).

Both archives hold only the exported tag: oci-layout, an index.json with ONE descriptor, and the
blobs it reaches. podman load and skopeo's oci-archive: refuse an index.json with more than one
image, so an oci-archive carries the image's referrers (its SBOM) through an image index: index.json
names (with the tag) an index whose manifests are the image, with its platform, and its referrers,
with the platform unknown/unknown that platform-choosing consumers (podman, skopeo, containerd)
skip. That index's digest is what the archive's tag names; the image manifest inside is unchanged.
`--no-referrers`, and an image without referrers, give index.json the image manifest itself.
A multi-platform tag (an image index) goes whole into an oci-archive, with every image, unless
`platform` picks one: as the layout's index, or, when its images have referrers, as an index of
those images (their platforms kept) and their referrers. A docker-archive, and what `load` hands to
podman or docker, is always one image: `platform`'s, else the only one, else this machine's.
Every blob is checked against its digest as it is copied. docker-archive is the Docker >= 25
hybrid: the image's blobs plus `manifest.json` (Config/Layers pointing into blobs/sha256), which
Docker 20.10's classic store loads; it never carries referrers. Docker 20.10 cannot read zstd
layers, so a zstd image is refused for docker-archive (commit it with gzip).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import is_inside, open_output
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs, shapes
from chrootforge.oci.referrer import referrers
from chrootforge.oci.resolved import resolve, tagged_descriptor

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


def _platform(config: dict) -> dict:
    platform = {"architecture": config["architecture"], "os": config["os"]}
    if isinstance(config.get("variant"), str):
        platform["variant"] = config["variant"]
    return platform


def _referrer_index(
    layout: Path, images: list[dict], attached: list[dict], annotations: dict, small_blobs: dict[str, bytes]
) -> tuple[dict, list]:
    """The descriptor (with `annotations`) of an image index holding `images` (index entries with
    their platform) and their `attached` referrers (the index goes into `small_blobs`), and the
    (digest, size) of every blob the referrers reach."""
    manifests = list(images)
    blobs: list[tuple[str, int]] = []
    for ref in attached:
        doc = shapes.manifest(
            lo.read_json_blob(layout, ref["digest"], ref["size"], "referrer"),
            f"referrer {ref['digest']} in {layout}",
        )
        blobs += _blobs_of(doc, ref)
        desc = {k: ref[k] for k in ("mediaType", "digest", "size", "artifactType") if k in ref}
        manifests.append({**desc, "platform": {"architecture": "unknown", "os": "unknown"}})
    data = lo.canonical_json({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": manifests})
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    small_blobs[digest] = data
    return {"mediaType": mt.INDEX, "digest": digest, "size": len(data), "annotations": annotations}, blobs


def _whole_index(
    layout: Path, match: str, top: dict, with_referrers: bool, small_blobs: dict[str, bytes]
) -> tuple[dict, list]:
    """(index.json descriptor, blobs) of a multi-platform tag with every image of it: the layout's
    index, or an index of its images and their referrers (_referrer_index)."""
    from chrootforge.oci import imageindex

    children = imageindex.entries(layout, top, f"tag {match} in {layout}")
    blobs: list[tuple[str, int]] = []
    index = lo.read_index(layout)
    attached = []
    for child in children:
        doc = shapes.manifest(lo.read_json_blob(layout, child["digest"], child["size"], "manifest"), match)
        blobs += _blobs_of(doc, child)
        attached += referrers(index, child["digest"]) if with_referrers else []
    if not attached:
        return top, [(top["digest"], top["size"]), *blobs]
    images = [{k: c[k] for k in ("mediaType", "digest", "size", "platform") if k in c} for c in children]
    wrapped, more = _referrer_index(layout, images, attached, top.get("annotations") or {}, small_blobs)
    return wrapped, blobs + more


def write_archive(
    layout, tag: str, fmt: str, out, with_referrers: bool = True, platform=None, one_image: bool = False
) -> None:
    """`platform`: which image of a multi-platform tag; `one_image`: never the whole index."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use oci-archive or docker-archive")
    small_blobs: dict[str, bytes] = {}
    if _whole(fmt, platform, one_image):
        match, top = tagged_descriptor(layout, tag)
        if top["mediaType"] == mt.INDEX:
            top, blobs = _whole_index(Path(layout), match, top, with_referrers, small_blobs)
            _write_tar(Path(layout), out, top, blobs, small_blobs, {})
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
    top = found.descriptor
    if found.index is not None:  # one image of a multi-platform tag: tagged as the tag itself
        top = dict(found.descriptor, annotations=found.index.get("annotations") or {})
    attached = referrers(lo.read_index(layout), found.descriptor["digest"]) if fmt == "oci-archive" else []
    if with_referrers and attached:
        image = {k: found.descriptor[k] for k in ("mediaType", "digest", "size")}
        images = [{**image, "platform": _platform(found.config)}]
        top, more = _referrer_index(layout, images, attached, top.get("annotations") or {}, small_blobs)
        blobs += more
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
    _write_tar(layout, out, top, blobs, small_blobs, extra)


def _whole(fmt: str, platform, one_image: bool) -> bool:
    """Whether a multi-platform tag is exported whole (an oci-archive with no platform chosen)."""
    return fmt == "oci-archive" and platform is None and not one_image


def _write_tar(
    layout: Path, out, top: dict, blobs: list, small_blobs: dict[str, bytes], extra: dict[str, bytes]
) -> None:
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": [top]}
    small = {
        "oci-layout": lo.canonical_json(lo.LAYOUT_VERSION),
        "index.json": lo.canonical_json(index),
        **extra,
    }
    entries: dict[str, tuple[int, bytes | None]] = {digest: (size, None) for digest, size in blobs}
    entries.update((digest, (len(data), data)) for digest, data in small_blobs.items())
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("blobs", 0, tarfile.DIRTYPE))
        tar.addfile(_info("blobs/sha256", 0, tarfile.DIRTYPE))
        for digest in sorted(entries):
            size, data = entries[digest]
            name = f"blobs/sha256/{digest.split(':')[1]}"
            if data is not None:
                tar.addfile(_info(name, size), io.BytesIO(data))
                continue
            # Checked while copied: a corrupt or truncated blob aborts the export (the caller's
            # atomic writer then leaves no archive behind).
            with lo.VerifyingReader(layout, digest, size) as reader:
                tar.addfile(_info(name, size), reader)
                reader.drain()
        for name in sorted(small):
            tar.addfile(_info(name, len(small[name])), io.BytesIO(small[name]))


def export(
    layout, tag: str, fmt: str, output, with_referrers: bool = True, platform=None, one_image: bool = False
) -> None:
    """Write `tag` of `layout` as an archive at `output`: atomically to a new or regular file
    (fsutil.open_output refuses devices, FIFOs, sockets, directories and symlinks), or to stdout
    when `output` is `-`. `platform`, `one_image`: as write_archive takes them."""
    # a wrong tag (or platform) fails before a temp file exists
    if _whole(fmt, platform, one_image):
        tagged_descriptor(layout, tag)
    else:
        resolve(layout, tag, platform)
    output = os.fspath(output)
    if output != "-" and is_inside(output, layout):
        raise UsageError(
            f"refusing to write the archive {output} inside the layout {layout} it reads",
            hint="write it outside the layout",
        )
    try:
        with open_output(output, "the archive") as handle:
            write_archive(layout, tag, fmt, handle, with_referrers, platform, one_image)
    except BrokenPipeError:
        raise  # the reader went away (`| head`): the CLI exits 1 without a message
    except OSError as err:
        raise CfError(f"cannot write {'stdout' if output == '-' else output}: {err.strerror or err}") from err


def load(layout, tag: str, into: str = "podman", extra_args: list[str] | None = None, platform=None) -> str:
    """Load `tag` (of a multi-platform tag, `platform`'s image) into podman or docker via their
    CLI; returns the tool's output. Without its referrers: the stores keep only the image, under
    the layout's own manifest digest."""
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
        except FileNotFoundError as err:
            raise CfError(
                f"{into} is not installed", hint=f"install {into} or use chrootforge export"
            ) from err
    if proc.returncode != 0:
        raise CfError(f"{' '.join(argv[:-2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    log.info(proc.stdout.strip())
    return proc.stdout
