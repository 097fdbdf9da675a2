"""resolve: a tag of an OCI layout -> its descriptor, manifest and config, checked (reading only).

Apart from the writer (commit), so that what only reads an image (push, inspect) does not load
tar writing, compression and thread pools: `push` starts faster by that much.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs, shapes


@dataclasses.dataclass(frozen=True)
class Resolved:
    tag: str
    descriptor: dict  # the image manifest's
    manifest: dict
    config: dict
    index: dict | None = None  # the tag's descriptor when it points at an image index


def tagged_descriptor(layout, tag: str) -> tuple[str, dict]:
    """(stored tag, its index.json descriptor): a manifest or an image index. A short name works
    when it names one tag only (refs.match_tag)."""
    layout = lo.open_layout(layout)
    tagged = lo.tagged(lo.read_index(layout))
    match = refs.match_tag(tag, tagged)
    if match is None:
        raise refs.missing_tag(tag, tagged, str(layout))
    return match, tagged[match]


def resolve(layout, tag: str, platform=None) -> Resolved:
    """The manifest and config of a tag in a layout (CfError if missing). When the tag is an OCI
    image index, the image of `platform` (a chrootforge.platforms.Platform; default: the only one,
    else this machine's: imageindex.choose); a plain manifest of another platform is an error when
    a platform is asked for. Resolved.tag is the stored tag. A Docker manifest list (as other
    tools leave one) is refused with the reason."""
    from chrootforge.oci import imageindex

    layout = lo.open_layout(layout)
    match, desc = tagged_descriptor(layout, tag)
    index_desc = None
    if desc["mediaType"] == mt.INDEX:
        index_desc = desc
        where = f"tag {match} in {layout}"
        desc = imageindex.choose(imageindex.entries(layout, desc, where), platform, where)
    found = load_image(layout, match, desc, index_desc)
    if platform is not None and index_desc is None and not imageindex.same_platform(found.config, platform):
        has = imageindex.platform_text(found.config)
        raise CfError(f"tag {match} in {layout} is an image for {has}, not {platform}")
    return found


def load_image(layout: Path, match: str, desc: dict, index_desc: dict | None = None) -> Resolved:
    """The image manifest `desc` (of tag `match`, through `index_desc` if any) and its config."""
    if desc["mediaType"] in mt.INDEX_TYPES:
        raise CfError(
            f"tag {match} in {layout} is a multi-platform index, not one image",
            hint="pull the image with chrootforge pull (it picks this machine's platform), or copy "
            "one platform with skopeo copy --override-arch",
        )
    if desc["mediaType"] not in mt.MANIFEST_TYPES:
        raise CfError(f"tag {match} in {layout} points at a {desc['mediaType']}, not an image manifest")
    where = f"manifest {desc['digest']} of {match} in {layout}"
    manifest = shapes.manifest(lo.read_json_blob(layout, desc["digest"], desc["size"], "manifest"), where)
    if manifest.get("mediaType", desc["mediaType"]) != desc["mediaType"]:
        raise CfError(f"{where} says it is a {manifest['mediaType']!r}, its tag says {desc['mediaType']!r}")
    cdesc = manifest["config"]
    if cdesc["mediaType"] not in mt.CONFIG_TYPES:
        raise CfError(f"tag {match} in {layout} is an artifact ({cdesc['mediaType']}), not an image")
    config = shapes.image_config(
        lo.read_json_blob(layout, cdesc["digest"], cdesc["size"], "config"),
        f"config {cdesc['digest']} of {match} in {layout}",
        len(manifest["layers"]),
    )
    return Resolved(match, desc, manifest, config, index_desc)
