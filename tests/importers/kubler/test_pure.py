"""The kubler importer's pure parts, without privileges: the static rule, the conversion of helper
calls to keys, the mapping of a namespace, Dockerfile.template, and the files it writes."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from chrootforge.errors import UsageError
from chrootforge.importers.kubler import analysis, dockerfile, hookscript, report, settings, tomlout
from chrootforge.importers.kubler import translate as mapping
from chrootforge.importers.kubler.helpers import HELPERS, NAMES
from chrootforge.importers.kubler.outcome import FileEntry, Script, Step
from chrootforge.spec.model import Image, Namespace
from tests.importers.kubler.probes import C, U, namespace

REPO = Path(__file__).resolve().parents[3]


# -- the static rule ------------------------------------------------------------------------------------
def _analyze(*items, ended=None) -> analysis.HookAnalysis:
    probe = U("images/x", hooks={"configure_rootfs_build": list(items)}, ended=ended or {}).probe({})
    return analysis.analyze_hook(probe, "configure_rootfs_build")


def _static(result: analysis.HookAnalysis) -> dict[int, bool]:
    return {f.call.line: f.static for f in result.findings}


def test_top_statements_read_bash_listing():
    listing = "h () \n{ \n    update_use 'a/b' +c;\n    if x; then\n        update_use 'd/e' +f;\n    fi;\n    mask_package 'g/h'\n}"
    assert analysis.top_statements(listing) == {
        "update_use 'a/b' +c",
        "if x; then",
        "fi",
        "mask_package 'g/h'",
    }


def test_a_whole_statement_with_the_same_arguments_is_static():
    result = _analyze(C(1, "update_use", ("a/b", "+c")), C(2, "mask_package", (">a/b-2",)))
    assert _static(result) == {1: True, 2: True}
    assert result.completed


@pytest.mark.parametrize(
    "call, why",
    [
        (C(1, "update_use", ("a/b", "+c"), top=False), "a condition, loop or list"),
        (C(1, "update_use", ("a/b", "+c"), b_args=("a/b", "cfprobe-b")), "arguments depend"),
        (C(1, "update_use", ("a/b", "+c"), runs="A"), "only one probe run"),
        (C(1, "update_use", ("a/b", "+c"), runs="B"), "only one probe run"),
        (C(1, "update_use", ("a/b", "+c"), own=False), "made by the function _a_function"),
        (C(1, "update_use", ("a/b", "+c"), subshell=1), "subshell"),
    ],
)
def test_dynamic_calls_and_why(call, why):
    (finding,) = _analyze(call).findings
    assert not finding.static and why in finding.why


def test_a_hook_that_did_not_finish_keeps_every_call():
    result = _analyze(
        C(1, "update_use", ("a/b", "+c")), ended={"configure_rootfs_build A": ("exit", "0", "3")}
    )
    assert not result.completed and "called exit 0 at line 3" in result.note
    assert _static(result) == {1: False}
    result = _analyze(
        C(1, "update_use", ("a/b", "+c")), ended={"configure_rootfs_build B": ("budget", "97", "")}
    )
    assert "too many commands" in result.note and _static(result) == {1: False}


def test_needs_hook_only_when_something_is_left():
    result = _analyze(C(1, "update_use", ("a/b", "+c")), ("cmd", 2, ":"))
    applied = {("images/x/build.sh", 1, "update_use 'a/b' '+c'")}
    assert not analysis.needs_hook(result, applied)
    assert analysis.needs_hook(result, set())
    result = _analyze(C(1, "update_use", ("a/b", "+c")), ("cmd", 2, "rm -rf /x"))
    assert analysis.needs_hook(result, applied)


# -- helper calls as keys ---------------------------------------------------------------------------
def test_flaggie_syntax_to_use_and_keywords():
    change = settings.convert(
        "update_use", ("dev-lang/php:8.2", "+fpm", "-threads", "+~amd64", "+kw::**", "+use::x86")
    )
    assert change == settings.Change(
        "use",
        atom="dev-lang/php:8.2",
        use=(("fpm", True), ("threads", False), ("x86", True)),
        keywords=(("~amd64", True), ("**", True)),
    )
    assert settings.convert("update_keywords", ("a/b", "+~arm64")).keywords == (("~arm64", True),)


@pytest.mark.parametrize(
    "args, why",
    [
        (("+gif", "+png"), "global flags"),
        (("a/b", "%x"), "only +flag and -flag"),
        (("a/b", "x"), "only +flag and -flag"),
        (("a/b", "+lic::GPL-2"), "lic:: settings"),
        (("notanatom", "+x"), "not a package atom"),
        (("a/b",), "no flags"),
        (("a/b", "+bad!flag"), "not a USE flag"),
    ],
)
def test_flaggie_forms_without_a_key(args, why):
    result = settings.convert("update_use", args)
    assert isinstance(result, str) and why in result


def test_the_other_helpers_convert_or_say_why():
    assert settings.convert("mask_package", (">a/b-2",)).items == (">a/b-2",)
    assert "only the first" in settings.convert("mask_package", ("a/b", "c/d"))
    assert settings.convert("provide_package", ("a/b", "c/d-1.0")).items == ("a/b", "c/d-1.0")
    assert "operator" in settings.convert("provide_package", (">=a/b-1",))
    assert "without an operator" in settings.convert("unprovide_package", ("a/b-1.0",))
    assert settings.convert("uninstall_package", ("a/b",)).kind == "uninstall"
    assert settings.convert("copy_gcc_libs", ()).items == ("libgcc_s.so.1", "libgomp.so.1", "libstdc++.so.6")
    assert settings.convert("copy_gfortran_libs", ()).items == ("libgfortran.so.5", "libquadmath.so.0")
    assert "no arguments" in settings.convert("copy_gcc_libs", ("x",))
    assert settings.convert("add_overlay", ("kubler", "https://x.invalid/o.git")).items == (
        "kubler",
        "https://x.invalid/o.git",
    )
    assert "repository id" in settings.convert("add_overlay", ("Bad Id",))
    assert "no spec key" in settings.convert("download_file", ("https://x",))


def test_settings_later_calls_win():
    s = settings.Settings()
    for change in (
        settings.convert("update_use", ("a/b", "+x", "+y")),
        settings.convert("update_use", ("a/b", "-x")),
        settings.convert("update_keywords", ("a/b", "+~amd64")),
        settings.convert("provide_package", ("c/d", "e/f")),
        settings.convert("unprovide_package", ("c/d",)),
        settings.convert("provide_package", ("g/h",)),
        settings.convert("unprovide_package", ("g/h",)),
        settings.convert("provide_package", ("g/h",)),
    ):
        s.apply(change)
    assert s.package_tables() == {"a/b": {"use": ["y", "-x"], "keywords": ["~amd64"]}}
    assert s.provided == ["e/f", "g/h"] and s.unprovided == ["c/d"]


# -- Dockerfile.template ------------------------------------------------------------------------------
def test_kubler_renders_its_variables_only():
    text = (
        'FROM ${IMAGE_PARENT}\nLABEL m="${MAINTAINER}" t=${TAG}\nENV A=${BOB_X} B=${BOB_UNSET} C=${OTHER}\n'
    )
    out = dockerfile.render(text, {"IMAGE_PARENT": "ns/p", "MAINTAINER": "M", "TAG": "1", "BOB_X": "x"})
    assert out == 'FROM ns/p\nLABEL m="M" t=1\nENV A=x B=${BOB_UNSET} C=${OTHER}\n'


def test_instructions_continuations_and_comments():
    text = "# top\nFROM x\n\nRUN a && \\\n    # a comment inside\n    b\nenv K=v\n"
    ins = dockerfile.parse(text, "Dockerfile.template")
    assert [(i.line, i.keyword, i.args) for i in ins] == [
        (2, "FROM", "x"),
        (4, "RUN", "a && b"),
        (7, "ENV", "K=v"),
    ]
    with pytest.raises(UsageError, match=r"Dockerfile.template:1: '\$\{X\}' is not"):
        dockerfile.parse("${X} y\n", "Dockerfile.template")


def test_docker_words_pairs_and_ports():
    env = {"HOME": "/home/u", "EMPTY": ""}
    assert dockerfile.words(
        r"""a "b c" 'd $HOME' e\ f $HOME ${HOME}/x ${EMPTY:-dflt} ${HOME:+set}""", env
    ) == [
        "a",
        "b c",
        "d $HOME",
        "e f",
        "/home/u",
        "/home/u/x",
        "dflt",
        "set",
    ]
    assert dockerfile.pairs('PATH="/opt/bin:${PATH}" K=v', {"PATH": "/bin"}) == [
        ("PATH", "/opt/bin:/bin"),
        ("K", "v"),
    ]
    assert dockerfile.pairs("NAME John Doe", {}) == [("NAME", "John Doe")]
    assert dockerfile.ports(["80", "443/udp", "9000-9002"]) == [
        "80/tcp",
        "443/udp",
        "9000/tcp",
        "9001/tcp",
        "9002/tcp",
    ]
    with pytest.raises(ValueError):
        dockerfile.ports(["http"])
    assert dockerfile.exec_form('["a", "b c"]') == ["a", "b c"] and dockerfile.exec_form("a b") is None
    assert dockerfile.flags("--chown=a:b --from=x src dst") == ({"chown": "a:b", "from": "x"}, "src dst")


# -- a namespace ------------------------------------------------------------------------------------------
BOB = U(
    "builder/bob",
    conf={
        "STAGE3_BASE": "stage3-amd64-nomultilib-openrc",
        "STAGE3_DATE": "20250101T000000Z",
        "BOB_CFLAGS": "-O2",
    },
    hooks={
        "configure_bob": [
            C(2, "update_use", ("dev-vcs/git", "-perl")),
            C(3, "provide_package", ("dev-lang/python",)),
            C(4, "add_overlay", ("kubler", "https://x.invalid/o.git")),
            ("cmd", 5, "emerge dev-lang/go"),
        ]
    },
)


def _map(*units, kubler_conf=None):
    probes, folders = namespace(*units, kubler_conf=kubler_conf)
    return mapping.map_namespace("ns", "/src/ns", probes, folders)


def test_a_three_level_chain_inherits_the_builders_and_parents_settings():
    base = U(
        "images/base",
        sh={"_packages": "sys-apps/busybox"},
        hooks={
            "configure_rootfs_build": [
                C(3, "update_use", ("sys-apps/busybox", "+static")),
                C(4, "mask_package", (">a/b-2",)),
            ]
        },
        dockerfile='FROM ${IMAGE_PARENT}\nADD rootfs.tar /\nENTRYPOINT ["/bin/tool"]\nCMD ["--help"]\n',
    )
    mid = U(
        "images/mid",
        conf={"IMAGE_PARENT": "ns/base"},
        sh={"_packages": "app-misc/mid"},
        hooks={
            "configure_rootfs_build": [C(3, "update_use", ("sys-apps/busybox", "-static"))],
            "finish_rootfs_build": [C(6, "update_use", ("app-misc/late", "+x")), C(7, "copy_gcc_libs", ())],
        },
    )
    leaf = U(
        "images/leaf",
        conf={"IMAGE_PARENT": "ns/mid"},
        sh={"_packages": "app-misc/leaf"},
        dockerfile='FROM ${IMAGE_PARENT}\nADD rootfs.tar /\nCMD ["--version"]\n',
    )
    result = _map(BOB, base, mid, leaf)
    assert list(result.images) == ["base", "mid", "leaf"]
    b, m, lf = (result.images[n].spec for n in ("base", "mid", "leaf"))
    assert b["package"] == {"dev-vcs/git": {"use": ["-perl"]}, "sys-apps/busybox": {"use": ["static"]}}
    assert b["provided"] == ["dev-lang/python"]  # the builder's package.provided starts the chain
    assert "provided" not in m  # chrootforge passes it down itself
    assert m["package"]["sys-apps/busybox"] == {"use": ["-static"]}  # its own call came later
    assert "app-misc/late" not in m["package"]  # after mid's emerge: a hook for mid ...
    assert lf["package"]["app-misc/late"] == {"use": ["x"]}  # ... and a key for its children
    assert lf["mask"] == [">a/b-2"] and m["runtime_libs"] == [
        "libgcc_s.so.1",
        "libgomp.so.1",
        "libstdc++.so.6",
    ]
    assert lf["config"] == {"entrypoint": ["/bin/tool"], "cmd": ["--version"]}  # docker keeps the ENTRYPOINT
    assert result.images["base"].hooks["configure_builder"] == [
        "kubler-compat",
        "../kubler-builders/bob/kubler.sh",
    ]
    assert result.spec["stage3"] == {
        "arch": "amd64",
        "variant": "nomultilib-openrc",
        "date": "20250101T000000Z",
    }
    assert result.spec["repos"] == {"kubler": "repos/kubler"} and result.spec["make_conf"]["CFLAGS"] == "-O2"
    assert result.builders["bob"].script.builder_function == "configure_bob"
    assert result.builders["bob"].script.applied == (
        "configure_bob:2:update_use",
        "configure_bob:3:provide_package",
        "configure_bob:4:add_overlay",
    )


def test_calls_of_one_setting_stay_together_when_one_is_kept():
    """glibc's pattern: provide, then unprovide; when one of them must stay a hook, a key for the
    other would run before it (keys come first) and turn kubler's order around."""
    image = U(
        "images/x",
        sh={"_packages": "sys-libs/glibc"},
        hooks={
            "configure_rootfs_build": [
                C(2, "provide_package", ("sys-libs/glibc",)),  # kept: it is in _packages
                C(3, "unprovide_package", ("sys-libs/glibc",)),
                C(4, "provide_package", ("sys-apps/portage",)),
                C(5, "update_use", ("a/b", "+x")),
            ]
        },
    )
    result = _map(BOB, image).images["x"]
    assert result.spec["provided"] == ["dev-lang/python"]  # the builder's, this image starts a chain
    assert "unprovided" not in result.spec
    assert result.spec["package"]["a/b"] == {"use": ["x"]}
    assert result.script.applied == ("configure_rootfs_build:5:update_use",)
    kept = [e for e in result.entries if e.site and e.site[1] in (3, 4)]
    assert all("a key would reorder them" in e.outcome for e in kept)


