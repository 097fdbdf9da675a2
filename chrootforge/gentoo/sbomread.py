"""Read back the SBOM attached to an image (`chrootforge sbom LAYOUT:TAG`)."""

from __future__ import annotations

import json

from chrootforge import oci, untrusted
from chrootforge.errors import CfError, UsageError
from chrootforge.gentoo.sbom import MEDIA_TYPE
from chrootforge.oci import layout as lo
from chrootforge.oci import shapes
from chrootforge.oci.referrer import referrers
from chrootforge.oci.refs import split_layout_ref


def read_sbom(ref: str) -> str:
    layout, tag = split_layout_ref(ref)
    if not tag:
        raise UsageError(f"{ref}: give LAYOUT:TAG", hint="e.g. out/layout:localhost/ns/hello:latest")
    found = oci.resolve(layout, tag)
    path = lo.open_layout(layout)
    for desc in referrers(lo.read_index(path), found.descriptor["digest"]):
        if desc.get("artifactType") == MEDIA_TYPE:
            manifest = shapes.manifest(
                lo.read_json_blob(path, desc["digest"], desc["size"], "SBOM manifest"),
                f"SBOM manifest {desc['digest']} in {path}",
            )
            if not manifest["layers"]:
                raise CfError(f"SBOM manifest {desc['digest']} in {path} has no layer")
            layer = manifest["layers"][0]
            data = lo.read_blob(path, layer["digest"], layer["size"], "SBOM")
            doc = untrusted.loads_json(data, f"SBOM {layer['digest']} in {path}")
            return json.dumps(doc, indent=1, sort_keys=True) + "\n"
    raise CfError(
        f"{tag}: no SBOM is attached to this image", hint="images built by chrootforge build have one"
    )
