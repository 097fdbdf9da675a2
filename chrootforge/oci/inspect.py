"""inspect: what a layout holds (tags, layers, sizes, config), as text or JSON. A tag on a
multi-platform index (OCI or Docker, as other tools write them) shows the index's platforms."""

from __future__ import annotations

from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs, shapes
from chrootforge.oci.referrer import referrers
from chrootforge.oci.resolved import resolve


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
    layout = lo.open_layout(layout)
    index = lo.read_index(layout)
    tagged = lo.tagged(index)
    tags = sorted(tagged) if tag is None else [tag]
    images = []
    for name in tags:
        stored = refs.match_tag(name, tagged)
        if stored is not None and tagged[stored]["mediaType"] in mt.INDEX_TYPES:
            images.append(_index(layout, stored, tagged[stored]))
            continue
        found = resolve(layout, name)
        layers = found.manifest.get("layers", [])
        images.append(
            {
                "tag": found.tag,
                "name": (found.descriptor.get("annotations") or {}).get(mt.CONTAINERD_NAME),
                "digest": found.descriptor["digest"],
                "config_digest": found.manifest["config"]["digest"],
                "size": sum(int(x.get("size", 0)) for x in layers),
                "layers": [
                    {"digest": x["digest"], "size": x["size"], "mediaType": x["mediaType"], "diff_id": d}
                    for x, d in zip(layers, found.config["rootfs"]["diff_ids"], strict=True)
                ],
                "created": found.config.get("created"),
                "architecture": found.config.get("architecture"),
                "os": found.config.get("os"),
                "config": found.config.get("config", {}),
                "history": found.config.get("history", []),
                "referrers": [
                    {"digest": r["digest"], "artifactType": r.get("artifactType")}
                    for r in referrers(index, found.descriptor["digest"])
                ],
            }
        )
    return {"layout": str(layout), "images": images}


def render(info: dict) -> str:
    lines = [f"layout {info['layout']}"]
    if not info["images"]:
        lines.append("  (no tags)")
    for img in info["images"]:
        lines.append(f"{img['tag']}  ({img['name']})")
        if "manifests" in img:  # a multi-platform index
            lines.append(f"  index    {img['digest']}  {img['mediaType']}")
            lines += [f"    {m['platform']}: {m['digest']}" for m in img["manifests"]]
            continue
        lines.append(f"  manifest {img['digest']}")
        lines.append(
            f"  config   {img['config_digest']}  {img['os']}/{img['architecture']}  created {img['created']}"
        )
        lines.append(f"  size     {img['size'] / 1048576:.2f} MiB in {len(img['layers'])} layers")
        for i, layer in enumerate(img["layers"]):
            media = layer["mediaType"]
            kind = (mt.COMPRESSION_OF[media] or "tar") if media in mt.COMPRESSION_OF else media
            lines.append(f"    {i}: {layer['digest']}  {layer['size'] / 1048576:8.2f} MiB  {kind}")
        for key, value in img["config"].items():
            lines.append(f"  {key}: {value}")
        for ref in img["referrers"]:
            lines.append(f"  referrer {ref['digest']}  {ref['artifactType']}")
    return "\n".join(lines)
