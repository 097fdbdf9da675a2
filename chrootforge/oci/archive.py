"""export (oci-archive, docker-archive) and load (through the podman or docker CLI).

Both archives hold only the exported tag: oci-layout, an index.json with ONE descriptor, and the
blobs it reaches. podman load and skopeo's oci-archive: refuse an index.json with more than one
image, so an oci-archive carries the image's referrers (its SBOM) through an image index: index.json
names (with the tag) an index whose manifests are the image, with its platform, and its referrers,
with the platform unknown/unknown that platform-choosing consumers (podman, skopeo, containerd)
skip. That index's digest is what the archive's tag names; the image manifest inside is unchanged.
`--no-referrers`, and an image without referrers, give index.json the image manifest itself.
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
from chrootforge.oci.resolved import Resolved, resolve

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


def _with_referrers(
    layout: Path, found: Resolved, attached: list[dict], small_blobs: dict[str, bytes]
) -> tuple[dict, list]:
    """The descriptor of an image index holding the image and its `attached` referrers (the
    index goes into `small_blobs`), and the (digest, size) of every blob the referrers reach."""
    image = {k: found.descriptor[k] for k in ("mediaType", "digest", "size")}
    manifests = [{**image, "platform": _platform(found.config)}]
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
    annotations = found.descriptor.get("annotations") or {}
    return {"mediaType": mt.INDEX, "digest": digest, "size": len(data), "annotations": annotations}, blobs


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
    small_blobs: dict[str, bytes] = {}
    top = found.descriptor
    attached = referrers(lo.read_index(layout), top["digest"]) if fmt == "oci-archive" else []
    if with_referrers and attached:
        top, more = _with_referrers(layout, found, attached, small_blobs)
        blobs += more
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": [top]}
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


def export(layout, tag: str, fmt: str, output, with_referrers: bool = True) -> None:
    """Write `tag` of `layout` as an archive at `output`: atomically to a new or regular file
    (fsutil.open_output refuses devices, FIFOs, sockets, directories and symlinks), or to stdout
    when `output` is `-`."""
    resolve(layout, tag)  # a wrong tag fails before a temp file exists
    output = os.fspath(output)
    if output != "-" and is_inside(output, layout):
        raise UsageError(
            f"refusing to write the archive {output} inside the layout {layout} it reads",
            hint="write it outside the layout",
        )
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
    """Load `tag` into podman or docker via their CLI; returns the tool's output. Without its
    referrers: the stores keep only the image, under the layout's own manifest digest."""
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
