"""Load an image folder's image.toml (its keys are declared in spec/model.py)."""

from __future__ import annotations

import os
from pathlib import Path

from chrootforge.atoms import atom_cp, provided_cp
from chrootforge.errors import shown
from chrootforge.spec import checks, schema, source
from chrootforge.spec.model import (
    PHASES,
    Hook,
    HookNames,
    Image,
    ImageConfig,
    Namespace,
    PackageSettings,
    Service,
    Strip,
)

FILENAME = "image.toml"
STOCK_HOOKS = Path(__file__).resolve().parents[2] / "hooks"


def stock_hooks_dir() -> Path:
    override = os.environ.get("CHROOTFORGE_HOOKS")
    return Path(override) if override else STOCK_HOOKS


def image_names(ns: Namespace) -> list[str]:
    return sorted(p.parent.name for p in ns.root.glob(f"*/{FILENAME}"))


def load_image(ns: Namespace, name: str) -> Image:
    folder = ns.root / name
    spec = source.load(folder / FILENAME)
    data = spec.data
    top = schema.read(spec, (), data, Image)
    problem = checks.name("image")(name) or checks.repository(ns.prefix, name)
    if problem:
        raise spec.error((), problem)
    if top["parent"] == name:
        raise spec.error(("parent",), f"image '{name}' cannot be its own parent (cycle: {name} -> {name})")
    if not top["tags"]:
        top["tags"] = ns.tags
    _check_provided(spec, top)

    sections = {s.field: s for s in schema.sections_of(Image)}

    def table(field: str) -> dict:
        return schema.subtable(spec, (), data, sections[field].name)

    settings = tuple(
        PackageSettings(atom=atom, **values)
        for atom, values in schema.read_tables(
            spec, ("package",), table("package_settings"), sections["package_settings"]
        )
    )
    services = tuple(
        Service(name=sname, **values)
        for sname, values in schema.read_tables(spec, ("services",), table("services"), sections["services"])
    )
    hook_names = schema.read(spec, ("hooks",), table("hooks"), HookNames)
    hooks = tuple(
        Hook(phase, ref, _resolve_hook(spec, folder, phase, ref))
        for phase in PHASES
        for ref in hook_names[phase]
    )
    return Image(
        **top,
        package_settings=settings,
        services=services,
        hooks=hooks,
        strip=Strip(**schema.read(spec, ("strip",), table("strip"), Strip)),
        config=ImageConfig(**schema.read(spec, ("config",), table("config"), ImageConfig)),
        name=name,
        folder=folder.resolve(),
        spec_path=spec.path,
        text=spec.text,
    )


def _check_provided(spec: source.SpecFile, top: dict) -> None:
    """provided/unprovided/packages must not name the same package twice."""
    emerged = {atom_cp(a) for a in top["packages"]}
    unprovided = set(top["unprovided"])
    for entry in top["provided"]:
        cp = provided_cp(entry)
        if cp in unprovided:
            raise spec.error(("unprovided",), f"'{cp}' is both provided and unprovided")
        if cp in emerged:
            raise spec.error(
                ("provided",),
                f"'{cp}' is both in packages and provided",
                hint="a provided package is not installed; remove one of them",
            )


def _resolve_hook(spec, folder: Path, phase: str, ref: str) -> Path:
    """A script of the namespace (relative to the image folder), else a stock hook in hooks/ (with
    or without .sh). A script outside the namespace folder, symlinks followed, is refused: the
    build copies hooks as its own user, so a spec must not reach other files of the host."""
    try:
        local = (folder / ref).resolve()
        namespace = folder.resolve().parent
        is_file = local.is_file()
    except OSError as err:  # a name too long, a symlink loop
        raise spec.error(("hooks", phase), f"hook '{shown(ref[:200])}': {err.strerror}") from err
    if is_file:
        if not local.is_relative_to(namespace):
            raise spec.error(
                ("hooks", phase),
                f"hook '{ref}' is {local}, outside the namespace {namespace}",
                hint="keep hook scripts inside the namespace folder",
            )
        return local
    stock = stock_hooks_dir()
    for candidate in (stock / ref, stock / f"{ref}.sh"):
        if candidate.is_file() and "/" not in ref:
            return candidate.resolve()
    available = sorted(p.stem for p in stock.glob("*.sh"))
    close = source.suggest(ref, available + [p.name for p in folder.iterdir() if p.is_file()])
    hint = f"did you mean '{close}'?" if close else f"stock hooks: {', '.join(available) or 'none'}"
    raise spec.error(
        ("hooks", phase), f"hook '{ref}' not found in {folder} nor in the stock hooks", hint=hint
    )
