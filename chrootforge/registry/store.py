"""Every layout write of a pull, in one place.

Downloads go to temp files in `<layout>/.tmp` (oci.layout.BlobWriter) and stay invisible until
publish(): only then are the verified blobs renamed into blobs/sha256/ and index.json replaced,
together, atomically, under the layout lock (oci.layout.Staging). abort() (any failure, Ctrl-C)
removes the temp files, so the layout keeps its earlier tags byte for byte.

Before that, check() runs `chrootforge verify`'s checker on the staged image whole (diff_ids
against the decompressed layers, sizes, digests, the config's shape, the layer entries), and
publish() makes sure, under the lock, that every blob the image needs is still there (a `gc`
may have removed an unreferenced blob the pull meant to reuse): a pull never publishes an image
that verify would refuse.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from chrootforge.errors import CfError, VerificationError
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from chrootforge.oci import refs
from chrootforge.oci.referrer import SUBJECT_KEY, live_subjects


class Staging:
    """Temp blobs of one pull. A download thread owns its BlobWriter until it hands it over as
    verified (ready) or drops it; abort() may run while a stuck thread still holds one, so for
    those it only unlinks the temp file (closing an fd another thread writes to is not safe)."""

    def __init__(self, layout):
        self.layout = lo.ensure_layout(layout)
        self.verified: list[lo.BlobWriter] = []
        self.temps: set[Path] = set()
        self.lock = threading.Lock()

    def has(self, digest: str) -> bool:
        return lo.blob_path(self.layout, digest).exists()

    def new_blob(self) -> lo.BlobWriter:
        writer = lo.BlobWriter(self.layout)
        with self.lock:
            self.temps.add(writer.tmp)
        return writer

    def ready(self, writer: lo.BlobWriter) -> None:
        with self.lock:
            self.verified.append(writer)

    def read(self, digest: str, limit: int) -> bytes:
        """A verified blob's bytes, staged or already in the layout (at most `limit` bytes)."""
        with self.lock:
            staged = [w for w in self.verified if w.digest == digest]
        path = staged[0].tmp if staged else lo.blob_path(self.layout, digest)
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"blob {digest[:19]} is larger than {limit} bytes")
        return data

    def check(
        self,
        name: str,
        tag: str,
        image: dict,
        referrers: list[dict],
        needed: set[str],
        subjects: dict[str, str] | None = None,
    ) -> None:
        """VerificationError unless the image, as publish() would store it, passes the checker that
        `chrootforge verify` runs. It runs on a view: a layout in .tmp whose index.json holds only
        this image and its referrers, and whose blobs (`needed`) are symlinks to the staged temp
        files or to the blobs the layout already had (those are checked too: a damaged one is not
        reused)."""
        from chrootforge.oci import checker

        with self.lock:
            staged = {w.digest: w.tmp for w in self.verified}
        view = lo.view_dir(self.layout)
        try:
            blobs = view / "blobs" / "sha256"
            blobs.mkdir(parents=True)
            for digest in needed:  # (absolute targets: the layout path may be relative)
                target = staged.get(digest) or lo.blob_path(self.layout, digest)
                os.symlink(os.path.abspath(target), lo.blob_path(view, digest))
            (view / "oci-layout").write_bytes(lo.canonical_json(lo.LAYOUT_VERSION))
            manifests = [_tagged(tag, image), *_attach_all(referrers, image, subjects)]
            index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": manifests}
            (view / "index.json").write_bytes(lo.canonical_json(index))
            problems, _ = checker.check(view)
        except OSError as err:
            raise CfError(
                f"cannot check the pulled image in {self.layout}/.tmp: {err.strerror or err}"
            ) from err
        finally:
            shutil.rmtree(view, ignore_errors=True)
        if problems:
            shown = problems[0].replace(str(view), str(self.layout))
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise VerificationError(
                f"{name} is not a valid image: {shown}{more}",
                hint="nothing was stored; the registry holds a broken image (or the layout a "
                f"damaged blob: chrootforge verify {self.layout})",
            )

    def drop(self, writer: lo.BlobWriter) -> None:
        writer.abort()
        with self.lock:
            self.temps.discard(writer.tmp)

    def abort(self) -> None:
        with self.lock:
            verified, temps = self.verified, self.temps
            self.verified, self.temps = [], set()
        for writer in verified:
            writer.abort()
        for path in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def publish(
        self,
        tag: str,
        image: dict,
        referrers: list[dict],
        needed: set[str],
        subjects: dict[str, str] | None = None,
    ) -> None:
        """Store the verified blobs and point `tag` at `image` (a manifest or an image index),
        adding the referrer descriptors (the layout's convention: no ref.name, annotated with
        their subject: `image`, or for an index's images subjects[referrer digest]), as ONE
        publication under the layout lock (oci.layout.Staging): if anything fails, no new blob
        stays behind. `needed`: every blob digest the image and its referrers reference (checked
        present)."""
        with self.lock:
            verified, self.verified = self.verified, []
        staging = lo.Staging(Path(self.layout))
        staging.writers = verified
        tagged = _tagged(tag, image)
        attached = _attach_all(referrers, image, subjects)

        def change(manifests: list[dict]) -> list[dict]:
            gone = sorted(d for d in needed if not lo.blob_path(self.layout, d).exists())
            if gone:
                raise CfError(
                    f"blob {gone[0][:19]} left {self.layout} during the pull (a concurrent gc?)",
                    hint="nothing was stored; pull again",
                )
            out = [m for m in manifests if (m.get("annotations") or {}).get(mt.REF_NAME) != tag] + [tagged]
            live = live_subjects(self.layout, out)
            new = {d["digest"] for d in attached}
            # as oci.referrer does: referrers of images no longer tagged go, ours replace equal ones
            out = [
                m
                for m in out
                if not (subject := (m.get("annotations") or {}).get(SUBJECT_KEY))
                or (subject in live and m.get("digest") not in new)
            ]
            return out + attached

        try:
            staging.publish(change)
        finally:
            staging.abort()  # (a no-op after success) the temp files of a failed publication
            with self.lock:
                self.temps.difference_update(w.tmp for w in verified)


def _tagged(tag: str, image: dict) -> dict:
    return {
        "mediaType": image["mediaType"],
        "digest": image["digest"],
        "size": image["size"],
        "annotations": {mt.REF_NAME: tag, mt.CONTAINERD_NAME: refs.full_name(tag)},
    }


def _attach_all(referrers: list[dict], image: dict, subjects: dict[str, str] | None) -> list[dict]:
    """The index entries of `referrers`: each attached to `image`, or (the images of a pulled
    index) to the image subjects[its digest] names."""
    return [_attached(d, (subjects or {}).get(d["digest"], image["digest"])) for d in referrers]


def _attached(desc: dict, subject: str) -> dict:
    """A referrer's index entry: no ref.name, annotated with its subject."""
    entry = {
        "mediaType": desc["mediaType"],
        "digest": desc["digest"],
        "size": desc["size"],
        "annotations": {SUBJECT_KEY: subject},
    }
    if desc.get("artifactType"):
        entry["artifactType"] = desc["artifactType"]
    return entry
