"""What an import produces, as plain values: the spec values, the hook scripts' contents and the
IMPORT.md lines (translate.py computes them, hookscript.py, report.py and tomlout.py render them)."""

from __future__ import annotations

from dataclasses import dataclass, field

Site = tuple[str, int]  # a file of the kubler namespace (relative to it) and a line

# The kubler hook functions and the chrootforge phases they run in.
PHASE_OF = {
    "configure_builder": "configure_builder",
    "configure_bob": "configure_builder",
    "configure_rootfs_build": "configure_rootfs",
    "finish_rootfs_build": "post_emerge",
}
COMPAT_HOOK = "kubler-compat"  # the stock hook (hooks/kubler-compat.sh)
SCRIPT = "kubler.sh"  # an image's or builder's hook script
BUILDERS_DIR = "kubler-builders"  # NS/kubler-builders/NAME/kubler.sh


def where(source: str, site: Site | None) -> str:
    """SOURCE/FILE:LINE, the place an error names."""
    if site is None:
        return source
    return f"{source}/{site[0]}:{site[1]}"


@dataclass(frozen=True)
class FileEntry:
    """A file of a kubler image folder, which kubler's build container sees under /config."""

    rel: str
    mode: int  # 0o755 or 0o644
    data: bytes
    link: str | None = None  # a symlink's target


@dataclass(frozen=True)
class Folder:
    unit: str  # images/NAME or builder/NAME
    files: tuple[FileEntry, ...]
    dockerfile: str | None  # Dockerfile.template

    @property
    def name(self) -> str:
        return self.unit.split("/", 1)[1]


@dataclass(frozen=True)
class Entry:
    """One line of IMPORT.md: a place in the kubler namespace and what became of it."""

    site: Site | None
    source: str  # the command, assignment or instruction there
    outcome: str


@dataclass(frozen=True)
class Step:
    """A Dockerfile.template step that runs in the finish_rootfs hook (RUN, COPY, ADD, WORKDIR)."""

    site: Site
    kind: str  # "run" | "copy" | "add" | "workdir"
    shell: str = ""  # run: shell form
    argv: tuple[str, ...] = ()  # run: exec form; copy/add: the sources
    dest: str = ""  # copy/add/workdir: the path in the image
    env: tuple[tuple[str, str], ...] = ()  # run: the environment Docker would give it
    user: str = ""
    workdir: str = ""
    chown: str = ""


@dataclass
class Script:
    """The kubler.sh hook of one kubler image or builder (hookscript.render writes it)."""

    unit: str
    kind: str  # "image" | "builder"
    name: str
    image_id: str  # NAMESPACE/NAME, kubler's BOB_CURRENT_TARGET
    env: dict[str, str] = field(default_factory=dict)  # the BOB_ variables kubler exported
    files: tuple[FileEntry, ...] = ()
    applied: tuple[str, ...] = ()  # "FUNCTION:LINE:HELPER": calls that are spec keys now
    functions: dict[str, str] = field(default_factory=dict)  # chrootforge phase -> kubler function
    builder_function: str = ""  # the configure_builder/configure_bob run in descendants' builds
    steps: tuple[Step, ...] = ()
    emerge_more: tuple[str, ...] = ()  # _packages words that are not category/name atoms
    sync_users: bool = False  # copy the builder's changed passwd/group into the image, as kubler did


@dataclass
class ImageResult:
    name: str
    unit: str
    spec: dict  # image.toml: top-level keys, then tables ({"package": {atom: {...}}, "config": ...})
    entries: list[Entry]
    hooks: dict[str, list[str]]  # phase -> hook references
    script: Script | None


@dataclass
class BuilderResult:
    name: str
    unit: str
    entries: list[Entry]
    script: Script | None


@dataclass
class NamespaceResult:
    kubler_name: str
    source: str  # the kubler namespace as the user named it
    spec: dict  # chrootforge.toml: top-level keys and tables
    entries: list[Entry]
    images: dict[str, ImageResult]  # parents first
    builders: dict[str, BuilderResult]
