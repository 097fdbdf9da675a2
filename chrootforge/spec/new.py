"""`chrootforge new`: scaffold a namespace (chrootforge.toml) or an image (image.toml) from the schema.

The files are written atomically, never over an existing one, and loaded back before the command
reports success, so what it writes always loads (and builds as it is: a namespace downloads Gentoo's
latest stage3 and snapshot, an image builds its packages on its parent).
"""

from __future__ import annotations

import os
from pathlib import Path

from chrootforge.errors import UsageError
from chrootforge.fsutil import atomic_write
from chrootforge.spec import checks, scaffold, source
from chrootforge.spec.image import FILENAME as IMAGE_FILE
from chrootforge.spec.image import image_names, load_image
from chrootforge.spec.model import SCRATCH, Image, Namespace
from chrootforge.spec.namespace import FILENAME as NS_FILE
from chrootforge.spec.namespace import load_namespace


def target_path(text: str) -> Path:
    """The folder NS or NS/IMAGE as the user wrote it; one whose last part is `.` or `..` is
    refused: it names the folder by where it is, not by the name the namespace or image takes
    (`new NS/..` would have made a namespace of NS's parent)."""
    last = os.path.basename(text.rstrip("/"))
    if last in (".", ".."):
        raise UsageError(
            f"chrootforge new {text}: the path must end with the folder's own name, not '{last}'",
            hint="e.g. chrootforge new NS (a namespace) or chrootforge new NS/IMAGE (an image)",
        )
    return Path(text)


def _as_written(target: Path) -> Path:
    """Absolute, with `..` folded, but symlinks kept: whether TARGET is NS/IMAGE is decided by the
    path the user wrote, not by where a symlink named IMAGE points."""
    return Path(os.path.abspath(target))


def is_image_target(target: Path) -> bool:
    """NS/IMAGE when the folder's parent is a namespace; else a namespace folder."""
    return (_as_written(target).parent / NS_FILE).is_file()


def new_namespace(folder: Path) -> Path:
    folder = folder.resolve()
    problem = checks.name("namespace")(folder.name)
    if problem:
        raise UsageError(f"{folder}: {problem}", hint="the folder's name is the namespace's name")
    path = folder / NS_FILE
    _refuse_existing(path)
    # The documented defaults everywhere but where a namespace that builds from Gentoo's mirrors
    # needs otherwise; each such value says why in the file (portage's own ipc-, network- and
    # pid-sandbox stay on: they work inside the build sandbox, README "What the sandbox guarantees").
    values: dict[tuple[str, ...], object] = {
        ("tree", "snapshot"): "latest",
        ("build", "network"): "host",
    }
    why: dict[tuple[str, ...], str] = {
        ("tree", "snapshot"): "[tree] needs a path or a snapshot; this takes Gentoo's latest, verified.",
        ("build", "network"): "emerge downloads the packages' sources (distfiles) from Gentoo's "
        'mirrors. Portage\'s network-sandbox still keeps every other build phase offline. For "none", '
        "seed [build] distfiles with every source the images need.",
    }
    text = scaffold.render(
        Namespace,
        values,
        f"chrootforge.toml of the namespace {folder.name}, written by `chrootforge new`. "
        "As it is, it builds from Gentoo's latest amd64 openrc stage3 and tree "
        "snapshot, downloaded and verified against the pinned release keys.",
        shown={("name",): folder.name, ("output", "prefix"): f"localhost/{folder.name}"},
        why=why,
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write(path, text)
    try:
        load_namespace(folder)
    except UsageError:
        path.unlink()
        raise
    return path


def new_image(target: Path, parent: str | None, packages: list[str]) -> Path:
    target = _as_written(target)
    if target.is_symlink():
        raise UsageError(
            f"{target} is a symlink: an image folder must be a directory of its namespace",
            hint="remove the symlink, or pick another image name",
        )
    ns = load_namespace(target.parent)
    name = target.name
    problem = checks.name("image")(name)
    if problem:
        raise UsageError(f"{target}: {problem}")
    parent = parent or SCRATCH
    available = image_names(ns)
    if parent != SCRATCH and parent not in available:
        close = source.suggest(parent, available + [SCRATCH])
        raise UsageError(
            f"--parent {parent}: no such image in {ns.root}",
            hint=f"did you mean '{close}'?" if close else f"images: {', '.join(available) or 'none'}",
        )
    if parent == name:
        raise UsageError(f"image '{name}' cannot be its own parent")
    for atom in packages:
        problem = checks.atom(atom)
        if problem:
            raise UsageError(f"--package: {problem}", hint="write e.g. app-misc/hello or >=sys-apps/s6-2.11")
    path = target / IMAGE_FILE
    _refuse_existing(path)
    values: dict[tuple[str, ...], object] = {("parent",): parent}
    if packages:
        values[("packages",)] = packages
    text = scaffold.render(
        Image,
        values,
        f"image.toml of {ns.name}/{name}, written by `chrootforge new`. "
        f"Build it with: chrootforge build {ns.root.name}/{name}",
        shown={("tags",): list(ns.tags)},
        example_names={"package": packages[0]} if packages else None,
    )
    created = not target.exists()
    target.mkdir(exist_ok=True)
    _write(path, text)
    try:
        load_image(ns, name)
    except UsageError:
        path.unlink()
        if created:
            target.rmdir()
        raise
    return path


def _refuse_existing(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise UsageError(
            f"{path} exists: chrootforge new does not overwrite it", hint="edit it, or remove it first"
        )


def _write(path: Path, text: str) -> None:
    """Write a new file atomically; never replace one."""
    try:
        atomic_write(path, text, replace=False)
    except FileExistsError as err:
        raise UsageError(f"{path} appeared meanwhile: chrootforge new does not overwrite it") from err
