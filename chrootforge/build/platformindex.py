"""`build` for several platforms ([build] platforms): one OCI image index per tag.

Each platform's images build as a single-platform build does, into a layout of their own beside
the real one (`<layout>.build/platforms/<os-arch[-variant]>/layout`, with its own state, logs,
SBOMs and build keys, which include the platform). Then, for every image that every platform
built (or found up to date), `assemble` copies each platform's manifest, config, layers and
referrers (SBOM, build state) into the layout, checked against their digests on the way, and points
each of the image's tags at an image index of those manifests, in the namespace's platform order.
The blobs, the index and the tags are published together (oci.layout.Staging): a tag never points
at a half-copied index. An image that failed on one platform gets no new index; its old tags stay.
"""

from __future__ import annotations

from pathlib import Path

from chrootforge.errors import VerificationError
from chrootforge.gentoo import state as st
from chrootforge.oci import imageindex
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.referrer import SUBJECT_KEY, live_subjects, referrers
from chrootforge.oci.writer import retag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.platforms import Platform

OK = ("built", "up-to-date", "pulled")


def platform_layout(layout: Path, platform: Platform) -> Path:
    """Where `platform`'s images of a multi-platform build live."""
    return st.build_dir(Path(layout)) / "platforms" / platform.slug / "layout"


def _copy_blob(staging: lo.Staging, source: Path, digest: str, size: int) -> None:
    if lo.blob_path(staging.layout, digest).exists():
        return
    writer = staging.writer()
    with lo.VerifyingReader(source, digest, size) as reader:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)
        reader.drain()
    if writer.finish() != (digest, size):
        raise VerificationError(f"blob {digest} of {source} changed while it was copied")


def _copy_manifest(staging: lo.Staging, source: Path, desc: dict) -> dict:
    """Copy a manifest and every blob it names; its document."""
    doc = lo.read_json_blob(source, desc["digest"], desc["size"], "manifest")
    for blob in [desc, doc["config"], *doc["layers"]]:
        _copy_blob(staging, source, blob["digest"], blob["size"])
    return doc


def assemble(layout: Path, refs: list[str], images: list[tuple[Platform, Path, str]]) -> tuple[str, int]:
    """Tag `refs` in `layout` with the index of `images`: (platform, its layout, manifest digest).
    Returns the index's (digest, size)."""
    layout = lo.ensure_layout(layout)
    with lo.Staging(layout) as staging:
        children = []
        attached = []
        for platform, source, digest in images:
            path = lo.blob_path(source, digest)
            desc = {"mediaType": mt.MANIFEST, "digest": digest, "size": path.stat().st_size}
            _copy_manifest(staging, source, desc)
            for ref in referrers(lo.read_index(source), digest):
                _copy_manifest(staging, source, ref)
                attached.append(dict(ref, annotations={SUBJECT_KEY: digest}))
            children.append((platform, desc))
        index_digest, index_size = staging.add_bytes(lo.canonical_json(imageindex.document(children)))
        staging.publish(_tag_change(layout, refs, index_digest, index_size, attached))
    return index_digest, index_size


def _tag_change(layout: Path, tags: list[str], digest: str, size: int, attached: list[dict]):
    def change(manifests: list[dict]) -> list[dict]:
        for tag in tags:
            manifests = retag(tag, digest, size, mt.INDEX)(manifests)
        live = live_subjects(layout, manifests)
        new = {(a["annotations"][SUBJECT_KEY], a.get("artifactType")) for a in attached}
        kept = []
        for m in manifests:
            subject = (m.get("annotations") or {}).get(SUBJECT_KEY)
            if subject and (subject not in live or (subject, m.get("artifactType")) in new):
                continue  # a referrer of an image no longer tagged, or one we replace
            kept.append(m)
        return kept + attached

    return change
