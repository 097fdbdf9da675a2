"""Cache keys and the build's early checks (no sandbox needed)."""

from __future__ import annotations

import pytest

from chrootforge import build
from chrootforge.errors import UsageError
from chrootforge.gentoo.inputs import Inputs, identify
from chrootforge.gentoo.state import tree_id
from chrootforge.spec.graph import load_project


def _key(ns, name="b", parent="sha256:p", stage="s", tree="t"):
    project, _ = load_project(ns.root, [name])
    return build.image_key(project, name, parent, Inputs(stage, tree, None))


def test_key_covers_every_input(ns):
    ns.write("b/hook.sh", "echo one\n")
    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "a"\n[hooks]\npost_emerge = ["hook.sh"]\n')
    base = _key(ns)
    assert _key(ns) == base
    assert _key(ns, parent="sha256:other") != base  # the parent was rebuilt
    assert _key(ns, stage="s2") != base  # another stage3
    assert _key(ns, tree="t2") != base  # the tree changed
    ns.write("b/hook.sh", "echo two\n")
    assert _key(ns) != base  # a hook's content
    ns.write("b/hook.sh", "echo one\n")
    assert _key(ns) == base
    ns.image("b", 'parent = "a"\n[hooks]\npost_emerge = ["hook.sh"]\n# a comment\n')
    assert _key(ns) != base  # the spec text
    ns.write(
        "chrootforge.toml", ns.root.joinpath("chrootforge.toml").read_text() + '[make_conf]\nUSE = "x"\n'
    )
    assert _key(ns, name="a") != _key(ns, name="b")


def test_tree_id_tracks_content(ns, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = ns.root / "repo"
    first = tree_id(repo)
    assert tree_id(repo) == first  # memoized, same answer
    (repo / "profiles" / "repo_name").write_text("other\n")
    assert tree_id(repo) != first
    (repo / "profiles" / "repo_name").write_text("testrepo\n")
    assert tree_id(repo) == first


def test_missing_stage_is_a_usage_error(ns, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project, _ = load_project(ns.root, None)
    with pytest.raises(UsageError, match="stage3 .* does not exist"):
        identify(project.namespace)


def test_no_deps_needs_built_parents(ns, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (ns.root / "stage3.tar.zst").write_bytes(b"not really a stage")
    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "a"\n')
    with pytest.raises(UsageError, match="parent 'a' has not been built"):
        build.build([str(ns.root / "b")], no_deps=True, layout=str(tmp_path / "layout"))
    assert not (tmp_path / "layout" / "index.json").exists()


def test_a_callers_epoch_is_an_input(ns, monkeypatch):
    """SOURCE_DATE_EPOCH reaches the config, every mtime and the compiled packages (busybox embeds
    it): another one must neither find the image up to date nor take binary packages of another."""
    from chrootforge.gentoo.inputs import binpkg_key

    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "a"\n')
    project, _ = load_project(ns.root, ["b"])
    inputs = Inputs("s", "t", None)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    derived = (_key(ns), binpkg_key(project.namespace, inputs))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = (_key(ns), binpkg_key(project.namespace, inputs))
    assert first[0] != derived[0] and first[1] != derived[1]
    assert (_key(ns), binpkg_key(project.namespace, inputs)) == first
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000001")
    assert _key(ns) != first[0] and binpkg_key(project.namespace, inputs) != first[1]


def test_the_stock_check_is_an_input_unless_turned_off(ns, tmp_path, monkeypatch):
    """The check every image runs after its strip (hooks/check-binaries.sh) is in the key like a
    hook it names; check_binaries = false takes it out."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "check-binaries.sh").write_text("exit 0\n")
    monkeypatch.setenv("CHROOTFORGE_HOOKS", str(hooks))
    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "a"\n')
    base = _key(ns)
    (hooks / "check-binaries.sh").write_text("exit 1\n")
    assert _key(ns) != base
    ns.image("b", 'parent = "a"\ncheck_binaries = false\n')
    off = _key(ns)
    (hooks / "check-binaries.sh").write_text("exit 0\n")
    assert _key(ns) == off
