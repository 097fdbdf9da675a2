"""Load a namespace folder's chrootforge.toml (its keys are declared in spec/model.py)."""

from __future__ import annotations

import re
from pathlib import Path

from chrootforge.errors import UsageError
from chrootforge.platforms import ARCHES, Platform, host_platform, parse_platform
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


def load_namespace(folder: str | Path, platform: Platform | None = None) -> Namespace:
    """The namespace as `platform` sees it (default: its first platform): the stage3's arch, the
    profile and the ${VAR}s are the platform's (see platform_values)."""
    folder = Path(folder)
    spec = source.load(folder / FILENAME)
    data = spec.data
    platforms = _platforms(spec, data)
    view = platforms[0] if platform is None else platform
    if view not in platforms:
        raise UsageError(
            f"{spec.path}: {view} is not one of its platforms ({', '.join(map(str, platforms))})",
            hint="add it to [build] platforms",
        )
    spec.env_suffix = view.env_suffix
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

    top["platforms"] = platforms
    stage3_values = schema.read(spec, ("stage3",), schema.subtable(spec, (), data, "stage3"), Stage3Source)
    stage3_values["arch"] = view.arch.gentoo  # _platforms checked that an explicit one agrees
    stage3 = Stage3Source(**stage3_values)
    if stage3.path and stage3.mirrors:
        raise spec.error(("stage3", "mirror"), "give either [stage3] path or mirror, not both")
    tree = _tree(spec, schema.subtable(spec, (), data, "tree"), view)

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
        platform=view,
    )


def _platforms(spec: source.SpecFile, data: dict) -> tuple[Platform, ...]:
    """[build] platforms; else [stage3] arch's platform; else this machine's. An explicit
    [stage3] arch must be the one platform's."""
    build = schema.subtable(spec, (), data, "build")
    stage3 = schema.subtable(spec, (), data, "stage3")
    given = _key("platforms")
    platforms = None
    if "platforms" in build:
        platforms = given.kind.convert(schema.At(spec, ("build", "platforms")), build["platforms"])
    arch = stage3.get("arch")
    if arch is None:
        return platforms or (host_platform(),)
    at = schema.At(spec, ("stage3", "arch"))
    if not isinstance(arch, str):
        raise at.bad("a string", arch)
    problem = grammar.arch(arch)  # (as the schema checks it, before it names a platform)
    if problem:
        raise at.error(problem)
    if platforms is not None:
        if len(platforms) > 1 or platforms[0].arch.gentoo != arch:
            raise at.error(
                f"[stage3] arch = {arch!r} pins one architecture, but [build] platforms is "
                + ", ".join(map(str, platforms)),
                hint="remove [stage3] arch: each platform's stage3 has the platform's arch",
            )
        return platforms
    try:
        return (parse_platform(arch, "[stage3] arch"),)
    except UsageError as err:
        raise at.error(str(err), hint='set [build] platforms instead, e.g. ["linux/ppc64le"]') from err


def platform_profile(profile: str | None, platform: Platform) -> str | None:
    """The profile for `platform`: Gentoo's profiles name their arch as one path component
    (default/linux/amd64/23.0); a component naming another known arch becomes the platform's."""
    if profile is None:
        return None
    gentoo = {a.gentoo for a in ARCHES.values()}
    parts = profile.split("/")
    named = [i for i, part in enumerate(parts) if part in gentoo]
    if len(named) != 1:
        return profile
    parts[named[0]] = platform.arch.gentoo
    return "/".join(parts)


def _key(field: str) -> schema.Key:
    return next(k for k in schema.keys_of_all(Namespace) if k.field == field)


def _tree(spec: source.SpecFile, table: dict, platform: Platform) -> TreeSource:
    values = schema.read(spec, ("tree",), table, TreeSource)
    written = values["profile"]
    values["profile"] = platform_profile(written, platform)
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
    profile = values["profile"]
    if path and profile and profile != written and (path / "profiles").is_dir():
        if not (path / "profiles" / profile).is_dir():
            raise spec.error(
                ("tree", "profile"),
                f"{platform} needs the profile {profile} (the {platform.arch.gentoo} one of {written}), "
                f"which {path / 'profiles'} does not have",
                hint="add that profile to the tree, or drop the platform",
            )
    return TreeSource(**values)


def _repo_name(path: Path) -> str:
    try:
        return (path / "profiles" / "repo_name").read_text(errors="replace").strip() or "gentoo"
    except OSError:
        return "gentoo"
