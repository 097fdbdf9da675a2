"""Media types and annotation keys: OCI's (image-spec v1.1), which chrootforge writes, and Docker's
(image manifest v2, schema 2), which it reads wherever it reads an OCI one.

A Docker v2s2 document is an OCI one under other names: the manifest, list, config and layer
formats are the same bytes (OCI's were derived from them), so OCI_NAME maps each Docker type to
its OCI equivalent. Docker schema 1 and foreign (non-distributable) layers have no equivalent.
"""

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_SCHEMA1 = frozenset(
    (
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
)

# the two families, as every reader accepts them
MANIFEST_TYPES = frozenset((MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset((INDEX, DOCKER_LIST))
CONFIG_TYPES = frozenset((CONFIG, DOCKER_CONFIG))
OCI_NAME = {
    DOCKER_MANIFEST: MANIFEST,
    DOCKER_LIST: INDEX,
    DOCKER_CONFIG: CONFIG,
    DOCKER_LAYER_GZIP: LAYER_GZIP,
    DOCKER_LAYER_TAR: LAYER_TAR,
}

LAYER_TYPES = {"gzip": LAYER_GZIP, "zstd": LAYER_ZSTD}
COMPRESSION_OF = {
    LAYER_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    LAYER_ZSTD: "zstd",
    LAYER_TAR: None,
    DOCKER_LAYER_TAR: None,
}

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def oci_descriptor(desc: dict) -> dict:
    """`desc` under its OCI media type (the same bytes: only the name changes)."""
    media = desc.get("mediaType")
    return dict(desc, mediaType=OCI_NAME[media]) if media in OCI_NAME else desc