def test_a_chain_hook_that_keeps_a_setting_keeps_the_childs_too():
    parent = U(
        "images/p",
        sh={"_packages": "a/p"},
        hooks={"configure_bob": [C(2, "update_use", ("a/lib", "+x"), b_args=("a/lib", "cfprobe-b"))]},
    )
    child = U(
        "images/c",
        conf={"IMAGE_PARENT": "ns/p"},
        sh={"_packages": "a/c"},
        hooks={"configure_rootfs_build": [C(2, "update_use", ("a/lib", "-x"))]},
    )
    result = _map(BOB, parent, child)
    c = result.images["c"]
    assert "a/lib" not in c.spec.get("package", {})  # the parent's replayed call comes first
    assert c.hooks["configure_builder"] == [
        "kubler-compat",
        "../kubler-builders/bob/kubler.sh",
        "../p/kubler.sh",
        "kubler.sh",
    ]
    assert c.script.applied == ()


def test_packages_and_variables():
    image = U(
        "images/x",
        sh={
            "_packages": "a/b pecl-imagick",
            "_keep_headers": "true",
            "BOB_INSTALL_BASELAYOUT": "1",
            "_no_cache": "a/b",
        },
    )
    result = _map(BOB, image).images["x"]
    assert result.spec["packages"] == ["sys-apps/baselayout", "a/b"]
    assert result.script.emerge_more == ("pecl-imagick",)
    assert result.spec["strip"] == {"locales": "all", "headers": False}
    assert any("_no_cache" in e.source and e.outcome.startswith("omitted") for e in result.entries)


