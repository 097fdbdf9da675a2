"""Write OCI image layouts directly: deterministic layers, child layers with whiteouts, verify,
inspect, export/load and referrer artifacts.

The public API is imported lazily (so `chrootforge.oci.cli` stays light):
    commit(rootfs, layout, tag, parent=None, compression="gzip", config=None, labels=None,
           history=None, quiet=False) -> CommitResult   (.digest is the manifest digest)
    tag(layout, source, new_tag); resolve(layout, tag) -> Resolved(tag, descriptor, manifest, config)
    unpack(layout, tag, dest); verify(layout) -> list[str]; describe(layout, tag=None) -> dict
    export(layout, tag, fmt, output); load(layout, tag, into="podman", extra_args=None) -> str
    attach_referrer(layout, tag, data, media_type, artifact_type=None, annotations=None) -> str

Decisions:
- Time: SOURCE_DATE_EPOCH gives `created` and the mtime clamp; when unset it is the parent's
  `created` for a child, else 0 (1970), so output is reproducible by default.
- Names: the tag is stored verbatim as org.opencontainers.image.ref.name (what `oci:DIR:TAG`
  matches); io.containerd.image.name is `localhost/NAME:TAG` (`:latest` added when no tag is
  given) unless NAME already starts with a registry host (see refs.py).
- Child layers: the parent's tree is rebuilt by streaming its layers and hashing file contents
  (no sidecar index that could go stale); the child's same-size files are hashed to compare.
- Not representable, so left out with a notice: sockets, source files named `.wh.*`; silently:
  empty-valued xattrs (a zero-length PAX record means "unset") and security.selinux.
- Device nodes cannot be created by unpack inside a user namespace: skipped with a notice.
- docker-archive refuses zstd images (Docker 20.10 cannot read zstd): commit with gzip.
- Layout extras: `.index.lock` (the flock) and `.tmp/` (blobs being written; files of dead
  commits are cleaned by the next commit and by gc).
"""

_API = {
    "commit": "chrootforge.oci.writer",
    "CommitResult": "chrootforge.oci.writer",
    "tag": "chrootforge.oci.writer",
    "resolve": "chrootforge.oci.resolved",
    "Resolved": "chrootforge.oci.resolved",
    "unpack": "chrootforge.oci.applier",
    "verify": "chrootforge.oci.checker",
    "describe": "chrootforge.oci.inspect",
    "export": "chrootforge.oci.archive",
    "load": "chrootforge.oci.archive",
    "attach_referrer": "chrootforge.oci.referrer",
}

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'chrootforge.oci' has no attribute {name!r}")
