"""resolve: a tag of an OCI layout -> its descriptor, manifest and config, checked (reading only).

Apart from the writer (commit), so that what only reads an image (push, inspect) does not load
tar writing, compression and thread pools: `push` starts faster by that much.
"""

from __future__ import annotations

import dataclasses

from chrootforge.errors import CfError
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs, shapes


@dataclasses.dataclass(frozen=True)
class Resolved:
    tag: str
    descriptor: dict
    manifest: dict
    config: dict


def resolve(layout, tag: str) -> Resolved:
    """The manifest and config of a tag in a layout (CfError if missing). A short name works when it
    names one tag only (refs.match_tag); Resolved.tag is the stored tag."""
    layout = lo.open_layout(layout)
    index = lo.read_index(layout)
    tagged = lo.tagged(index)
    match = refs.match_tag(tag, tagged)
    if match is None:
        raise refs.missing_tag(tag, tagged, str(layout))
    desc = tagged[match]
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
    return Resolved(match, desc, manifest, config)
