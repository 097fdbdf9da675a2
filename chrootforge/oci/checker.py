"""verify: every reference resolves, every blob matches its digest and size, every diff_id matches."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.oci import layerread
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt


class _Checker:
    def __init__(self, layout: Path):
        self.layout = layout
        self.problems: list[str] = []
        self.checked: dict[str, bool] = {}  # digest -> blob ok
        self.diff_ids: dict[str, str | None] = {}

    def blob(self, where: str, desc: dict) -> bool:
        digest, size = desc.get("digest", ""), desc.get("size")
        key = f"{digest}/{size}"
        if key in self.checked:
            return self.checked[key]
        ok = self._blob(where, digest, size)
        self.checked[key] = ok
        return ok

    def _blob(self, where: str, digest: str, size) -> bool:
        try:
            path = lo.blob_path(self.layout, digest)
        except CfError:
            self.problems.append(f"{where}: malformed digest {digest!r}")
            return False
        sha = hashlib.sha256()
        got_size = 0
        try:
            with open(path, "rb") as handle:
                while data := handle.read(1 << 20):
                    sha.update(data)
                    got_size += len(data)
        except FileNotFoundError:
            self.problems.append(f"{where}: blob {digest} is missing (dangling reference)")
            return False
        ok = True
        if got_size != size:
            self.problems.append(f"{where}: blob {digest} size: expected {size}, got {got_size}")
            ok = False
        got = "sha256:" + sha.hexdigest()
        if got != digest:
            self.problems.append(f"{where}: blob {digest} digest: expected {digest}, got {got}")
            ok = False
        return ok

    def json_blob(self, where: str, desc: dict) -> dict | None:
        if not self.blob(where, desc):
            return None
        try:
            return json.loads(lo.blob_path(self.layout, desc["digest"]).read_bytes())
        except ValueError as err:
            self.problems.append(f"{where}: blob {desc['digest']} is not valid JSON: {err}")
            return None

    def manifest(self, where: str, desc: dict, all_digests: set[str]) -> None:
        media = desc.get("mediaType")
        doc = self.json_blob(where, desc)
        if doc is None:
            return
        if media == mt.INDEX:
            for i, sub in enumerate(doc.get("manifests", [])):
                self.manifest(f"{where} > manifest {i}", sub, all_digests)
            return
        if media != mt.MANIFEST:
            self.problems.append(f"{where}: unsupported descriptor media type {media!r}")
            return
        subject = doc.get("subject")
        if subject and subject.get("digest") not in all_digests and not \
                lo.blob_path(self.layout, subject.get("digest", "sha256:" + "0" * 64)).exists():
            self.problems.append(f"{where}: subject {subject.get('digest')} does not resolve")
        config_desc = doc.get("config") or {}
        config = self.json_blob(f"{where} config", config_desc)
        layers = doc.get("layers") or []
        if config_desc.get("mediaType") != mt.CONFIG:
            for i, layer in enumerate(layers):  # an artifact: blobs only
                self.blob(f"{where} blob {i}", layer)
            return
        if config is None:
            return
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            self.problems.append(f"{where}: config has {len(diff_ids or [])} diff_ids for "
                                 f"{len(layers)} layers")
            diff_ids = None
        for i, layer in enumerate(layers):
            lwhere = f"{where} layer {i}"
            if not self.blob(lwhere, layer):
                continue
            expected = diff_ids[i] if diff_ids else None
            got = self._diff_id(lwhere, layer)
            if got is not None and expected is not None and got != expected:
                self.problems.append(f"{lwhere}: layer {layer['digest']} diff_id: expected {expected}, "
                                     f"got {got}")

    def _diff_id(self, where: str, layer: dict) -> str | None:
        digest = layer["digest"]
        if digest not in self.diff_ids:
            try:
                self.diff_ids[digest] = layerread.diff_id(self.layout, layer)[0]
            except (CfError, zlib.error, OSError, Exception) as err:  # noqa: BLE001 - zstd errors too
                self.problems.append(f"{where}: layer {digest} does not decompress: {err}")
                self.diff_ids[digest] = None
        return self.diff_ids[digest]


def verify(layout) -> list[str]:
    """Problems found in `layout` (empty when it is valid). UsageError if it is not a layout."""
    layout = lo.open_layout(layout)
    try:
        index = lo.read_index(layout)
    except CfError as err:
        return [str(err)]
    checker = _Checker(layout)
    if index.get("schemaVersion") != 2:
        checker.problems.append(f"index.json: schemaVersion is {index.get('schemaVersion')!r}, not 2")
    digests = {d.get("digest") for d in index["manifests"]}
    for i, desc in enumerate(index["manifests"]):
        name = (desc.get("annotations") or {}).get(mt.REF_NAME)
        where = f"tag {name}" if name else f"index.json manifest {i} ({desc.get('artifactType') or 'untagged'})"
        checker.manifest(where, desc, digests)
    return checker.problems


def verify_or_raise(layout) -> None:
    problems = verify(layout)
    if problems:
        raise_problems(layout, problems)


def raise_problems(layout, problems: list[str]):
    from chrootforge.errors import VerificationError

    raise VerificationError(f"{layout} is invalid ({len(problems)} problems):\n  " + "\n  ".join(problems))


__all__ = ["verify", "verify_or_raise"]