@pytest.mark.parametrize(
    "units, message",
    [
        (
            (U("images/x", conf={"IMAGE_PARENT": "other/base"}),),
            "/src/ns/images/x/build.conf:1: IMAGE_PARENT other/base is outside the kubler namespace ns",
        ),
        ((U("images/x", conf={"IMAGE_PARENT": "ns/nope"}),), "IMAGE_PARENT ns/nope names no image"),
        (
            (U("images/a", conf={"IMAGE_PARENT": "ns/b"}), U("images/b", conf={"IMAGE_PARENT": "ns/a"})),
            "IMAGE_PARENT cycle: a -> b -> a",
        ),
        (
            (U("images/x", sh={"_packages": "a/b"}, sh_b={"_packages": "a/b cfprobe-b"}),),
            "build.sh:1: _packages depends on the build container",
        ),
        (
            (U("images/x", dockerfile="FROM ${IMAGE_PARENT} AS build\n"),),
            "Dockerfile.template:1: a multi-stage",
        ),
        ((U("images/x", dockerfile="FROM other\n"),), "FROM other differs from IMAGE_PARENT scratch"),
        ((U("images/x", dockerfile="ADD rootfs.tar /\n"),), "Dockerfile.template has no FROM"),
        (
            (U("images/x", dockerfile="FROM ${IMAGE_PARENT}\nEXPOSE http\n"),),
            "Dockerfile.template:2: EXPOSE: 'http' is not a port",
        ),
    ],
)
def test_bad_namespaces_say_where(units, message):
    with pytest.raises(UsageError) as err:
        _map(*units)
    assert message in str(err.value)


