"""Load an image folder's image.toml."""

from __future__ import annotations

import re
from pathlib import Path

from chrootforge.gentoo.atoms import check_atom
from chrootforge.spec import source
from chrootforge.spec.fields import Fields
from chrootforge.spec.model import (
    PHASES,
    Hook,
    Image,
    ImageConfig,
    Namespace,
    PackageSettings,
    Service,
    Strip,
)
from chrootforge.spec.namespace import check_tag

FILENAME = "image.toml"
TOP_KEYS = ("parent", "packages", "package", "mask", "unmask", "strip", "hooks", "services", "config",
            "tags", "description")
PACKAGE_KEYS = ("use", "keywords", "env")
STRIP_KEYS = ("docs", "man", "info", "locales", "headers", "static_libs")
SERVICE_KEYS = ("run", "finish")
CONFIG_KEYS = ("entrypoint", "cmd", "env", "user", "workdir", "ports", "volumes", "labels", "stop_signal")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_USE_RE = re.compile(r"^-?[A-Za-z0-9][A-Za-z0-9+_@-]*$")
_PORT_RE = re.compile(r"^\d{1,5}(/(tcp|udp|sctp))?$")
_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGWINCH")
STOCK_HOOKS = Path(__file__).resolve().parents[2] / "hooks"


def stock_hooks_dir() -> Path:
    import os

    override = os.environ.get("CHROOTFORGE_HOOKS")
    return Path(override) if override else STOCK_HOOKS


def image_names(ns: Namespace) -> list[str]:
    return sorted(p.parent.name for p in ns.root.glob(f"*/{FILENAME}"))


def load_image(ns: Namespace, name: str) -> Image:
    folder = ns.root / name
    spec = source.load(folder / FILENAME)
    top = Fields(spec, (), spec.data)
    source.check_keys(spec, (), spec.data, TOP_KEYS)
    if not _NAME_RE.match(name):
        raise spec.error((), f"image name '{name}' must be lower case letters, digits, . _ -")
    if "parent" not in spec.data:
        raise spec.error((), "missing key 'parent'", hint='set parent = "scratch" or the name of another image')
    parent = top.str("parent")
    if parent == name:
        raise spec.error(("parent",), f"image '{name}' cannot be its own parent (cycle: {name} -> {name})")

    packages = top.str_list("packages")
    for i, atom in enumerate(packages):
        problem = check_atom(atom)
        if problem:
            raise spec.error(("packages",), problem)

    settings = []
    pkg_table = top.table_of("package")
    for atom, value in pkg_table.table.items():
        key = ("package", atom)
        problem = check_atom(atom)
        if problem:
            raise spec.error(key, problem)
        if not isinstance(value, dict):
            raise spec.error(key, f'[package."{atom}"] must be a table with use, keywords or env')
        source.check_keys(spec, key, value, PACKAGE_KEYS)
        f = Fields(spec, key, value)
        use = f.str_list("use", allow_str=True)
        use = [u for part in use for u in part.split()]
        for flag in use:
            if not _USE_RE.match(flag):
                raise spec.error((*key, "use"), f"'{flag}' is not a USE flag")
        env = f.str_map("env")
        settings.append(PackageSettings(atom, tuple(use), tuple(f.str_list("keywords", allow_str=True)),
                                        tuple(sorted(env.items()))))
    mask = top.str_list("mask")
    unmask = top.str_list("unmask")
    for listname, atoms in (("mask", mask), ("unmask", unmask)):
        for atom in atoms:
            problem = check_atom(atom)
            if problem:
                raise spec.error((listname,), problem)

    st = top.table_of("strip")
    source.check_keys(spec, ("strip",), st.table, STRIP_KEYS)
    locales = st.table.get("locales", [])
    if locales == "all" or locales is True:
        locales = None
    else:
        locales = tuple(st.str_list("locales"))
    strip = Strip(docs=st.bool("docs", True), man=st.bool("man", True), info=st.bool("info", True),
                  locales=locales, headers=st.bool("headers", True), static_libs=st.bool("static_libs", True))

    hooks = []
    hk = top.table_of("hooks")
    source.check_keys(spec, ("hooks",), hk.table, PHASES)
    for phase in PHASES:
        for ref in hk.str_list(phase, allow_str=True):
            hooks.append(Hook(phase, ref, _resolve_hook(spec, folder, phase, ref)))

    services = []
    sv = top.table_of("services")
    for sname, value in sv.table.items():
        key = ("services", sname)
        if not _NAME_RE.match(sname):
            raise spec.error(key, f"service name '{sname}' must be lower case letters, digits, . _ -")
        if not isinstance(value, dict):
            raise spec.error(key, f"[services.{sname}] must be a table with run (and finish)")
        source.check_keys(spec, key, value, SERVICE_KEYS)
        f = Fields(spec, key, value)
        run = f.str("run")
        if not run:
            raise spec.error(key, f"service '{sname}' needs a run command")
        services.append(Service(sname, run, f.str("finish")))

    cf = top.table_of("config")
    source.check_keys(spec, ("config",), cf.table, CONFIG_KEYS)
    ports = cf.str_list("ports")
    for port in ports:
        if not _PORT_RE.match(port):
            raise spec.error(("config", "ports"), f"'{port}' is not a port (e.g. 8080 or 8080/tcp)")
    stop_signal = cf.str("stop_signal")
    if stop_signal is not None and stop_signal not in _SIGNALS:
        raise spec.error(("config", "stop_signal"), f"unknown stop_signal '{stop_signal}'",
                         hint=f"one of {', '.join(_SIGNALS)}")
    for pathkey in ("workdir",):
        value = cf.str(pathkey)
        if value is not None and not value.startswith("/"):
            raise spec.error(("config", pathkey), f"{pathkey} must be an absolute path")
    config = ImageConfig(
        entrypoint=_opt_list(cf, "entrypoint"), cmd=_opt_list(cf, "cmd"),
        env=tuple(cf.str_map("env").items()), user=cf.str("user"), workdir=cf.str("workdir"),
        ports=tuple(ports), volumes=tuple(cf.str_list("volumes")),
        labels=tuple(sorted(cf.str_map("labels").items())), stop_signal=stop_signal,
    )
    tags = tuple(top.str_list("tags", ns.tags))
    for tag in tags:
        check_tag(spec, ("tags",), tag)
    return Image(name=name, folder=folder.resolve(), spec_path=spec.path, parent=parent,
                 packages=tuple(packages), package_settings=tuple(settings), mask=tuple(mask),
                 unmask=tuple(unmask), strip=strip, hooks=tuple(hooks), services=tuple(services),
                 config=config, tags=tags, description=top.str("description", ""), text=spec.text)


def _opt_list(fields: Fields, name: str):
    if name not in fields.table:
        return None
    return tuple(fields.str_list(name, allow_str=True))


def _resolve_hook(spec, folder: Path, phase: str, ref: str) -> Path:
    """A script in the image folder, else a stock hook in hooks/ (with or without .sh)."""
    local = (folder / ref).resolve()
    if local.is_file():
        return local
    stock = stock_hooks_dir()
    for candidate in (stock / ref, stock / f"{ref}.sh"):
        if candidate.is_file() and "/" not in ref:
            return candidate.resolve()
    available = sorted(p.stem for p in stock.glob("*.sh"))
    close = source.suggest(ref, available + [p.name for p in folder.iterdir() if p.is_file()])
    hint = f"did you mean '{close}'?" if close else f"stock hooks: {', '.join(available) or 'none'}"
    raise spec.error(("hooks", phase), f"hook '{ref}' not found in {folder} nor in the stock hooks",
                     hint=hint)
