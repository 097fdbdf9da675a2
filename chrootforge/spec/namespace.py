"""Load a namespace folder's chrootforge.toml (its keys are declared in spec/model.py)."""

from __future__ import annotations

import re
from pathlib import Path

from chrootforge.sources import grammar
from chrootforge.spec import checks, schema, source
from chrootforge.spec.model import Namespace, Stage3Source, TreeSource

FILENAME = "chrootforge.toml"
DEFAULT_MAKE_CONF = {
    "CFLAGS": "-O2 -pipe",
    "CXXFLAGS": "${CFLAGS}",
    "MAKEOPTS": "-j2",
}


def find_root(path: Path) -> Path | None:
    """The namespace folder containing `path` (itself or a parent), or None."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if (candidate / FILENAME).is_file():
            return candidate
    return None


def load_namespace(folder: str | Path) -> Namespace:
    folder = Path(folder)
    spec = source.load(folder / FILENAME)
    data = spec.data
    top = schema.read(spec, (), data, Namespace)
    if not top["name"]:
        top["name"] = folder.resolve().name
        schema.validate(schema.At(spec, ("name",)), _key("name"), top["name"])
    for table in Namespace.TABLES:
        top.update(schema.read(spec, (table,), schema.subtable(spec, (), data, table), Namespace, table))
    if not top["prefix"]:
        top["prefix"] = f"localhost/{top['name']}"
        schema.validate(schema.At(spec, ("output", "prefix")), _key("prefix"), top["prefix"])
    top["prefix"] = top["prefix"].rstrip("/")

    stage3 = Stage3Source(
        **schema.read(spec, ("stage3",), schema.subtable(spec, (), data, "stage3"), Stage3Source)
    )
    if stage3.path and stage3.mirrors:
        raise spec.error(("stage3", "mirror"), "give either [stage3] path or mirror, not both")
    tree = _tree(spec, schema.subtable(spec, (), data, "tree"))

    sections = {s.field: s for s in schema.sections_of(Namespace)}
    repos = schema.read_map(spec, ("repos",), schema.subtable(spec, (), data, "repos"), sections["repos"])
    for repo in repos:
        if repo == tree.name:
            raise spec.error(("repos", repo), f"repo '{repo}' clashes with the [tree] name")
    make_conf = dict(DEFAULT_MAKE_CONF)
    make_conf.update(
        schema.read_map(
            spec, ("make_conf",), schema.subtable(spec, (), data, "make_conf"), sections["make_conf"]
        )
    )
    return Namespace(
        **top,
        stage3=stage3,
        tree=tree,
        repos=repos,
        make_conf=make_conf,
        root=folder.resolve(),
        spec_path=spec.path,
        text=spec.text,
    )


def _key(field: str) -> schema.Key:
    return next(k for k in schema.keys_of_all(Namespace) if k.field == field)


def _tree(spec: source.SpecFile, table: dict) -> TreeSource:
    values = schema.read(spec, ("tree",), table, TreeSource)
    path, snapshot = values["path"], values["snapshot"]
    if path and snapshot:
        raise spec.error(("tree", "snapshot"), "give either [tree] path or snapshot, not both")
    if not path and not snapshot:
        raise spec.error(
            ("tree",),
            "[tree] needs a path (a repository directory) or a snapshot "
            '("latest", a date YYYYMMDD, or a file)',
        )
    if snapshot and re.fullmatch(r"\d{8}", snapshot) and grammar.day(snapshot):
        raise spec.error(("tree", "snapshot"), f"[tree] snapshot {grammar.day(snapshot)}")
    if snapshot and snapshot != "latest" and not re.fullmatch(r"\d{8}", snapshot):
        values["snapshot_path"] = schema.expand_path(schema.At(spec, ("tree", "snapshot")), snapshot)
        values["snapshot"] = None
    if "name" not in table:
        values["name"] = _repo_name(path) if path else "gentoo"
        problem = checks.repo_name(values["name"])
        if problem:
            raise spec.error(
                ("tree", "path"),
                f"{path}/profiles/repo_name: {problem}",
                hint='set [tree] name = "NAME" to name the repository',
            )
    return TreeSource(**values)


def _repo_name(path: Path) -> str:
    try:
        return (path / "profiles" / "repo_name").read_text(errors="replace").strip() or "gentoo"
    except OSError:
        return "gentoo"
