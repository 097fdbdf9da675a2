"""Spec loading: positions in errors, unknown keys with suggestions, the image graph."""

from __future__ import annotations

import pytest

from chrootforge.errors import UsageError
from chrootforge.spec.graph import build_order, load_project, parse_targets
from chrootforge.spec.image import load_image
from chrootforge.spec.namespace import load_namespace
from chrootforge.spec.source import load


def _err(func, *args) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert info.value.exit_code == 2
    return info.value.render()


def test_syntax_error_has_file_line_col(ns):
    path = ns.image("a", 'parent = "scratch"\npackages = ["x/y",\n  oops\n')
    text = _err(load, path)
    assert f"{path}:3:" in text and "TOML syntax error" in text


def test_unknown_top_key_suggests(ns):
    path = ns.image("a", 'parent = "scratch"\n\npackges = ["x/y"]\n')
    ns_obj = load_namespace(ns.root)
    from chrootforge.spec.image import load_image

    text = _err(load_image, ns_obj, "a")
    assert f"{path}:3: unknown key 'packges'" in text
    assert "did you mean 'packages'?" in text


def test_unknown_key_in_table_points_at_its_line(ns):
    path = ns.image(
        "a",
        """\
        parent = "scratch"
        [config]
        cmd = ["/bin/sh"]
        stopsignal = "SIGTERM"
        """,
    )
    from chrootforge.spec.image import load_image

    text = _err(load_image, load_namespace(ns.root), "a")
    assert f"{path}:4: unknown key 'stopsignal' in [config]" in text
    assert "stop_signal" in text


def test_unknown_key_in_quoted_table(ns):
    path = ns.image(
        "a",
        """\
        parent = "scratch"
        packages = ["app-misc/hello"]

        [package."app-misc/hello"]
        use = ["static"]
        uses = ["x"]
        """,
    )
    from chrootforge.spec.image import load_image

    text = _err(load_image, load_namespace(ns.root), "a")
    assert f"{path}:6: unknown key 'uses'" in text and "'use'" in text


def test_wrong_type_points_at_line(ns):
    path = ns.image("a", 'parent = "scratch"\ntags = "latest"\n')
    from chrootforge.spec.image import load_image

    text = _err(load_image, load_namespace(ns.root), "a")
    assert f"{path}:2: 'tags' must be a list of strings" in text


def test_bad_atom_and_bad_use(ns):
    ns.image("a", 'parent = "scratch"\npackages = ["hello"]\n')
    from chrootforge.spec.image import load_image

    assert "not a package atom" in _err(load_image, load_namespace(ns.root), "a")
    path = ns.image("b", 'parent = "scratch"\n[package."a/b"]\nuse = ["ok", "bad flag!"]\n')
    assert f"{path}:3:" in _err(load_image, load_namespace(ns.root), "b")


def test_namespace_unknown_key_and_tables(ns):
    path = ns.write(
        "chrootforge.toml",
        'name = "t"\n[stage3]\npath = "s"\n[tree]\npath = "repo"\n[output]\nlayuot = "x"\n',
    )
    text = _err(load_namespace, ns.root)
    assert f"{path}:7: unknown key 'layuot' in [output]" in text and "'layout'" in text


def test_namespace_values(ns, monkeypatch):
    monkeypatch.setenv("CF_TEST_STAGE", "/srv/stage.tar.zst")
    ns.write(
        "chrootforge.toml",
        """\
        [stage3]
        path = "${CF_TEST_STAGE}"
        [tree]
        path = "repo"
        profile = "default/linux/amd64"
        [make_conf]
        USE = ["-*", "ipv6"]
        [output]
        tags = ["latest", "1.0"]
        """,
    )
    n = load_namespace(ns.root)
    assert str(n.stage3.path) == "/srv/stage.tar.zst"
    assert n.tree.name == "testrepo"  # from profiles/repo_name
    assert n.make_conf["USE"] == "-* ipv6"
    assert n.tags == ("latest", "1.0")
    assert n.layout == ns.root / "out/layout"


def test_unset_variable_is_a_clear_error(ns, monkeypatch):
    monkeypatch.delenv("CF_NOPE", raising=False)
    path = ns.write("chrootforge.toml", '[stage3]\npath = "${CF_NOPE}/s"\n[tree]\npath = "repo"\n')
    assert f"{path}:2: ${{CF_NOPE}} is not set" in _err(load_namespace, ns.root)


def test_managed_make_conf_var_refused(ns):
    ns.write("chrootforge.toml", '[stage3]\npath = "s"\n[tree]\npath = "repo"\n[make_conf]\nROOT = "/x"\n')
    assert "managed by chrootforge" in _err(load_namespace, ns.root)


def _chain(ns, parents: dict[str, str]) -> None:
    for name, parent in parents.items():
        ns.image(name, f'parent = "{parent}"\n')


def test_build_order_parents_first(ns):
    _chain(ns, {"a": "scratch", "b": "a", "c": "b", "d": "a"})
    project, requested = load_project(ns.root, ["c", "d"])
    assert build_order(project.images, requested) == ["a", "b", "d", "c"]
    assert build_order(project.images, ["c"], with_deps=False) == ["c"]
    project, requested = load_project(ns.root, None)
    assert build_order(project.images, requested) == ["a", "b", "d", "c"]


def test_parent_cycle_names_the_cycle(ns):
    _chain(ns, {"a": "c", "b": "a", "c": "b"})
    project, requested = load_project(ns.root, ["a"])
    text = _err(build_order, project.images, requested)
    assert "parent cycle: a -> c -> b -> a" in text
    assert f"{ns.root / 'a' / 'image.toml'}:1" in text


