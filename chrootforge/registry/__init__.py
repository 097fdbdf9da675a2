"""Push images to and pull them from OCI distribution registries (`chrootforge push` / `pull`).

The Python API, stable for `build` (--push, --remote-cache) to reuse; it imports lazily:

    RegistryOptions(authfile=None, creds=None, cert_dir=None, tls_verify=True, timeout=60,
                    retries=3, chunk_size=16 MiB, jobs=4, quiet=False)
    add_registry_options(parser)            # --authfile --creds --cert-dir --tls-verify
                                            # --retry-times --timeout, skopeo's spelling
    options_from_args(args) -> RegistryOptions

    push(layout, tag, dest, options=None) -> PushResult
        dest: "docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]" or a RemoteRef. PushResult has
        .digest (the manifest's), .uploaded_bytes, .blobs_uploaded/.blobs_skipped/.blobs_mounted,
        .referrers (artifact digests) and .referrers_via ("api", "tag" or None).
    pull(src, layout, tag=None, options=None, accept=None) -> str
        The manifest digest. `tag` defaults to HOST[:PORT]/REPO:TAG. The image's referrers (its
        SBOM) come along. Nothing unverified ever lands in the layout. `accept(Pulled)` may check
        the downloaded content (manifest, referrers, any blob) before publication; what it raises
        aborts the pull with the layout untouched.
    remote_digest(ref, options=None) -> str | None
        The digest a tag points at, None when the tag (or the repository) does not exist.
    parse_ref(text) -> RemoteRef(registry, repository, tag, digest)

Errors are chrootforge.errors.CfError subclasses with one-line messages; credentials and tokens
never appear in any message. docs/registry.md describes auth and TLS lookup and partial failures.
"""

_API = {
    "RegistryOptions": "chrootforge.registry.options",
    "add_registry_options": "chrootforge.registry.options",
    "options_from_args": "chrootforge.registry.options",
    "push": "chrootforge.registry.image_push",
    "PushResult": "chrootforge.registry.image_push",
    "pull": "chrootforge.registry.image_pull",
    "remote_digest": "chrootforge.registry.image_pull",
    "Pulled": "chrootforge.registry.image_pull",
    "parse_ref": "chrootforge.imageref",
    "RemoteRef": "chrootforge.imageref",
}

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'chrootforge.registry' has no attribute {name!r}")
