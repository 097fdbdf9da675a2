"""verify: every reference resolves, every document has the right shape, every blob matches its
digest and size, every diff_id matches, and every layer's entries would unpack inside the root.

Problems come back as lines naming the tag, the document and the field; a notice (unreferenced
blobs, which `chrootforge gc` removes) does not make a layout invalid.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.oci import layerread, parentindex, shapes
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt


class _Checker:
    def __init__(self, layout: Path):
        self.layout = layout
        self.problems: list[str] = []
        self.checked: dict[str, bool] = {}  # digest/size -> blob ok
        self.diff_ids: dict[str, str | None] = {}
        self.linted: dict[tuple[str, ...], bool] = {}  # layer chains whose entries were checked

    def blob(self, where: str, desc: dict) -> bool:
        digest, size = desc.get("digest", ""), desc.get("size")
        key = f"{digest}/{size}"
        if key not in self.checked:
            self.checked[key] = self._blob(where, digest, size)
        return self.checked[key]

    def _blob(self, where: str, digest: str, size) -> bool:
        try:
            path = lo.blob_path(self.layout, digest)
        except CfError:
            self.problems.append(f"{where}: malformed digest {digest!r}")
            return False
        sha = hashlib.sha256()
        got_size = 0
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not hang
            with open(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    self.problems.append(f"{where}: blob {digest} is not a regular file")
                    return False
                # Past the declared size the digest cannot match: stop (a link to /dev/zero).
                limit = size if isinstance(size, int) else float("inf")
                while got_size <= limit and (data := handle.read(1 << 20)):
                    sha.update(data)
                    got_size += len(data)
        except FileNotFoundError:
            self.problems.append(f"{where}: blob {digest} is missing (dangling reference)")
            return False
        except OSError as err:
            self.problems.append(f"{where}: blob {digest} cannot be read: {err.strerror}")
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
        try:  # as every reader reads it: at most 4 MiB, JSON of bounded depth, an object
            return lo.read_json_blob(self.layout, desc["digest"], desc["size"], "blob")
        except CfError as err:
            self.problems.append(f"{where}: {err}")
            return None

    def manifest(self, where: str, desc: dict, all_digests: set[str]) -> None:
        media = desc.get("mediaType")
        doc = self.json_blob(where, desc)
        if doc is None:
            return
        try:
            if media in mt.INDEX_TYPES:
                shapes.index(doc, where)
            elif media in mt.MANIFEST_TYPES:
                shapes.manifest(doc, where)
        except shapes.ShapeError as err:
            self.problems.append(str(err))
            return
        if media not in mt.INDEX_TYPES | mt.MANIFEST_TYPES:
            self.problems.append(f"{where}: unsupported descriptor media type {media!r}")
            return
        declared = doc.get("mediaType")
        if declared is not None and declared != media:
            self.problems.append(f"{where}: the document says it is a {declared!r}, its descriptor {media!r}")
            return
        if media in mt.INDEX_TYPES:
            for i, sub in enumerate(doc.get("manifests", [])):
                self.manifest(f"{where} > manifest {i}", sub, all_digests)
            return
        subject = doc.get("subject")
        if (
            subject
            and subject["digest"] not in all_digests
            and not lo.blob_path(self.layout, subject["digest"]).exists()
        ):
            self.problems.append(f"{where}: subject {subject['digest']} does not resolve")
        config_desc = doc["config"]
        layers = doc["layers"]
        if config_desc.get("mediaType") not in mt.CONFIG_TYPES:  # an artifact: its blobs only
            self.blob(f"{where} config", config_desc)
            for i, layer in enumerate(layers):
                self.blob(f"{where} blob {i}", layer)
            return
        config = self.json_blob(f"{where} config", config_desc)
        if config is None:
            return
        try:
            shapes.image_config(config, f"{where} config", len(layers))
        except shapes.ShapeError as err:
            self.problems.append(str(err))
            return
        diff_ids = config["rootfs"]["diff_ids"]
        intact = True
        for i, layer in enumerate(layers):
            lwhere = f"{where} layer {i}"
            if not self.blob(lwhere, layer):
                intact = False
                continue
            got = self._diff_id(lwhere, layer)
            intact = intact and got is not None
            if got is not None and got != diff_ids[i]:
                self.problems.append(
                    f"{lwhere}: layer {layer['digest']} diff_id: expected {diff_ids[i]}, got {got}"
                )
        if intact:
            self._lint(where, layers)

    def _diff_id(self, where: str, layer: dict) -> str | None:
        digest = layer["digest"]
        if digest not in self.diff_ids:
            try:
                self.diff_ids[digest] = layerread.diff_id(self.layout, layer)[0]
            except (CfError, zlib.error, OSError, Exception) as err:  # noqa: BLE001 - zstd errors too
                self.problems.append(f"{where}: layer {digest} does not decompress: {err}")
                self.diff_ids[digest] = None
        return self.diff_ids[digest]

    def _lint(self, where: str, layers: list[dict]) -> None:
        """Replay the layers the way unpack and commit --parent read them (no entry through a
        symlink, no absolute or `..` name, hardlinks to files of the image)."""
        key = tuple(layer["digest"] for layer in layers)
        if key in self.linted:
            return
        try:
            parentindex.load(self.layout, layers, hash_content=False)
            self.linted[key] = True
        except CfError as err:
            self.linted[key] = False
            self.problems.append(f"{where}: {err}")


def verify(layout) -> list[str]:
    """Problems found in `layout` (empty when it is valid). UsageError if it is not a layout."""
    return check(layout)[0]


def check(layout) -> tuple[list[str], list[str]]:
    """(problems, notices) of a layout."""
    layout = lo.open_layout(layout)
    try:
        index = lo.read_index(layout)
    except CfError as err:
        return [str(err)], []
    checker = _Checker(layout)
    if index.get("schemaVersion") != 2:
        checker.problems.append(f"index.json: schemaVersion is {index.get('schemaVersion')!r}, not 2")
    digests = {d["digest"] for d in index["manifests"]}
    for i, desc in enumerate(index["manifests"]):
        name = (desc.get("annotations") or {}).get(mt.REF_NAME)
        where = (
            f"tag {name}" if name else f"index.json manifest {i} ({desc.get('artifactType') or 'untagged'})"
        )
        checker.manifest(where, desc, digests)
    notices = []
    try:
        garbage = lo.unreferenced_blobs(layout)
    except CfError:  # a document the walk cannot follow: already among the problems
        garbage = []
    if garbage:
        notices.append(
            f"{len(garbage)} blobs ({sum(s for _, s in garbage) / 1e6:.1f} MB) are not referenced "
            f"by any tag or referrer (left by interrupted commits); `chrootforge gc {layout}` "
            "removes them"
        )
    return checker.problems, notices


def verify_or_raise(layout) -> None:
    problems = verify(layout)
    if problems:
        raise_problems(layout, problems)


def raise_problems(layout, problems: list[str]):
    from chrootforge.errors import VerificationError

    raise VerificationError(f"{layout} is invalid ({len(problems)} problems):\n  " + "\n  ".join(problems))


__all__ = ["check", "verify", "verify_or_raise"]
