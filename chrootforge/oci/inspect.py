"""inspect: what a layout holds (tags, platforms, layers, sizes, config), as text or JSON. A tag on
a multi-platform index lists the index's platforms ("manifests"; OCI or Docker, as other tools
write them); on an OCI image index (a multi-platform build, skopeo copy --all) also each platform's
image in full ("platforms")."""

from __future__ import annotations

from chrootforge.oci import imageindex, shapes
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.referrer import referrers
from chrootforge.oci.resolved import load_image, resolve, tagged_descriptor


def _image(index: dict, found) -> dict:
    layers = found.manifest.get("layers", [])
    return {
        "digest": found.descriptor["digest"],
        "platform": imageindex.platform_text(found.config),
        "config_digest": found.manifest["config"]["digest"],
        "size": sum(int(x.get("size", 0)) for x in layers),
        "layers": [
            {"digest": x["digest"], "size": x["size"], "mediaType": x["mediaType"], "diff_id": d}
            for x, d in zip(layers, found.config["rootfs"]["diff_ids"], strict=True)
        ],
        "created": found.config.get("created"),
        "architecture": found.config.get("architecture"),
        "os": found.config.get("os"),
        "variant": found.config.get("variant"),
        "config": found.config.get("config", {}),
        "history": found.config.get("history", []),
        "referrers": [
            {"digest": r["digest"], "artifactType": r.get("artifactType")}
            for r in referrers(index, found.descriptor["digest"])
        ],
    }


def _index(layout, tag: str, desc: dict) -> dict:
    where = f"index {desc['digest']} of {tag} in {layout}"
    doc = shapes.index(lo.read_json_blob(layout, desc["digest"], desc["size"], "index"), where)
    entries = []
    for entry in doc.get("manifests", []):
        platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
        entries.append(
            {
                "digest": entry["digest"],
                "mediaType": entry["mediaType"],
                "platform": f"{platform.get('os', '?')}/{platform.get('architecture', '?')}",
            }
        )
    return {
        "tag": tag,
        "name": (desc.get("annotations") or {}).get(mt.CONTAINERD_NAME),
        "digest": desc["digest"],
        "mediaType": desc["mediaType"],
        "manifests": entries,
    }


def describe(layout, tag: str | None = None) -> dict:
    """Every tag (or one), each with its image; a multi-platform tag (an image index) with its
    index digest, its entries under "manifests" and, for an OCI index, one image per platform
    under "platforms" (entries of platform unknown/unknown, build attestations, left out)."""
    layout = lo.open_layout(layout)
    index = lo.read_index(layout)
    tagged = lo.tagged(index)
    tags = sorted(tagged) if tag is None else [tag]
    images = []
    for name in tags:
        match, desc = tagged_descriptor(layout, name)
        if desc["mediaType"] in mt.INDEX_TYPES:
            entry = _index(layout, match, desc)
            if desc["mediaType"] == mt.INDEX:
                children = imageindex.entries(layout, desc, f"tag {match} in {layout}")
                children = [c for c in children if (c.get("platform") or {}).get("os") != "unknown"]
                entry["platforms"] = [_image(index, load_image(layout, match, c, desc)) for c in children]
            images.append(entry)
            continue
        entry = {"tag": match, "name": (desc.get("annotations") or {}).get(mt.CONTAINERD_NAME)}
        found = resolve(layout, match)
        entry.update(_image(index, found), mediaType=found.descriptor["mediaType"])
        images.append(entry)
    return {"layout": str(layout), "images": images}


def _render_image(img: dict, indent: str) -> list[str]:
    lines = [
        f"{indent}manifest {img['digest']}",
        f"{indent}config   {img['config_digest']}  {img['platform']}  created {img['created']}",
        f"{indent}size     {img['size'] / 1048576:.2f} MiB in {len(img['layers'])} layers",
    ]
    for i, layer in enumerate(img["layers"]):
        media = layer["mediaType"]
        kind = (mt.COMPRESSION_OF[media] or "tar") if media in mt.COMPRESSION_OF else media
        lines.append(f"{indent}  {i}: {layer['digest']}  {layer['size'] / 1048576:8.2f} MiB  {kind}")
    for key, value in img["config"].items():
        lines.append(f"{indent}{key}: {value}")
    for ref in img["referrers"]:
        lines.append(f"{indent}referrer {ref['digest']}  {ref['artifactType']}")
    return lines


def render(info: dict) -> str:
    lines = [f"layout {info['layout']}"]
    if not info["images"]:
        lines.append("  (no tags)")
    for img in info["images"]:
        lines.append(f"{img['tag']}  ({img['name']})")
        if "platforms" in img:  # an OCI image index: each platform's image
            platforms = ", ".join(p["platform"] for p in img["platforms"])
            lines.append(f"  index    {img['digest']}  platforms: {platforms}")
            for child in img["platforms"]:
                lines.append(f"  {child['platform']}:")
                lines += _render_image(child, "    ")
        elif "manifests" in img:  # another multi-platform index: what it lists
            lines.append(f"  index    {img['digest']}  {img['mediaType']}")
            lines += [f"    {m['platform']}: {m['digest']}" for m in img["manifests"]]
        else:
            lines += _render_image(img, "  ")
    return "\n".join(lines)
