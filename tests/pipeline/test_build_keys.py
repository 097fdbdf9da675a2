"""Cache keys and the build's early checks (no sandbox needed)."""

from __future__ import annotations

import json

import pytest

from chrootforge.build import engine as build
from chrootforge.build.flags import BuildOptions
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
    assert _key(ns) == base  # a comment is not content
    ns.image("b", 'parent = "a"\ndescription = "x"\n[hooks]\npost_emerge = ["hook.sh"]\n')
    assert _key(ns) != base  # the spec's content
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
        build.build([str(ns.root / "b")], BuildOptions(no_deps=True, layout=str(tmp_path / "layout")))
    assert not (tmp_path / "layout" / "index.json").exists()


# -- what the key leaves out: names and destinations (issue 18, item 5) -----------------------------
NAMES_AND_PLACES = """\
name = "t"
[stage3]
path = "stage3.tar.zst"
keyring = ["keys/other.asc"]
[tree]
path = "repo"
keyring = "keys/tree.asc"
[output]
layout = "elsewhere/layout"
tags = ["v1", "stable"]
prefix = "registry.example.com:5000/team/x"
registry = "docker://registry.example.com:5000/team"
[build]
jobs = 7
distfiles = "distfiles"
binhost = "https://binhost.example.com/cf"
"""


def test_key_leaves_out_names_and_destinations(ns):
    """Where an image is pushed, how it is named and tagged, where its layout is, where inputs are
    found, and emerge's parallelism do not change what it is: the same keys."""
    ns.image("a", 'parent = "scratch"\npackages = ["app-misc/hello"]\n')
    ns.image("b", 'parent = "a"\n[config]\ncmd = ["hello"]\n')
    before = {name: _key(ns, name=name) for name in ("a", "b")}
    ns.write("chrootforge.toml", NAMES_AND_PLACES)
    ns.image("a", '# now with tags\ntags = ["9.9"]\npackages = [ "app-misc/hello" ]\nparent = "scratch"\n')
    assert {name: _key(ns, name=name) for name in ("a", "b")} == before


@pytest.mark.parametrize(
    "edit",
    [
        lambda ns: ns.write("chrootforge.toml", NS_CONTENT.replace('name = "t"', 'name = "u"')),
        lambda ns: ns.write("chrootforge.toml", NS_CONTENT + '[make_conf]\nCFLAGS = "-O3"\n'),
        lambda ns: ns.write("chrootforge.toml", NS_CONTENT + '[output]\ncompression = "zstd"\n'),
        lambda ns: ns.write("chrootforge.toml", NS_CONTENT + '[build]\nnetwork = "host"\n'),
        lambda ns: ns.write("chrootforge.toml", NS_CONTENT.replace("[tree]", '[tree]\nname = "other"')),
        lambda ns: ns.image("a", 'parent = "scratch"\n[config]\nlabels = { x = "1" }\n'),
        lambda ns: ns.image("a", 'parent = "scratch"\n[package."a/b"]\nuse = ["x"]\n'),
    ],
)
def test_key_covers_what_the_image_is(ns, edit):
    ns.write("chrootforge.toml", NS_CONTENT)
    ns.image("a", 'parent = "scratch"\n')
    base = _key(ns, name="a")
    edit(ns)
    assert _key(ns, name="a") != base


NS_CONTENT = 'name = "t"\n[stage3]\npath = "stage3.tar.zst"\n[tree]\npath = "repo"\n'


def test_key_names_the_image(ns):
    """Two images with the same spec are two images (their titles, and CF_IMAGE in hooks, differ):
    a remote cache must never hand one out for the other."""
    ns.image("a", 'parent = "scratch"\n')
    ns.image("c", 'parent = "scratch"\n')
    assert _key(ns, name="a") != _key(ns, name="c")


def test_image_config_holds_no_name_or_location(ns, tmp_path):
    """The config that build commits (labels, history) is the same whatever the prefix, tags,
    registry or layout, and names none of them."""
    from chrootforge.gentoo.plan import plan_image

    def request(text: str):
        ns.write("chrootforge.toml", text)
        project, _ = load_project(ns.root, ["a"])
        run = build._Run(project, tmp_path / "layout", Inputs("s", "t", None), None, "none", False)
        refs = [build.ref_name(project.namespace, "a", t) for t in project.images["a"].tags]
        return run._commit_request(plan_image(project, "a", None), refs, "sha256:k"), refs

    ns.image("a", 'parent = "scratch"\n')
    plain, _ = request(NS_CONTENT)
    named, refs = request(NAMES_AND_PLACES)
    assert (plain.config, plain.history, plain.labels) == (named.config, named.history, named.labels)
    text = json.dumps([named.config, named.history])
    for name in ("registry.example.com", "team/x", "v1", "stable", "localhost", "elsewhere", "binhost"):
        assert name not in text, name
    assert "org.opencontainers.image.ref.name" not in named.labels
    assert "org.opencontainers.image.version" not in named.labels
    assert refs == ["registry.example.com:5000/team/x/a:v1", "registry.example.com:5000/team/x/a:stable"]


def test_network_flag_is_in_the_key_as_the_spec_key_is(ns):
    """`build --network host` runs hooks with the network as `[build] network = "host"` does: the
    same key (it used to keep the spec's key, so a --network build could pass for the other)."""
    ns.write("chrootforge.toml", NS_CONTENT)
    ns.image("a", 'parent = "scratch"\n')
    offline = _key(ns, name="a")
    project, *_ = build.prepare([str(ns.root / "a")], None, None, None, network="host")
    flagged = build.image_key(project, "a", "sha256:p", Inputs("s", "t", None))
    ns.write("chrootforge.toml", NS_CONTENT + '[build]\nnetwork = "host"\n')
    assert flagged == _key(ns, name="a") != offline


def test_examples_content_holds_no_path(monkeypatch, tmp_path):
    """content_digest refuses a host path (json.dumps has no encoding for one): the examples' specs,
    with every key they set, hash without one, and the same wherever the checkout is."""
    import shutil
    from pathlib import Path

    from chrootforge.spec.schema import content_digest

    repo = Path(__file__).resolve().parents[2]
    for name in ("STAGE", "KEYRING", "DISTFILES"):
        monkeypatch.setenv(f"CHROOTFORGE_WORLD_{name}", f"/nowhere/{name}")
    digests = []
    for root in (repo / "examples", tmp_path / "elsewhere"):
        if root != repo / "examples":
            shutil.copytree(repo / "examples", root)
        for example in ("world", "gentoo"):
            project, _ = load_project(root / example, None)
            digests.append(
                [
                    content_digest(project.namespace),
                    *(content_digest(i) for _, i in sorted(project.images.items())),
                ]
            )
    assert digests[:2] == digests[2:]


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