def test_every_dockerfile_instruction():
    image = U(
        "images/x",
        conf={"BOB_PORT": "8080"},
        dockerfile=(
            'FROM ${IMAGE_PARENT}\nLABEL maintainer="${MAINTAINER}" a=b\nADD rootfs.tar /\n'
            'ENV HOME=/home/u P="${HOME}/bin"\nEXPOSE ${BOB_PORT} 53/udp\nVOLUME ["/data"]\n'
            "WORKDIR $HOME\nUSER u\nRUN echo hi\nCOPY etc /etc\nADD x.tar /opt/\nSTOPSIGNAL SIGINT\n"
            'HEALTHCHECK --interval=5s CMD true\nENTRYPOINT ["/bin/app"]\nCMD serve now\nONBUILD RUN x\nARG Y\n'
        ),
    )
    result = _map(
        BOB, image, kubler_conf={"DEFAULT_BUILDER": "ns/bob", "AUTHOR": "Me <me@x.invalid>"}
    ).images["x"]
    assert result.spec["config"] == {
        "entrypoint": ["/bin/app"],
        "cmd": ["/bin/sh", "-c", "serve now"],
        "env": {"HOME": "/home/u", "P": "/bin"},  # docker: the values from before the instruction
        "user": "u",
        "workdir": "/home/u",
        "ports": ["8080/tcp", "53/udp"],
        "volumes": ["/data"],
        "labels": {
            "maintainer": "Me <me@x.invalid>",
            "a": "b",
            "kubler.healthcheck": "--interval=5s CMD true",
        },
        "stop_signal": "SIGINT",
    }
    steps = result.script.steps
    assert [s.kind for s in steps] == ["workdir", "run", "copy", "add"]
    run = steps[1]
    assert run.shell == "echo hi" and run.user == "u" and run.workdir == "/home/u"
    assert ("HOME", "/home/u") in run.env and run.env[0][0] == "PATH"
    omitted = {e.source.split()[0] for e in result.entries if e.outcome.startswith("omitted")}
    assert omitted == {"ONBUILD", "ARG"}


