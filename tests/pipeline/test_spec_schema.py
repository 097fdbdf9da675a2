"""The spec's one schema: loading, suggestions, the docs' key reference and `chrootforge new` all come
from the declarations in spec/model.py."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from chrootforge.errors import UsageError
from chrootforge.spec import keydocs as reference
from chrootforge.spec import scaffold, schema
from chrootforge.spec.graph import load_project
from chrootforge.spec.image import load_image
from chrootforge.spec.model import PHASES, HookNames, Image, ImageConfig, Namespace, Strip
from chrootforge.spec.namespace import load_namespace
from chrootforge.spec.new import is_image_target, new_image, new_namespace

REPO = Path(__file__).resolve().parents[2]


def _err(func, *args) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert info.value.exit_code == 2
    return info.value.render()


def test_committed_reference_matches_the_schema():
    text = (REPO / "docs" / "pipeline.md").read_text()
    assert reference.replace_block(text) == text, (
        "docs/pipeline.md is stale: run python -m chrootforge.spec.keydocs docs/pipeline.md"
    )


def test_reference_lists_every_key_once():
    block = reference.render()
    for model in (Namespace, Image):
        for table in schema.tables_of(model):
            for k in table.keys:
                assert f"| `{k.name}` |" in block
    assert block.count("| `keep` |") == 1 and '`[package."ATOM"]`' in block
    # the check can fail: a key added to the schema makes the committed doc stale
    extra = schema.Key(schema.Bool(), "a new key", False, name="brand_new", field="brand_new")
    strip = next(t for t in schema.tables_of(Image) if t.name == "strip")
    assert "brand_new" not in reference._table_md(strip)[-2]
    assert "brand_new" in "\n".join(
        reference._table_md(schema.Table(strip.name, strip.help, (*strip.keys, extra), strip.decl))
    )


def test_allowed_keys_and_phases_come_from_the_models():
    assert schema.allowed_names(Strip) == ["docs", "man", "info", "headers", "static_libs", "locales", "keep"]
    assert PHASES == tuple(k.name for k in schema.keys_of(HookNames))
    top = schema.allowed_names(Image)
    assert {
        "parent",
        "packages",
        "provided",
        "unprovided",
        "uninstall",
        "force_uninstall",
        "runtime_libs",
        "package",
        "strip",
        "hooks",
        "services",
        "config",
    } <= set(top)
    assert {"output", "build", "stage3", "tree", "repos", "make_conf", "name"} == set(
        schema.allowed_names(Namespace)
    )
    assert "stop_signal" in schema.allowed_names(ImageConfig)


def test_new_keys_load(ns):
    ns.image(
        "a",
        """\
        parent = "scratch"
        packages = ["app-misc/hello"]
        provided = ["dev-lang/perl", "sys-devel/gcc-13.2.1_p20240113"]
        unprovided = ["sys-apps/busybox"]
        uninstall = ["acct-user/hello"]
        force_uninstall = true
        runtime_libs = ["libgcc_s.so.1", "libstdc++.so.6"]
        [strip]
        keep = ["/usr/share/zoneinfo/UTC", "/usr/share/doc/*/README*"]
        """,
    )
    image = load_image(load_namespace(ns.root), "a")
    assert image.provided == ("dev-lang/perl", "sys-devel/gcc-13.2.1_p20240113")
    assert image.unprovided == ("sys-apps/busybox",) and image.uninstall == ("acct-user/hello",)
    assert image.force_uninstall is True and image.runtime_libs == ("libgcc_s.so.1", "libstdc++.so.6")
    assert image.strip.keep == ("/usr/share/zoneinfo/UTC", "/usr/share/doc/*/README*")
    assert image.strip.docs is True  # untouched keys keep their declared defaults


# -- chrootforge new ------------------------------------------------------------------------------------
def _uncomment_all(text: str) -> str:
    """Every commented-out key and table header of a scaffold, switched on."""
    return "\n".join(re.sub(r"^#(?=[\[A-Za-z\"])", "", line) for line in text.splitlines()) + "\n"


def test_new_namespace_and_image(tmp_path):
    ns_dir = tmp_path / "myns"
    path = new_namespace(ns_dir)
    assert path == ns_dir / "chrootforge.toml"
    ns = load_namespace(ns_dir)
    assert ns.name == "myns" and ns.tree.snapshot == "latest" and ns.stage3.path is None
    assert ns.network == "host" and ns.prefix == "localhost/myns"
    text = path.read_text()
    assert '#arch = "amd64"' in text and '#prefix = "localhost/myns"' in text
    (ns_dir / "base").mkdir()  # an existing folder without image.toml is fine
    new_image(ns_dir / "base", None, ["sys-apps/busybox"])
    new_image(ns_dir / "app", "base", ["app-misc/hello", ">=dev-libs/foo-2"])
    project, _ = load_project(ns_dir, None)
    app = project.images["app"]
    assert app.parent == "base" and app.packages == ("app-misc/hello", ">=dev-libs/foo-2")
    assert project.images["base"].parent == "scratch"
    assert app.tags == ("latest",) and app.strip == Strip()
    assert '#[package."app-misc/hello"]' in (ns_dir / "app" / "image.toml").read_text()


def test_every_commented_key_of_a_new_image_is_valid(tmp_path):
    """Switching on every commented-out key of the scaffold gives a file that loads: the examples
    the schema shows are valid values."""
    ns_dir = tmp_path / "ns"
    new_namespace(ns_dir)
    new_image(ns_dir / "app", None, ["app-misc/hello"])
    spec = ns_dir / "app" / "image.toml"
    spec.write_text(_uncomment_all(spec.read_text()))
    image = load_image(load_namespace(ns_dir), "app")
    assert image.runtime_libs == ("libgcc_s.so.1", "libstdc++.so.6")
    assert image.package_settings[0].atom == "app-misc/hello" and image.services[0].name == "web"
    assert image.config.cmd == ("/bin/sh",) and [h.name for h in image.hooks] == ["check-binaries"]


def test_new_namespace_follows_the_documented_defaults(tmp_path):
    """Portage's own sandboxes stay on (they work inside the build sandbox), and every value that
    is not its key's documented default says why, right above it."""
    path = new_namespace(tmp_path / "myns")
    ns = load_namespace(tmp_path / "myns")
    text = path.read_text()
    assert "FEATURES" not in ns.make_conf
    assert not any(f"-{what}-sandbox" in text for what in ("ipc", "network", "pid"))
    lines = path.read_text().splitlines()
    defaults = {(t.name, k.name): k.default for t in schema.tables_of(Namespace) for k in t.keys if t.name}
    table = ""
    for i, line in enumerate(lines):
        if line.startswith("["):
            table = line.strip("[]")
        elif line and not line.startswith("#") and "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            default = defaults.get((table, name))
            if default is None or tomllib.loads(f"v = {value}")["v"] != default:
                assert lines[i - 1].startswith("# ") and any(
                    "Not the default here:" in lines[j] for j in range(max(0, i - 4), i)
                ), f"{table}.{name} = {value} deviates without a reason:\n" + "\n".join(lines[i - 4 : i + 1])
    assert any(line == 'network = "host"' for line in lines)


