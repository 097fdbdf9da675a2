"""OCI media types and annotation keys used by the writer (image-spec v1.1)."""

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

LAYER_TYPES = {"gzip": LAYER_GZIP, "zstd": LAYER_ZSTD}
COMPRESSION_OF = {LAYER_GZIP: "gzip", DOCKER_LAYER_GZIP: "gzip", LAYER_ZSTD: "zstd", LAYER_TAR: None}

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