# -- what is written --------------------------------------------------------------------------------
def test_hook_script_carries_the_folder_and_dispatches(tmp_path):
    script = Script(
        unit="images/x",
        kind="image",
        name="x",
        image_id="ns/x",
        env={"BOB_A": "it's"},
        files=(
            FileEntry("build.sh", 0o644, b"configure_rootfs_build() { :; }\nKUBLER_EOF\n"),
            FileEntry("bin/blob", 0o755, b"\x00\x01no newline"),
            FileEntry("link", 0o777, b"", "build.sh"),
        ),
        applied=("configure_rootfs_build:3:update_use",),
        functions={"configure_rootfs": "configure_rootfs_build"},
        steps=(Step(("images/x/Dockerfile.template", 4), "run", shell="echo 'hi'", env=(("A", "b c"),)),),
        emerge_more=("pecl-x",),
    )
    text = hookscript.render(script, "/src/ns")
    assert text.startswith("#!/bin/sh\n") and '[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"' in text
    assert "<<'KUBLER_EOF_'\nconfigure_rootfs_build() { :; }\nKUBLER_EOF\nKUBLER_EOF_\n" in text
    assert "kubler_file_b64 bin/blob 755 <<'KUBLER_EOF'\nAAFubyBuZXdsaW5l\nKUBLER_EOF" in text
    assert "kubler_link link build.sh" in text and "export BOB_A='it'\"'\"'s'" in text
    assert "kubler_applied configure_rootfs_build:3:update_use" in text
    assert (
        "kubler_emerge pecl-x" in text
        and "kubler_run '' '' 'A=b c' -- /bin/sh -c 'echo '\"'\"'hi'\"'\"''" in text
    )
    path = tmp_path / "kubler.sh"
    path.write_text(text)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_toml_round_trips_in_the_models_order():
    spec = {
        "config": {"labels": {"org.x": 'quote"d'}, "env": {"A": "1"}},
        "strip": {"locales": "all", "headers": False},
        "package": {"a/b:1": {"use": ["x", "-y"]}},
        "packages": ["a/b"],
        "parent": "base",
    }
    text = tomlout.render(spec, ["header", ""], Image)
    assert text.startswith("# header\n#\n\nparent = ")  # the model's order, not the dict's
    assert text.index("[package.") < text.index("[strip]") < text.index("[config]")
    assert text.index("headers = false") < text.index('locales = "all"')
    assert tomllib.loads(text) == spec
    ns = {"make_conf": {"USE": "-x"}, "build": {"network": "host"}, "tree": {"snapshot": "latest"}}
    assert tomllib.loads(tomlout.render(ns, [], Namespace)) == ns
    with pytest.raises(ValueError, match="not keys of Image: stopsignal"):
        tomlout.render({"parent": "x", "stopsignal": "SIGTERM"}, [], Image)
    with pytest.raises(ValueError, match=r"not keys of \[config\]: stopsignal"):
        tomlout.render({"config": {"stopsignal": "SIGTERM"}}, [], Image)


def test_import_md_is_sorted_and_quotes_code():
    probes, folders = namespace(BOB, U("images/x", sh={"_packages": "a/b"}))
    result = mapping.map_namespace("ns", "/src/ns", probes, folders)
    text = report.render(result, "chrootforge import kubler /src/ns out", "9")
    section = text.split("## Image x")[1]
    lines = [line for line in section.splitlines() if line.startswith("- `")]
    assert lines == sorted(lines, key=lambda line: 0 if "build.sh" in line else 1)
    assert report._code("a `b` c") == "`` a `b` c ``"


def test_docs_list_every_helper():
    """docs/import.md's table has a row for each helper, with the same effect."""
    text = (REPO / "docs" / "import.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_-]+)` \| (key|hook|dropped) \|", text, re.M))
    assert set(rows) == set(NAMES)
    for helper in HELPERS:
        assert rows[helper.name] == {"drop": "dropped"}.get(helper.effect, helper.effect), helper.name
