"""The image graph: load what a build needs and order it parents first."""

from __future__ import annotations

from pathlib import Path

from chrootforge.errors import UsageError
from chrootforge.spec import source
from chrootforge.spec.image import FILENAME as IMAGE_FILE
from chrootforge.spec.image import image_names, load_image
from chrootforge.spec.model import SCRATCH, Image, Project
from chrootforge.spec.namespace import FILENAME as NS_FILE
from chrootforge.spec.namespace import find_root, load_namespace


def parse_targets(targets: list[str]) -> tuple[Path, list[str] | None]:
    """CLI targets -> (namespace folder, image names or None for all images)."""
    roots: set[Path] = set()
    names: list[str] | None = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            raise UsageError(
                f"{target}: no such namespace or image folder",
                hint=f"give a folder with {NS_FILE} or an image folder with {IMAGE_FILE}",
            )
        path = path.resolve()
        if (path / NS_FILE).is_file():
            roots.add(path)
            names = None
            continue
        if not (path / IMAGE_FILE).is_file():
            raise UsageError(f"{target}: neither {NS_FILE} nor {IMAGE_FILE} is in this folder")
        root = find_root(path.parent)
        if root is None or path.parent != root:
            raise UsageError(
                f"{target}: the image folder's parent has no {NS_FILE}",
                hint="an image is a folder directly inside its namespace folder",
            )
        roots.add(root)
        if names is not None:
            names.append(path.name)
    if not roots:
        raise UsageError("nothing to build", hint="give a namespace folder or image folders")
    if len(roots) > 1:
        raise UsageError(
            "the images belong to different namespaces: " + ", ".join(map(str, sorted(roots))),
            hint="build one namespace at a time",
        )
    return roots.pop(), names


def load_project(folder: Path, wanted: list[str] | None = None, platform=None) -> tuple[Project, list[str]]:
    """Load the namespace (as `platform` sees it, default its first) and, from `wanted` (None =
    all), every image and ancestor it needs."""
    ns = load_namespace(folder, platform)
    project = Project(ns)
    available = image_names(ns)
    todo = list(available if wanted is None else wanted)
    if wanted is not None:
        for name in wanted:
            if name not in available:
                raise UsageError(f"{ns.root}: no image '{name}'", hint=_close(name, available))
    requested = list(todo)
    while todo:
        name = todo.pop()
        if name in project.images:
            continue
        image = load_image(ns, name)
        project.images[name] = image
        if image.parent != SCRATCH:
            if image.parent not in available:
                spec = source.load(image.spec_path)
                raise spec.error(
                    ("parent",),
                    f"parent image '{image.parent}' does not exist in {ns.root}",
                    hint=_close(image.parent, available + [SCRATCH]),
                )
            todo.append(image.parent)
    return project, requested


def _close(name: str, choices: list[str]) -> str:
    close = source.suggest(name, choices)
    return f"did you mean '{close}'?" if close else f"images: {', '.join(choices) or 'none'}"


def ancestors(images: dict[str, Image], name: str) -> list[str]:
    """Parents of `name`, nearest first (cycle-checked by build_order)."""
    chain = []
    parent = images[name].parent
    while parent != SCRATCH:
        chain.append(parent)
        parent = images[parent].parent
    return chain


def find_cycle(images: dict[str, Image]) -> list[str] | None:
    for start in sorted(images):
        seen = [start]
        parent = images[start].parent
        while parent != SCRATCH and parent in images:
            if parent in seen:
                return seen[seen.index(parent) :] + [parent]
            seen.append(parent)
            parent = images[parent].parent
    return None


def build_order(images: dict[str, Image], requested: list[str], with_deps: bool = True) -> list[str]:
    """Parents before children; a cycle is a UsageError naming it."""
    cycle = find_cycle(images)
    if cycle:
        first = images[cycle[0]]
        spec = source.load(first.spec_path)
        raise spec.error(
            ("parent",),
            "parent cycle: " + " -> ".join(cycle),
            hint='every chain of parents must end at "scratch"',
        )
    wanted = set(requested)
    if with_deps:
        for name in requested:
            wanted.update(ancestors(images, name))
    depth = {name: len(ancestors(images, name)) for name in wanted}
    return sorted(wanted, key=lambda n: (depth[n], n))
