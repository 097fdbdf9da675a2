"""The spec as plain values: a namespace (chrootforge.toml) and its images (image.toml).

These dataclasses are also the spec's schema: each field declared with `key(...)` is a key of the
file, with its type, default, validation and help text (see spec/schema.py). Loading
(spec/namespace.py, spec/image.py), the key reference in docs/pipeline.md and `chrootforge new` all
come from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from chrootforge.platforms import Platform
from chrootforge.sources import grammar
from chrootforge.spec import checks
from chrootforge.spec.schema import (
    Bool,
    Choice,
    Int,
    Kind,
    Locales,
    PathKind,
    PathList,
    Platforms,
    Str,
    StrList,
    StrMap,
    key,
    section,
    table_map,
    tables,
)

SCRATCH = "scratch"

# Every string is one line without control characters unless its kind says `lines=True`
# (schema.text): values end up in /etc/portage files, make.conf, shell scripts and the OCI config.
STR, BOOL, PATH = Str(), Bool(), PathKind()
STRS = StrList()
STRS_OR_STR = StrList(single=True)
WORDS = StrList(words=True)
ARGV = StrList(single=True, lines=True)  # Entrypoint, Cmd: a word may hold a newline (sh -c), no NUL


class MakeValue(Kind):
    toml = "string or list of strings"

    def convert(self, at, value):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = " ".join(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            raise at.error(f"{'.'.join(at.path)} must be a string or a list of strings")
        problem = checks.make_value(value)
        if problem:
            raise at.error(f"{'.'.join(at.path)}: {problem}")
        return value


# -- chrootforge.toml ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Stage3Source:
    """The stage3 the builders start from: a local tarball, or a verified download."""

    path: Path | None = key(
        PATH,
        "a local stage3 tarball (PATH.asc and PATH.DIGESTS beside it)",
        None,
        example="stage3-amd64-openrc.tar.xz",
        content=False,
    )
    mirrors: tuple[str, ...] = key(
        STRS_OR_STR,
        "else: download from these mirrors",
        (),
        toml_name="mirror",
        default_doc="$GENTOO_MIRRORS, else the official mirror",
        example=["https://distfiles.gentoo.org"],
        each=checks.mirror,
        content=False,
    )
    # (each of these becomes part of a mirror URL and of cache names: Gentoo's grammar only)
    arch: str = key(
        STR,
        "the stage's architecture (Gentoo's name: releases/ARCH/autobuilds, stage3-ARCH-...)",
        "",
        default_doc="each platform's (amd64, arm64, arm, x86, riscv, ppc64, s390)",
        example="amd64",
        each=grammar.arch,
    )
    variant: str = key(
        STR, "the stage's variant (e.g. openrc, systemd, musl)", "openrc", each=grammar.variant
    )
    date: str | None = key(
        STR,
        "a release stamp (YYYYMMDDTHHMMSSZ) instead of the latest",
        None,
        example="20240101T170309Z",
        each=grammar.stamp,
    )
    keyrings: tuple[Path, ...] = key(
        PathList(),
        "OpenPGP keys trusted for this stage, besides the pinned Gentoo keys",
        (),
        toml_name="keyring",
        example=["keys/release.asc"],
        content=False,
    )
    insecure: bool = key(
        BOOL,
        "skip the signature check (loud, and recorded in the image labels)",
        False,
        toml_name="insecure_skip_verify",
    )


@dataclass(frozen=True, kw_only=True)
class TreeSource:
    """The main ebuild repository, bound read-only at /var/db/repos/gentoo."""

    path: Path | None = key(PATH, "a repository directory", None, example="../repo", content=False)
    snapshot: str | None = key(
        STR,
        'or a verified snapshot: "latest", a date YYYYMMDD or a local file',
        None,
        example="latest",
        content=False,
    )
    snapshot_path: Path | None = None  # a local snapshot file (from `snapshot`)
    name: str = key(
        STR,
        "the repository's name",
        "gentoo",
        default_doc="profiles/repo_name of path, else gentoo",
        each=checks.repo_name,
    )
    profile: str | None = key(
        STR,
        "the make.profile, relative to the tree's profiles/",
        None,
        example="default/linux/amd64/23.0",
        each=checks.profile,
    )
    keyrings: tuple[Path, ...] = key(
        PathList(), "OpenPGP keys trusted for the snapshot", (), toml_name="keyring", content=False
    )
    insecure: bool = key(
        BOOL, "skip the snapshot's signature check (loud)", False, toml_name="insecure_skip_verify"
    )


@dataclass(frozen=True, kw_only=True)
class Namespace:
    """A namespace folder: chrootforge.toml, and a folder per image."""

    TABLES: ClassVar[dict[str, str]] = {
        "output": "Where the images go and how they are named.",
        "build": "How builds run.",
    }

    name: str = key(
        STR, "the namespace's name", "", each=checks.name("namespace"), default_doc="the folder's name"
    )
    stage3: Stage3Source = section(
        Stage3Source,
        "The stage3 the builders start from: `path`, or a "
        "download from `mirror` verified against the pinned Gentoo keys.",
    )
    tree: TreeSource = section(
        TreeSource,
        "The main ebuild repository: `path` or `snapshot` (one of them "
        "is required), bound read-only at /var/db/repos/gentoo.",
    )
    repos: dict[str, Path] = table_map(
        PATH,
        "Extra repositories, bound read-only at /var/db/repos/NAME.",
        "NAME",
        name_check=checks.repo_name,
        example={"overlay": "../overlay"},
        content=False,  # the build key has each repository by name and content (inputs.tree_id)
    )
    make_conf: dict[str, str] = table_map(
        MakeValue(),
        "make.conf variables (FEATURES and USE stay incremental). Defaults: "
        'CFLAGS="-O2 -pipe", CXXFLAGS="${CFLAGS}", MAKEOPTS="-j2".',
        "VAR",
        name_check=checks.make_var,
        example={"CFLAGS": "-O2 -pipe", "USE": "-* ipv6 ssl"},
    )
    layout: Path = key(
        PATH, "the OCI layout written (--layout overrides)", "out/layout", section="output", content=False
    )
    tags: tuple[str, ...] = key(
        STRS,
        "the tags of every image (an image.toml may set its own)",
        ("latest",),
        section="output",
        each=checks.tag,
        check=checks.not_empty("tags"),
        hint="letters, digits, . _ - (max 128)",
        content=False,
    )
    prefix: str = key(
        STR,
        "the images' names in the layout: PREFIX/IMAGE:TAG (podman, skopeo); a name, not part of the image",
        "",
        section="output",
        each=checks.prefix,
        default_doc='"localhost/" + the namespace name',
        hint="lowercase path components, optionally after a registry host, "
        "e.g. localhost/myproject or registry.example.com:5000/team",
        content=False,
    )
    compression: str = key(Choice("gzip", "zstd"), "layer compression", "gzip", section="output")
    registry: str | None = key(
        STR,
        "where `build --push` publishes: IMAGE:TAG goes to REGISTRY/IMAGE:TAG "
        "(docker://HOST[:PORT][/NAMESPACE], no tag)",
        None,
        section="output",
        check=checks.registry_base,
        example="docker://registry.example.com/team",
        hint="write docker://HOST[:PORT]/NAMESPACE, e.g. docker://registry.example.com/team",
        content=False,
    )
    sign_by: str | None = key(
        STR,
        "what `build --push` (and --remote-cache) signs with: an OpenPGP key of the user's GnuPG "
        "keyring ($GNUPGHOME); the signatures go to the lookaside store of registries.d",
        None,
        section="output",
        check=checks.fingerprint,
        example="0123456789ABCDEF0123456789ABCDEF01234567",
        hint="the key's 40 hex digit fingerprint (gpg --list-secret-keys)",
        content=False,
    )
    sign_by_sigstore_private_key: Path | None = key(
        PATH,
        "or a sigstore private key (ECDSA P-256 PEM, or cosign's encrypted key file); the "
        "signatures go to the registry's sha256-<digest>.sig tag",
        None,
        section="output",
        example="${COSIGN_KEY_FILE}",
        content=False,
    )
    sign_passphrase_file: Path | None = key(
        PATH,
        "a file whose first line is the signing key's passphrase (never the passphrase itself)",
        None,
        section="output",
        example="${COSIGN_PASSWORD_FILE}",
        content=False,
    )
    network: str = key(
        Choice("none", "host"),
        "network in the build sandbox (host copies resolv.conf in, for fetching distfiles)",
        "none",
        section="build",
    )
    distfiles: Path | None = key(
        PATH,
        "a folder of distfiles seeding the per-user distfiles cache",
        None,
        section="build",
        example="distfiles",
        content=False,
    )
    jobs: int = key(
        Int(),
        "emerge --jobs: how many packages one image's emerge builds at once "
        "(build --jobs is how many images build at once)",
        2,
        section="build",
        check=checks.at_least(1),
        content=False,
    )
    platforms: tuple[Platform, ...] = key(
        Platforms(),
        "the platforms every image is built for, os/arch[/variant]; with more than one, each tag "
        "is an OCI image index of one image per platform. A foreign one runs under QEMU's "
        "emulator. Per platform, ${VAR} takes $VAR_<ARCH> when set (e.g. $STAGE_ARM64), and a "
        "profile's arch component follows the platform",
        (),
        section="build",
        default_doc="[stage3] arch's platform, else this machine's",
        example=["linux/amd64", "linux/arm64"],
        # which images are built, not what one is: each image's key has its own platform
        content=False,
    )
    binhost: str | None = key(
        STR,
        "a binhost serving chrootforge binpkgs caches (http, https or file URL of "
        "the directory that holds them; a build reads URL/<binpkgs key>/); "
        "--binhost overrides it",
        None,
        section="build",
        check=checks.binhost,
        example="https://binhost.example.com/chrootforge",
        hint="an http://, https:// or file:// URL without query or credentials",
        content=False,
    )
    root: Path  # the namespace folder
    spec_path: Path
    text: str = ""  # raw file text (its ${VAR}s)
    # The platform this view of the namespace builds for (load_namespace reads the file once per
    # platform: stage3, profile and ${VAR}s may differ between them). Not a key of the file: the
    # build key names it on its own (build.image_key).
    platform: Platform = Platform("linux", "amd64")


# -- image.toml --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PackageSettings:
    """Per-package settings: package.use, package.accept_keywords and package.env."""

    atom: str
    use: tuple[str, ...] = key(WORDS, "USE flags (package.use)", (), each=checks.use_flag, example=["static"])
    keywords: tuple[str, ...] = key(
        WORDS, "accepted keywords (package.accept_keywords)", (), each=checks.keyword, example=["~amd64"]
    )
    env: tuple[tuple[str, str], ...] = key(
        StrMap(name_check=checks.make_var),
        "build environment (package.env)",
        (),
        example={"CFLAGS": "-O3"},
    )


@dataclass(frozen=True, kw_only=True)
class Strip:
    """What is removed from the image root before the commit (portage's own state always goes)."""

    docs: bool = key(BOOL, "remove /usr/share/doc and gtk-doc (and install none: FEATURES=nodoc)", True)
    man: bool = key(BOOL, "remove /usr/share/man (FEATURES=noman)", True)
    info: bool = key(BOOL, "remove /usr/share/info (FEATURES=noinfo)", True)
    headers: bool = key(BOOL, "remove /usr/include, pkgconfig and aclocal files", True)
    static_libs: bool = key(BOOL, "remove *.a and *.la under /lib*, /usr/lib*", True)
    locales: tuple[str, ...] | None = key(
        Locales(),
        'locales kept ("all" keeps every one; C always stays)',
        (),
        example=["en_US"],
        each=checks.locale,
    )
    keep: tuple[str, ...] = key(
        STRS,
        "paths kept although a rule above removes them: absolute paths or "
        "shell globs; a pattern matching nothing is a warning",
        (),
        each=checks.keep_pattern,
        example=["/usr/share/doc/*/LICENSE*"],
    )


@dataclass(frozen=True, kw_only=True)
class HookNames:
    """Scripts run inside the builder, from the image folder or the stock ones in hooks/ (by name)."""

    configure_builder: tuple[str, ...] = key(
        STRS_OR_STR,
        "the builder only (nothing of it lands in the image), after /etc/portage is set up",
        (),
        each=checks.hook_ref,
    )
    configure_rootfs: tuple[str, ...] = key(
        STRS_OR_STR, "before emerge, with ROOT=/emerge-root", (), each=checks.hook_ref
    )
    post_emerge: tuple[str, ...] = key(
        STRS_OR_STR, "after emerge and the s6 service dirs", (), each=checks.hook_ref
    )
    finish_rootfs: tuple[str, ...] = key(
        STRS_OR_STR, "before stripping and the commit", (), example=["check-binaries"], each=checks.hook_ref
    )


PHASES = tuple(f.name for f in fields(HookNames))


@dataclass(frozen=True)
class Hook:
    phase: str
    name: str
    path: Path  # the script on the host


@dataclass(frozen=True, kw_only=True)
class Service:
    """An s6 service: /etc/service/NAME/{run,finish}, linked into the scan dir /service."""

    name: str
    run: str = key(
        STR,
        "the command s6 supervises (exec'd by /bin/sh, stderr joined to stdout)",
        check=checks.not_empty("run"),
        example="mydaemon --foreground",
    )
    finish: str | None = key(STR, "run when the service stops", None, example="echo stopped")


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """The OCI image config; unset fields are inherited from the parent."""

    entrypoint: tuple[str, ...] | None = key(ARGV, "Entrypoint", None, example=["/usr/bin/app"])
    cmd: tuple[str, ...] | None = key(
        ARGV,
        "Cmd (an image with services and no cmd gets s6-svscan -t0 /service)",
        None,
        example=["/bin/sh"],
    )
    env: tuple[tuple[str, str], ...] = key(
        StrMap(sort=False, name_check=checks.env_name, lines=True),
        "Env, added to the parent's",
        (),
        example={"LANG": "C.UTF-8"},
    )
    user: str | None = key(
        STR,
        "User: NAME, UID, NAME:GROUP or UID:GID (a name must be in the image's /etc/passwd)",
        None,
        each=checks.user,
        example="nobody",
    )
    workdir: str | None = key(STR, "WorkingDir", None, each=checks.absolute, example="/")
    ports: tuple[str, ...] = key(
        STRS,
        "ExposedPorts: N or N/tcp, N/udp, N/sctp (N from 1 to 65535)",
        (),
        each=checks.port,
        example=["8080/tcp"],
    )
    volumes: tuple[str, ...] = key(STRS, "Volumes", (), each=checks.absolute, example=["/var/lib/app"])
    labels: tuple[tuple[str, str], ...] = key(
        StrMap(name_check=checks.label_key, lines=True),
        "Labels (org.chrootforge.* are the build's own)",
        (),
        example={"org.opencontainers.image.url": "https://example.org"},
    )
    stop_signal: str | None = key(
        STR,
        "StopSignal",
        None,
        check=checks.signal,
        example="SIGTERM",
        hint=f"one of {', '.join(checks.SIGNALS)}",
    )


@dataclass(frozen=True, kw_only=True)
class Image:
    """An image folder's image.toml."""

    description: str = key(STR, "what the image is (org.opencontainers.image.description)", "")
    parent: str = key(
        STR,
        'the image this one is built on: another image of the namespace, or "scratch"',
        each=checks.name("parent image"),
        hint='set parent = "scratch" or the name of another image',
    )
    packages: tuple[str, ...] = key(
        STRS,
        "packages emerged into the image root",
        (),
        each=checks.atom,
        hint="write e.g. sys-apps/busybox or >=sys-apps/s6-2.11",
        example=["app-misc/hello"],
    )
    tags: tuple[str, ...] = key(
        STRS,
        "the image's tags",
        (),
        each=checks.tag,
        check=checks.not_empty("tags"),
        default_doc="the namespace's [output] tags",
        content=False,
    )
    mask: tuple[str, ...] = key(
        STRS, "package.mask entries", (), each=checks.atom, example=[">=app-misc/hello-2"]
    )
    unmask: tuple[str, ...] = key(STRS, "package.unmask entries", (), each=checks.atom)
    provided: tuple[str, ...] = key(
        STRS,
        "package.provided entries: emerge takes them as installed though the image lacks them. "
        "category/name (the tree's best visible version, resolved in the builder) or "
        "category/name-VERSION. Children inherit them",
        (),
        each=checks.provided_entry,
        example=["dev-lang/perl"],
    )
    unprovided: tuple[str, ...] = key(
        STRS,
        "category/name: drop what the parents would put in package.provided (their packages and "
        "their `provided`), so that emerge installs it again, in this image",
        (),
        each=checks.cp,
        example=["sys-apps/busybox"],
    )
    uninstall: tuple[str, ...] = key(
        STRS,
        "category/name: unmerged from the image root after emerge and post_emerge (files and "
        "/var/db/pkg entry), with portage's own unmerge; only packages this image's emerge installed",
        (),
        each=checks.cp,
        example=["dev-build/make"],
    )
    force_uninstall: bool = key(
        BOOL,
        "uninstall even what an installed package still needs (else that is an error naming the package)",
        False,
    )
    runtime_libs: tuple[str, ...] = key(
        STRS,
        "shared libraries copied from the builder's installed packages into the directory of the "
        "image's libc.so.6 (e.g. gcc's, which glibc loads for pthread_cancel); the SBOM lists them as "
        "files of the builder's package, with its version",
        (),
        each=checks.soname,
        example=["libgcc_s.so.1", "libstdc++.so.6"],
    )
    check_binaries: bool = key(
        BOOL,
        "after the root is stripped, check that every dynamically linked program and library of "
        "the image can start there: its dynamic loader is in the image and finds every library it "
        "needs (the stock hook check-binaries); false turns the check off",
        True,
    )
    package_settings: tuple[PackageSettings, ...] = tables(
        PackageSettings,
        'Settings of one package (an atom), e.g. [package."app-misc/hello"].',
        '"ATOM"',
        toml_name="package",
        name_check=checks.atom,
        name_field="atom",
        example={"app-misc/hello": {"use": ["static"]}},
    )
    strip: Strip = section(Strip, Strip.__doc__)
    hooks: tuple[Hook, ...] = section(
        HookNames,
        (HookNames.__doc__ or "") + " They run as root with "
        "ROOT=/emerge-root (except configure_builder), CF_PHASE, CF_IMAGE and "
        "CF_NAMESPACE set, and, like every build step, SOURCE_DATE_EPOCH (the build's epoch), "
        "TZ=UTC, the C.UTF-8 locale and umask 022; a non-zero exit fails the build.",
        content=False,  # the build key has each hook by phase, name, order and content
    )
    services: tuple[Service, ...] = tables(
        Service,
        Service.__doc__,
        "NAME",
        name_check=checks.name("service"),
        example={"web": {"run": "httpd -f -p 8080"}},
    )
    config: ImageConfig = section(ImageConfig, ImageConfig.__doc__)
    name: str
    folder: Path
    spec_path: Path
    text: str = ""

    def hooks_for(self, phase: str) -> list[Hook]:
        return [h for h in self.hooks if h.phase == phase]


@dataclass
class Project:
    """A namespace with its images loaded."""

    namespace: Namespace
    images: dict[str, Image] = field(default_factory=dict)
