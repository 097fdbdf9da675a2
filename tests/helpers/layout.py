"""Reading what a build wrote into an OCI layout: the index's tags, manifests, configs and layers."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path


class LayoutReader:
    """Mixed into a test's build record, which sets `layout` and `prefix` (the namespace's [output]
    prefix: images are tagged PREFIX/IMAGE:latest)."""

    layout: Path
    prefix: str

    def index(self) -> dict[str, str]:
        index = json.loads((self.layout / "index.json").read_text())
        return {
            m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
            for m in index["manifests"]
            if "org.opencontainers.image.ref.name" in m.get("annotations", {})
        }

    def blob_path(self, digest: str) -> Path:
        return self.layout / "blobs" / "sha256" / digest.split(":")[1]

    def blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def digest(self, image: str) -> str:
        return self.index()[f"{self.prefix}/{image}:latest"]

    def manifest(self, image: str) -> dict:
        return json.loads(self.blob(self.digest(image)))

    def config(self, image: str) -> dict:
        return json.loads(self.blob(self.manifest(image)["config"]["digest"]))

    def layer_members(self, digest: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
        """name -> (header, content) of a gzip layer."""
        out = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.blob(digest)))) as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                out[member.name.lstrip("./").rstrip("/")] = (member, data)
        return out

    def top_layer_names(self, image: str) -> set[str]:
        return set(self.layer_members(self.manifest(image)["layers"][-1]["digest"]))

    def all_names(self, image: str) -> set[str]:
        names: set[str] = set()
        for layer in self.manifest(image)["layers"]:
            names |= set(self.layer_members(layer["digest"]))
        return names
