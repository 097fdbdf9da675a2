"""The spec as plain values: a namespace (chrootforge.toml) and its images (image.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SCRATCH = "scratch"
PHASES = ("configure_builder", "configure_rootfs", "post_emerge", "finish_rootfs")


@dataclass(frozen=True)
class Stage3Source:
    path: Path | None = None            # a local tarball (PATH.asc and PATH.DIGESTS beside it)
    mirrors: tuple[str, ...] = ()       # else: download from these (default: $GENTOO_MIRRORS / official)
    arch: str = "amd64"
    variant: str = "openrc"
    date: str | None = None
    keyrings: tuple[Path, ...] = ()
    insecure: bool = False


@dataclass(frozen=True)
class TreeSource:
    path: Path | None = None            # a directory (bound read-only)
    snapshot: str | None = None         # "latest", a date YYYYMMDD, or a local snapshot file
    snapshot_path: Path | None = None
    name: str = "gentoo"                # bound at /var/db/repos/<name>
    profile: str | None = None          # make.profile, relative to the tree's profiles/
    keyrings: tuple[Path, ...] = ()
    insecure: bool = False


@dataclass(frozen=True)
class Namespace:
    name: str
    root: Path                          # the namespace folder
    spec_path: Path
    stage3: Stage3Source
    tree: TreeSource
    repos: dict[str, Path]
    make_conf: dict[str, str]
    layout: Path
    tags: tuple[str, ...]
    prefix: str                         # image name prefix, e.g. localhost/world
    compression: str
    network: str
    distfiles: Path | None
    jobs: int
    text: str = ""                      # raw file text (part of the cache key)


@dataclass(frozen=True)
class PackageSettings:
    atom: str
    use: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Strip:
    docs: bool = True
    man: bool = True
    info: bool = True
    locales: tuple[str, ...] | None = ()  # locales to keep; None keeps all
    headers: bool = True
    static_libs: bool = True


@dataclass(frozen=True)
class Hook:
    phase: str
    name: str
    path: Path                          # the script on the host


@dataclass(frozen=True)
class Service:
    name: str
    run: str
    finish: str | None = None


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    workdir: str | None = None
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str | None = None


@dataclass(frozen=True)
class Image:
    name: str
    folder: Path
    spec_path: Path
    parent: str                         # another image of the namespace, or SCRATCH
    packages: tuple[str, ...]
    package_settings: tuple[PackageSettings, ...]
    mask: tuple[str, ...]
    unmask: tuple[str, ...]
    strip: Strip
    hooks: tuple[Hook, ...]
    services: tuple[Service, ...]
    config: ImageConfig
    tags: tuple[str, ...]
    description: str = ""
    text: str = ""

    def hooks_for(self, phase: str) -> list[Hook]:
        return [h for h in self.hooks if h.phase == phase]


@dataclass
class Project:
    """A namespace with its images loaded."""

    namespace: Namespace
    images: dict[str, Image] = field(default_factory=dict)
