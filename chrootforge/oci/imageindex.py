"""Multi-platform images: a tag that points at an OCI image index of one manifest per platform.

The index's entries carry the image-spec's `platform` object (architecture, os, variant where the
architecture has one), in the order the namespace lists its platforms; the bytes are canonical
JSON, so the same images give the same index digest. `choose` picks the entry a command works on:
the one asked for, else the only one, else this machine's; otherwise the error lists them.
"""

from __future__ import annotations

from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import shapes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.platforms import Platform


def platform_text(value: dict | None) -> str:
    """os/architecture[/variant] of an image-spec platform object (or a config)."""
    if not isinstance(value, dict):
        return "?"
    parts = [value.get("os") or "?", value.get("architecture") or "?"]
    if value.get("variant"):
        parts.append(value["variant"])
    return "/".join(str(p) for p in parts)


def same_platform(value: dict | None, platform: Platform) -> bool:
    if not isinstance(value, dict):
        return False
    if (value.get("os"), value.get("architecture")) != (platform.os, platform.architecture):
        return False
    # an entry without a variant matches any; arm64's "v8" is the only arm64 there is
    variant = value.get("variant") or ""
    return (
        not variant or variant == platform.variant or (platform.architecture == "arm64" and variant == "v8")
    )


def document(children: list[tuple[Platform, dict]]) -> dict:
    """The image index of `children`: (platform, manifest descriptor) pairs."""
    return {
        "schemaVersion": 2,
        "mediaType": mt.INDEX,
        "manifests": [
            {"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": p.oci()}
            for p, d in children
        ],
    }


def entries(layout: Path, desc: dict, where: str) -> list[dict]:
    """The manifest entries of the index that `desc` points at (shapes checked)."""
    doc = shapes.index(lo.read_json_blob(layout, desc["digest"], desc["size"], "index"), where)
    return [
        shapes.descriptor(d, f"{where} entry {i + 1}")
        for i, d in enumerate(doc.get("manifests", []))
        if isinstance(d, dict) and d.get("mediaType") in mt.MANIFEST_TYPES
    ]


def choose(found: list[dict], wanted: Platform | None, where: str) -> dict:
    """The entry for `wanted`; without it: the only entry, else this machine's platform's."""
    from chrootforge.platforms import host_platform

    if wanted is None and len(found) == 1:
        return found[0]
    target = wanted or host_platform()
    for desc in found:
        if same_platform(desc.get("platform"), target):
            return desc
    listed = ", ".join(platform_text(d.get("platform")) for d in found) or "no images"
    if wanted is None:
        raise CfError(
            f"{where} is an index of several platforms ({listed}), none of them this machine's",
            hint="choose one with --platform, e.g. --platform " + platform_text(found[0].get("platform")),
        )
    raise CfError(f"{where} has no image for {wanted}", hint=f"it has: {listed}")