def test_new_refuses_to_overwrite_and_bad_input(tmp_path):
    ns_dir = tmp_path / "ns"
    new_namespace(ns_dir)
    before = (ns_dir / "chrootforge.toml").read_text()
    assert "exists: chrootforge new does not overwrite it" in _err(new_namespace, ns_dir)
    assert (ns_dir / "chrootforge.toml").read_text() == before
    new_image(ns_dir / "a", None, [])
    (ns_dir / "a" / "image.toml").write_text('parent = "scratch"\n# mine\n')
    assert "does not overwrite" in _err(new_image, ns_dir / "a", None, [])
    assert (ns_dir / "a" / "image.toml").read_text() == 'parent = "scratch"\n# mine\n'
    text = _err(new_image, ns_dir / "b", "aa", [])
    assert "--parent aa: no such image" in text and "did you mean 'a'?" in text
    assert "not a package atom" in _err(new_image, ns_dir / "b", "a", ["hello"])
    assert "image name 'B'" in _err(new_image, ns_dir / "B", None, [])
    assert "namespace name 'Bad NS'" in _err(new_namespace, tmp_path / "Bad NS")
    assert not (ns_dir / "b").exists() and not (tmp_path / "Bad NS").exists()


def test_new_decides_by_the_path_as_written_not_through_a_symlink(tmp_path):
    """NS/LINK where LINK points elsewhere is an image name of NS, and refused: the scaffold never
    lands where the link points (an earlier version wrote a namespace file there)."""
    ns_dir, elsewhere = tmp_path / "ns", tmp_path / "elsewhere"
    new_namespace(ns_dir)
    elsewhere.mkdir()
    (ns_dir / "evil").symlink_to(elsewhere)
    assert is_image_target(ns_dir / "evil")
    assert "is a symlink" in _err(new_image, ns_dir / "evil", None, [])
    assert list(elsewhere.iterdir()) == []
    # `..` is folded as written: ns/../other is a namespace folder beside ns
    assert not is_image_target(ns_dir / ".." / "other")


def test_scaffold_is_valid_toml_for_every_model():
    for model in (Namespace, Image):
        text = scaffold.render(model, {}, "title")
        tomllib.loads(text)
        tomllib.loads(_uncomment_all(text).replace("\nsnapshot = ", "\n#snapshot = "))


def test_new_cli(identity):
    base = identity.mkdtemp("new.")
    proc = identity.cf("new", str(base / "ns"))
    assert proc.returncode == 0 and f"wrote {base / 'ns' / 'chrootforge.toml'}" in proc.stdout, proc.stderr
    proc = identity.cf("new", str(base / "ns" / "web"), "--package", "www-servers/nginx")
    assert proc.returncode == 0, proc.stderr
    proc = identity.cf("new", str(base / "ns" / "web"))
    assert proc.returncode == 2 and "does not overwrite" in proc.stderr and "Traceback" not in proc.stderr
    proc = identity.cf("new", str(base / "elsewhere" / "x"), "--parent", "web")
    assert (
        proc.returncode == 2 and "--parent and --package are for an image inside a namespace" in proc.stderr
    )
    proc = identity.cf("build", "--plan", str(base / "ns" / "web"))
    assert proc.returncode == 0 and "www-servers/nginx" in proc.stdout, proc.stderr
