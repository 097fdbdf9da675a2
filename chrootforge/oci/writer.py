"""commit: a root filesystem -> one new layer + config + manifest, tagged in an OCI layout."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.fsutil import is_inside
from chrootforge.oci import imageconfig, refs, tree
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.compress import compressor
from chrootforge.oci.fanout import Fanout
from chrootforge.oci.resolved import Resolved, resolve
from chrootforge.oci.tarwrite import write_tar
from chrootforge.oci.tree import Owners
from chrootforge.ownerxattr import Records
from chrootforge.progress import ByteProgress


@dataclasses.dataclass(frozen=True)
class CommitResult:
    tag: str
    digest: str  # the manifest's
    manifest_size: int
    config_digest: str
    layer_digest: str
    layer_size: int  # compressed
    diff_id: str
    uncompressed_size: int
    entries: int  # tar entries in the new layer
    layers: int  # layers of the image

    def __str__(self) -> str:
        return self.digest


def _hash_file(root: str, rel: str) -> str:
    sha = hashlib.sha256()
    fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while data := os.read(fd, 1 << 20):
            sha.update(data)
    finally:
        os.close(fd)
    return sha.hexdigest()


class _RawDigest:
    """The diff_id and size of the uncompressed stream: a consumer of the fanout."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.size = 0

    def __call__(self, block: memoryview) -> None:
        self.sha.update(block)
        self.size += len(block)


def _write_layer(staging: lo.Staging, items, root: str, compression: str, quiet: bool, label: str):
    """Tar + compress + hash in one streaming pass into a staged blob: the tar is read into blocks
    that a hashing thread and a compressing thread take at once (fanout.py).
    Returns (desc, diff_id, raw size, n)."""
    blob = staging.writer()
    raw = _RawDigest()
    comp = stream = None
    progress = ByteProgress(label, enabled=False if quiet else None)
    try:
        comp = compressor(compression, blob.write)
        stream = Fanout([raw, comp.write])
        count = write_tar(items, root, stream, progress)
        stream.close()
        stream = None
        comp.close()
        comp = None
        digest, size = blob.finish()
    except BaseException:
        if stream is not None:
            stream.abort()
        if comp is not None:
            comp.abort()
        raise
    finally:
        progress.close()
    desc = {"mediaType": mt.LAYER_TYPES[compression], "digest": digest, "size": size}
    return desc, "sha256:" + raw.sha.hexdigest(), raw.size, count


def _index_descriptor(manifest_digest: str, size: int, tag: str) -> dict:
    return {
        "mediaType": mt.MANIFEST,
        "digest": manifest_digest,
        "size": size,
        "annotations": {mt.REF_NAME: tag, mt.CONTAINERD_NAME: refs.full_name(tag)},
    }


def retag(tag: str, manifest_digest: str, size: int):
    """The index change pointing `tag` at a manifest: its old descriptor (if any) is replaced,
    other tags kept."""
    new = _index_descriptor(manifest_digest, size, tag)

    def change(manifests: list[dict]) -> list[dict]:
        kept = [m for m in manifests if (m.get("annotations") or {}).get(mt.REF_NAME) != tag]
        return kept + [new]

    return change


def set_tag(layout: Path, tag: str, manifest_digest: str, size: int) -> None:
    lo.update_index(layout, retag(tag, manifest_digest, size))


def tag(layout, source: str, new_tag: str) -> None:
    """Give the image tagged `source` the extra tag `new_tag`."""
    refs.check_tag(new_tag)
    found = resolve(layout, source)
    set_tag(Path(layout), new_tag, found.descriptor["digest"], found.descriptor["size"])


