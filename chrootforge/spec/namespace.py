"""Load a namespace folder's chrootforge.toml."""

from __future__ import annotations

import re
from pathlib import Path

from chrootforge.spec import source
from chrootforge.spec.fields import Fields
from chrootforge.spec.model import Namespace, Stage3Source, TreeSource

FILENAME = "chrootforge.toml"
TOP_KEYS = ("name", "stage3", "tree", "repos", "make_conf", "output", "build")
STAGE3_KEYS = ("path", "mirror", "arch", "variant", "date", "keyring", "insecure_skip_verify")
TREE_KEYS = ("path", "snapshot", "name", "profile", "keyring", "insecure_skip_verify")
OUTPUT_KEYS = ("layout", "tags", "prefix", "compression")
BUILD_KEYS = ("network", "distfiles", "jobs")
_MAKE_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
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
    top = Fields(spec, (), spec.data)
    source.check_keys(spec, (), spec.data, TOP_KEYS)
    name = top.str("name", folder.resolve().name)
    if not _NAME_RE.match(name):
        raise spec.error(("name",), f"namespace name '{name}' must be lower case letters, digits, . _ -")

    st = top.table_of("stage3")
    source.check_keys(spec, ("stage3",), st.table, STAGE3_KEYS)
    stage3 = Stage3Source(
        path=st.path("path"),
        mirrors=tuple(st.str_list("mirror", allow_str=True)),
        arch=st.str("arch", "amd64"),
        variant=st.str("variant", "openrc"),
        date=st.str("date"),
        keyrings=tuple(_paths(st, "keyring")),
        insecure=st.bool("insecure_skip_verify", False),
    )
    if stage3.path and stage3.mirrors:
        raise spec.error(("stage3", "mirror"), "give either [stage3] path or mirror, not both")

    tr = top.table_of("tree")
    source.check_keys(spec, ("tree",), tr.table, TREE_KEYS)
    tree_path = tr.path("path")
    snapshot = tr.str("snapshot")
    if tree_path and snapshot:
        raise spec.error(("tree", "snapshot"), "give either [tree] path or snapshot, not both")
    if not tree_path and not snapshot:
        raise spec.error(("tree",), "[tree] needs a path (a repository directory) or a snapshot "
                         "(\"latest\", a date YYYYMMDD, or a file)")
    snapshot_path = None
    if snapshot and snapshot != "latest" and not re.fullmatch(r"\d{8}", snapshot):
        snapshot_path = tr.path("snapshot")
    tree_name = tr.str("name")
    if tree_name is None:
        tree_name = _repo_name(tree_path) if tree_path else "gentoo"
    tree = TreeSource(path=tree_path, snapshot=snapshot if not snapshot_path else None,
                      snapshot_path=snapshot_path, name=tree_name, profile=tr.str("profile"),
                      keyrings=tuple(_paths(tr, "keyring")),
                      insecure=tr.bool("insecure_skip_verify", False))

    repos_table = top.table_of("repos")
    repos = {}
    for repo, value in repos_table.table.items():
        if not isinstance(value, str):
            raise spec.error(("repos", repo), f"repos.{repo} must be a path string")
        if repo == tree.name:
            raise spec.error(("repos", repo), f"repo '{repo}' clashes with the [tree] name")
        repos[repo] = repos_table.path(repo)

    mc = top.table_of("make_conf")
    make_conf = dict(DEFAULT_MAKE_CONF)
    for var, value in mc.table.items():
        if not _MAKE_VAR.match(var):
            raise spec.error(("make_conf", var), f"'{var}' is not a make.conf variable name")
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = " ".join(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise spec.error(("make_conf", var), f"make_conf.{var} must be a string or a list of strings")
        if var in ("ROOT", "PORTAGE_CONFIGROOT", "PKGDIR", "DISTDIR", "PORTAGE_TMPDIR"):
            raise spec.error(("make_conf", var), f"make_conf.{var} is managed by chrootforge",
                             hint="chrootforge binds the caches and sets ROOT itself")
        make_conf[var] = value

    out = top.table_of("output")
    source.check_keys(spec, ("output",), out.table, OUTPUT_KEYS)
    layout = out.path("layout", "out/layout")
    tags = tuple(out.str_list("tags", ("latest",)))
    for tag in tags:
        _check_tag(spec, ("output", "tags"), tag)
    prefix = out.str("prefix", f"localhost/{name}").rstrip("/")
    if not _PREFIX_RE.match(prefix):
        raise spec.error(("output", "prefix"), f"'{prefix}' is not an image name prefix",
                         hint="lowercase path components, optionally after a registry host, "
                              "e.g. localhost/myproject or registry.example.com:5000/team")

    bd = top.table_of("build")
    source.check_keys(spec, ("build",), bd.table, BUILD_KEYS)
    jobs = bd.int("jobs", 2)
    if jobs < 1:
        raise spec.error(("build", "jobs"), "jobs must be at least 1")
    return Namespace(
        name=name, root=folder.resolve(), spec_path=spec.path, stage3=stage3, tree=tree, repos=repos,
        make_conf=make_conf, layout=layout, tags=tags, prefix=prefix.rstrip("/"),
        compression=out.choice("compression", ("gzip", "zstd"), "gzip"),
        network=bd.choice("network", ("none", "host"), "none"),
        distfiles=bd.path("distfiles"), jobs=jobs, text=spec.text,
    )


def _paths(fields: Fields, name: str) -> list[Path]:
    from chrootforge.spec.fields import expand_path

    return [expand_path(fields.spec, (*fields.key, name), v) for v in fields.str_list(name, allow_str=True)]


def _repo_name(path: Path) -> str:
    try:
        return (path / "profiles" / "repo_name").read_text().strip() or "gentoo"
    except OSError:
        return "gentoo"


_PREFIX_RE = re.compile(r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
                        r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def _check_tag(spec, key, tag: str) -> None:
    if not _TAG_RE.match(tag):
        raise spec.error(key, f"'{tag}' is not a valid tag", hint="letters, digits, . _ - (max 128)")


def check_tag(spec, key, tag: str) -> None:
    _check_tag(spec, key, tag)