def test_self_parent(ns):
    ns.image("a", 'parent = "a"\n')
    assert "cycle: a -> a" in _err(load_project, ns.root, ["a"])


def test_missing_parent(ns):
    _chain(ns, {"base": "scratch"})
    path = ns.image("app", '# app\nparent = "bsae"\n')
    text = _err(load_project, ns.root, ["app"])
    assert f"{path}:2: parent image 'bsae' does not exist" in text and "did you mean 'base'" in text


def test_missing_parent_key(ns):
    ns.image("a", "packages = []\n")
    assert "missing key 'parent'" in _err(load_project, ns.root, ["a"])


def test_targets(ns):
    _chain(ns, {"a": "scratch"})
    assert parse_targets([str(ns.root)]) == (ns.root.resolve(), None)
    assert parse_targets([str(ns.root / "a")]) == (ns.root.resolve(), ["a"])
    assert "no such namespace" in _err(parse_targets, [str(ns.root / "zz")])
    assert "no image 'zz'" in _err(load_project, ns.root, ["zz"])


def test_hooks_resolve_local_and_stock(ns):
    ns.write("a/mine.sh", "true\n")
    ns.image(
        "a", 'parent = "scratch"\n[hooks]\npost_emerge = ["mine.sh"]\nfinish_rootfs = "check-binaries"\n'
    )
    project, _ = load_project(ns.root, ["a"])
    hooks = project.images["a"].hooks
    assert [(h.phase, h.path.name) for h in hooks] == [
        ("post_emerge", "mine.sh"),
        ("finish_rootfs", "check-binaries.sh"),
    ]
    path = ns.image("b", 'parent = "scratch"\n[hooks]\nfinish_rootfs = ["check-binares"]\n')
    text = _err(load_project, ns.root, ["b"])
    assert f"{path}:3: hook 'check-binares' not found" in text and "check-binaries" in text
    path = ns.image("c", 'parent = "scratch"\n[hooks]\nfinish_root = ["x"]\n')
    assert "did you mean 'finish_rootfs'" in _err(load_project, ns.root, ["c"])


def test_syntax_error_at_end_of_document_has_a_line(ns):
    path = ns.image("a", 'parent = "scratch"\npackages = [\n')
    assert f"{path}:3: TOML syntax error" in _err(load, path)


def test_prefix_must_be_an_image_name(ns):
    ns.write(
        "chrootforge.toml", '[stage3]\npath = "s"\n[tree]\npath = "repo"\n[output]\nprefix = "Local/Bad"\n'
    )
    assert "is not an image name prefix" in _err(load_namespace, ns.root)
    ns.write(
        "chrootforge.toml",
        '[stage3]\npath = "s"\n[tree]\npath = "repo"\n[output]\n'
        'prefix = "registry.example.com:5000/team/x"\n',
    )
    assert load_namespace(ns.root).prefix == "registry.example.com:5000/team/x"


def test_suggestions_for_new_keys(ns):
    ns.image("a", 'parent = "scratch"\n[strip]\nkep = ["/x"]\n')
    text = _err(load_image, load_namespace(ns.root), "a")
    assert "image.toml:3: unknown key 'kep' in [strip]" in text and "did you mean 'keep'?" in text
    ns.image("b", 'parent = "scratch"\nuninstal = ["a/b"]\n')
    assert "did you mean 'uninstall'?" in _err(load_image, load_namespace(ns.root), "b")
    ns.image("c", 'parent = "scratch"\nruntime_lib = ["libgcc_s.so.1"]\n')
    assert "did you mean 'runtime_libs'?" in _err(load_image, load_namespace(ns.root), "c")


@pytest.mark.parametrize(
    "body,line,message",
    [
        ('provided = [">=dev-lang/perl-5"]', 2, "without an operator"),
        ('provided = ["perl"]', 2, "not a package atom"),
        ('unprovided = ["=dev-lang/perl-5"]', 2, "without version or operator"),
        ('provided = ["a/b"]\nunprovided = ["a/b"]', 3, "'a/b' is both provided and unprovided"),
        ('packages = ["a/b"]\nprovided = ["a/b-1.0"]', 3, "'a/b' is both in packages and provided"),
        ('uninstall = "a/b"', 2, "'uninstall' must be a list of strings, not str"),
        ('force_uninstall = "yes"', 2, "'force_uninstall' must be true or false"),
        ('runtime_libs = ["libgcc_s"]', 2, "not a shared library file name"),
        ('runtime_libs = ["../libc.so.6"]', 2, "not a shared library file name"),
        ('[strip]\nkeep = ["usr/share/zoneinfo"]', 3, "must be an absolute path"),
        ('[strip]\nkeep = ["/usr/../etc"]', 3, "must not contain '..'"),
        ('[strip]\nkeep = "/usr/share"', 3, "'keep' must be a list of strings"),
        ("[strip]\nlocales = [1]", 3, "not a list with int"),
        ('[config]\nworkdir = "rel"', 3, "'rel' must be an absolute path"),
        ('[services.web]\nfinish = "x"', 2, "missing key 'run' in [services.web]"),
        ('[services.web]\nrun = ""', 3, "run must not be empty"),
        ("tags = []", 2, "tags must not be empty"),
    ],
)
def test_bad_values_point_at_their_line(ns, body, line, message):
    path = ns.image("a", f'parent = "scratch"\n{body}\n')
    text = _err(load_image, load_namespace(ns.root), "a")
    assert f"{path}:{line}:" in text and message in text, text