def _default_epoch(base: Resolved | None) -> int:
    """SOURCE_DATE_EPOCH when set; else the parent's `created`; else 0."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").strip() or base is None:
        return tree.source_date_epoch()
    created = imageconfig.parse_created(base.config.get("created"))
    if created is None:
        log.notice(f"parent {base.tag} has no usable `created` time: committing with epoch 0")
        return 0
    return created


def commit(
    rootfs,
    layout,
    tag: str,
    parent: str | None = None,
    compression: str = "gzip",
    config: dict | None = None,
    labels: dict | None = None,
    history: list[dict] | None = None,
    quiet: bool = False,
    epoch: int | None = None,
    owners: Owners | None = None,
    records: Records | None = None,
) -> CommitResult:
    """Commit `rootfs` (the FULL tree) as `tag` in `layout`; with `parent` (a tag of the same layout)
    only the difference becomes the new layer and the parent's layers are shared.

    epoch: the build's one timestamp (config `created`, history, every mtime's clamp); None takes
    SOURCE_DATE_EPOCH, else the parent's `created` (so the parent's files, clamped to it, compare
    equal and stay out of the new layer), else 0. owners: how host ids map to the image's ids (an
    IdMap's to_inside), when real root commits a tree its sandbox wrote with an unprivileged range.
    The parent's identity labels (imageconfig.IDENTITY_LABELS) are not inherited.
    records: the tree was written in single-id mode; the owners are its records (ownerxattr).
    Nothing of a failed commit stays in the layout (lo.Staging)."""
    refs.check_tag(tag)
    if compression not in mt.LAYER_TYPES:
        raise UsageError(f"unknown compression {compression!r}", hint="use gzip or zstd")
    runtime_override = imageconfig.normalise(config)
    if labels and (problem := imageconfig.labels_problem(labels)):
        raise UsageError(f"labels: {problem}")
    root = os.fspath(rootfs)
    if not os.path.isdir(root):
        raise UsageError(f"rootfs {root} does not exist or is not a directory")
    if is_inside(layout, root):  # the walk would read the blobs being written, without end
        raise UsageError(
            f"the layout {layout} is inside the rootfs {root}: the image would hold itself",
            hint="write the layout outside the rootfs",
        )
    base: Resolved | None = resolve(layout, parent) if parent else None
    if epoch is None:
        epoch = _default_epoch(base)
    layout = lo.ensure_layout(layout)

    entries = tree.walk(root, epoch, owners, records)
    if base is not None:
        from chrootforge.oci import diff, parentindex

        if not quiet:
            log.info(f"reading parent {parent} ({len(base.manifest['layers'])} layers)")
        parent_tree = parentindex.load(layout, base.manifest["layers"])
        items = diff.plan_child(list(entries), parent_tree, lambda rel: _hash_file(root, rel), epoch)
    else:
        items = entries
    with lo.Staging(layout) as staging:
        desc, diff_id, raw_size, count = _write_layer(
            staging, items, root, compression, quiet, f"commit {tag}"
        )
        # (a parent with Docker media types: the same layer bytes under their OCI names)
        parent_layers = [mt.oci_descriptor(d) for d in base.manifest["layers"]] if base else []
        parent_diff_ids = list(base.config["rootfs"]["diff_ids"]) if base else []
        parent_history = list(base.config.get("history", [])) if base else []
        runtime = imageconfig.merge(
            (base.config.get("config") or {}) if base else {}, runtime_override, labels
        )
        cfg = imageconfig.image_config(
            runtime,
            parent_diff_ids + [diff_id],
            parent_history + imageconfig.new_history(history, epoch),
            epoch,
        )
        cfg_digest, cfg_size = staging.add_bytes(lo.canonical_json(cfg))
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.MANIFEST,
            "config": {"mediaType": mt.CONFIG, "digest": cfg_digest, "size": cfg_size},
            "layers": parent_layers + [desc],
        }
        man_digest, man_size = staging.add_bytes(lo.canonical_json(manifest))
        staging.publish(retag(tag, man_digest, man_size))
    if not quiet:
        log.info(
            f"committed {tag}: {man_digest} (layer {desc['size'] / 1e6:.1f} MB {compression}, "
            f"{count} entries)"
        )
    return CommitResult(
        tag,
        man_digest,
        man_size,
        cfg_digest,
        desc["digest"],
        desc["size"],
        diff_id,
        raw_size,
        count,
        len(parent_layers) + 1,
    )
