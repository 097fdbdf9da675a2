"""Every layout write of a pull, in one place.

Downloads go to temp files in `<layout>/.tmp` (oci.layout.BlobWriter) and stay invisible until
publish(): only then are the verified blobs renamed into blobs/sha256/ and index.json replaced,
together, atomically, under the layout lock (oci.layout.Staging). abort() (any failure, Ctrl-C)
removes the temp files, so
the layout keeps its earlier tags byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

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
        self, tag: str, image: dict, referrers: list[dict], subjects: dict[str, str] | None = None
    ) -> None:
        """Store the verified blobs and point `tag` at `image` (a manifest or an image index),
        adding the referrer descriptors (the layout's convention: no ref.name, annotated with
        their subject: `image`, or for an index's images subjects[referrer digest]), as ONE
        publication under the layout lock (oci.layout.Staging): if anything fails, no new blob
        stays behind."""
        with self.lock:
            verified, self.verified = self.verified, []
        staging = lo.Staging(Path(self.layout))
        staging.writers = verified
        tagged = {
            "mediaType": image["mediaType"],
            "digest": image["digest"],
            "size": image["size"],
            "annotations": {mt.REF_NAME: tag, mt.CONTAINERD_NAME: refs.full_name(tag)},
        }
        attached = []
        for desc in referrers:
            entry = {
                "mediaType": desc["mediaType"],
                "digest": desc["digest"],
                "size": desc["size"],
                "annotations": {SUBJECT_KEY: (subjects or {}).get(desc["digest"], image["digest"])},
            }
            if desc.get("artifactType"):
                entry["artifactType"] = desc["artifactType"]
            attached.append(entry)

        def change(manifests: list[dict]) -> list[dict]:
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
