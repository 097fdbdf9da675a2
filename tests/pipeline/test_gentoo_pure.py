"""The pure parts of the Gentoo steps: records, package.provided with USE, /etc/portage, s6, slim, SBOM."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from chrootforge.atoms import atom_cp, check_atom, split_cpv
from chrootforge.gentoo import records, s6
from chrootforge.gentoo.portage_conf import generate
from chrootforge.gentoo.provided import plan_provided
from chrootforge.gentoo.records import InstalledPackage
from chrootforge.gentoo.sbom import spdx_document
from chrootforge.gentoo.slim import plan_slim
from chrootforge.spec.graph import load_project
from chrootforge.spec.model import Service, Strip


def test_atoms():
    assert split_cpv("app-misc/hello-1.0-r2") == ("app-misc/hello", "1.0-r2")
    assert split_cpv("dev-libs/skalibs-bin-2.13.1.1") == ("dev-libs/skalibs-bin", "2.13.1.1")
    assert atom_cp(">=sys-apps/s6-2.11:0/2.11[execline]::gentoo") == "sys-apps/s6"
    assert atom_cp("sys-apps/busybox") == "sys-apps/busybox"
    assert check_atom("busybox") and check_atom(">=sys-apps/busybox")
    assert check_atom("~sys-apps/busybox-1.36") is None


def _vdb_pkg(root, cpv, use, iuse, slot="0", contents=()):
    cat, pf = cpv.split("/")
    d = root / "var/db/pkg" / cat / pf
    d.mkdir(parents=True)
    (d / "PF").write_text(pf + "\n")
    (d / "CATEGORY").write_text(cat + "\n")
    (d / "USE").write_text(" ".join(use) + " amd64 elibc_glibc\n")
    (d / "IUSE").write_text(" ".join(iuse) + "\n")
    (d / "SLOT").write_text(slot + "\n")
    (d / "LICENSE").write_text("MIT\n")
    (d / "repository").write_text("cfworld\n")
    (d / "CONTENTS").write_text("".join(contents))


def test_read_vdb(tmp_path):
    _vdb_pkg(
        tmp_path,
        "app-misc/hello-1.0",
        ["static"],
        ["+static", "debug"],
        contents=["dir /usr\n", "obj /usr/bin/hello 0123 1700000000\n", "sym /usr/bin/hi -> hello 17\n"],
    )
    _vdb_pkg(tmp_path, "sys-apps/busybox-bin-1.35.0", [], [], slot="0/1")
    got = records.read_vdb(tmp_path, image="hello")
    assert [p.cpv for p in got] == ["app-misc/hello-1.0", "sys-apps/busybox-bin-1.35.0"]
    hello = got[0]
    assert hello.use == ("static",) and hello.iuse == ("debug", "static")  # USE ∩ IUSE only
    assert hello.files == ("/usr/bin/hello", "/usr/bin/hi")
    assert got[1].slot == "0" and hello.repository == "cfworld" and hello.image == "hello"
    again = records.load(json.loads(records.dumps(got)))
    assert again == got


def _pkg(cpv, use=(), iuse=()):
    cp, version = split_cpv(cpv)
    cat, name = cp.split("/")
    return InstalledPackage(cat, name, version, tuple(use), tuple(iuse))


def test_provided_respects_use():
    parent = [
        _pkg("app-misc/hello-1.0", [], ["static"]),
        _pkg("sys-apps/busybox-bin-1.35.0"),
        _pkg("sys-libs/glibc-bin-2.36", ["nscd"], ["nscd"]),
    ]
    same = plan_provided(parent, {})
    assert same.lines == ("app-misc/hello-1.0", "sys-apps/busybox-bin-1.35.0", "sys-libs/glibc-bin-2.36")
    # The child wants hello with USE=static: the parent's dynamic build does not count.
    plan = plan_provided(parent, {"app-misc/hello": ("static",)})
    assert "app-misc/hello-1.0" not in plan.lines and len(plan.lines) == 2
    assert "static" in plan.reinstalled[0]
    # Matching USE (or a flag the package does not have) keeps it provided.
    assert "sys-libs/glibc-bin-2.36" in plan_provided(parent, {"sys-libs/glibc-bin": ("nscd",)}).lines
    assert "app-misc/hello-1.0" in plan_provided(parent, {"app-misc/hello": ("-static", "nope")}).lines
    assert "sys-libs/glibc-bin-2.36" not in plan_provided(parent, {"sys-libs/glibc-bin": ("-nscd",)}).lines


def test_merge_records_child_replaces_parent():
    parent = [_pkg("app-misc/hello-1.0", [], ["static"]), _pkg("sys-apps/busybox-bin-1.35.0")]
    child = [_pkg("app-misc/hello-1.0", ["static"], ["static"])]
    merged = records.merge(parent, child)
    assert [(p.cpv, p.use) for p in merged] == [
        ("app-misc/hello-1.0", ("static",)),
        ("sys-apps/busybox-bin-1.35.0", ()),
    ]


def test_portage_config(ns):
    ns.write(
        "chrootforge.toml",
        """\
        [stage3]
        path = "s"
        [tree]
        path = "repo"
        profile = "default/linux/amd64"
        [repos]
        extra = "extra"
        [make_conf]
        FEATURES = "-ipc-sandbox"
        USE = "-*"
        """,
    )
    (ns.root / "extra").mkdir()
    ns.image(
        "a",
        """\
        parent = "scratch"
        packages = ["app-misc/hello"]
        mask = [">=app-misc/hello-2"]
        unmask = ["app-misc/other"]
        [package."app-misc/hello"]
        use = "static -debug"
        keywords = ["~amd64"]
        env = { CFLAGS = "-O3", LDFLAGS = "-s" }
        [strip]
        man = false
        """,
    )
    project, _ = load_project(ns.root, ["a"])
    provided = plan_provided([_pkg("sys-apps/busybox-bin-1.35.0")], {})
    conf = generate(project.namespace, project.images["a"], provided)
    f = conf.files
    assert f["package.use/zz-chrootforge"].splitlines()[-1] == "app-misc/hello static -debug"
    assert f["package.accept_keywords/zz-chrootforge"].splitlines()[-1] == "app-misc/hello ~amd64"
    assert f["package.mask/zz-chrootforge"].splitlines()[-1] == ">=app-misc/hello-2"
    assert f["package.unmask/zz-chrootforge"].splitlines()[-1] == "app-misc/other"
    assert f["package.env/zz-chrootforge"].splitlines()[-1] == "app-misc/hello cf-app-misc_hello.conf"
    assert f["env/cf-app-misc_hello.conf"].splitlines()[1:] == ['CFLAGS="-O3"', 'LDFLAGS="-s"']
    repos = f["repos.conf/zz-chrootforge.conf"]
    assert "main-repo = testrepo" in repos and "[testrepo]\nlocation = /var/db/repos/gentoo" in repos
    assert "[extra]\nlocation = /var/db/repos/extra" in repos
    mc = conf.make_conf_append
    assert 'USE="-*"' in mc
    features = next(line for line in mc.splitlines() if line.startswith("FEATURES="))
    assert "-ipc-sandbox" in features and "nodoc" in features and "noman" not in features
    assert conf.provided_append == "sys-apps/busybox-bin-1.35.0\n"
    assert conf.profile == "/var/db/repos/gentoo/profiles/default/linux/amd64"


def test_portage_install_script_runs(tmp_path, ns):
    """The install script, run for real with /etc/portage redirected, merges with a stage's config."""
    ns.image("a", 'parent = "scratch"\n[package."x/y"]\nuse = ["z"]\n')
    project, _ = load_project(ns.root, ["a"])
    conf = generate(project.namespace, project.images["a"], plan_provided([_pkg("a/b-1")], {}))
    etc = tmp_path / "etc/portage"
    etc.mkdir(parents=True)
    (etc / "make.conf").write_text('FEATURES="-sandbox"\n')
    (etc / "package.use").write_text("stage/pkg flag\n")  # a plain file in the stage
    src = tmp_path / "cf"
    for rel, content in conf.files.items():
        (src / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / "files" / rel).write_text(content)
    (src / "make.conf.append").write_text(conf.make_conf_append)
    (src / "package.provided").write_text(conf.provided_append)
    script = (conf.install_script(str(src)) + conf.provided_script(str(src))).replace(
        "/etc/portage", str(etc)
    )
    subprocess.run(["sh", "-c", script], check=True)
    assert (etc / "package.use/00-stage").read_text() == "stage/pkg flag\n"
    assert "x/y z" in (etc / "package.use/zz-chrootforge").read_text()
    assert (etc / "make.conf").read_text().startswith('FEATURES="-sandbox"\n')
    assert "chrootforge" in (etc / "make.conf").read_text()
    assert (etc / "profile/package.provided").read_text() == "a/b-1\n"


def test_s6_service_tree_runs(tmp_path):
    entries = s6.service_entries(
        [Service(name="web", run="httpd -f", finish="echo bye"), Service(name="a", run="sleep 1")]
    )
    script = s6.install_script(entries, str(tmp_path))
    subprocess.run(["sh", "-c", script], check=True)
    run = tmp_path / "etc/service/web/run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    assert run.read_text() == "#!/bin/sh\nexec 2>&1\nexec httpd -f\n"
    assert (tmp_path / "etc/service/web/finish").read_text() == "#!/bin/sh\necho bye\n"
    assert not (tmp_path / "etc/service/a/finish").exists()
    assert os.readlink(tmp_path / "service/web") == "/etc/service/web"
    assert sorted(os.listdir(tmp_path / "service")) == ["a", "web"]
    assert s6.service_entries([]) == []


def test_slim_plan_runs(tmp_path):
    root = tmp_path / "root"
    keep = [
        "bin/busybox",
        "usr/share/locale/en_US/LC_MESSAGES/x.mo",
        "usr/share/locale/en/x.mo",
        "usr/lib/locale/C.utf8/LC_CTYPE",
        "usr/lib/libz.so.1",
        "etc/passwd",
    ]
    gone = [
        "usr/share/doc/hello-1.0/README",
        "usr/share/man/man1/hello.1",
        "usr/share/info/x.info",
        "var/db/pkg/app-misc/hello-1.0/PF",
        "etc/portage/make.conf",
        "var/lib/portage/world",
        "var/cache/edb/counter",
        "usr/include/zlib.h",
        "usr/lib/libz.a",
        "usr/lib/libz.la",
        "usr/share/locale/de/LC_MESSAGES/x.mo",
        "usr/lib/locale/de_DE.utf8/LC_CTYPE",
    ]
    for rel in keep + gone:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    plan = plan_slim(Strip(locales=("en_US", "en")))
    subprocess.run(["sh", "-c", plan.shell(str(root))], check=True)
    for rel in keep:
        assert (root / rel).exists(), rel
    for rel in gone:
        assert not (root / rel).exists(), rel
    assert not (root / "var/db").exists() or not any((root / "var/db").iterdir())
    assert not (root / "usr/share/doc").exists() and list((root / "var/cache").iterdir()) == []


def test_slim_keeps_directories_that_were_empty_on_purpose(tmp_path):
    """Empty directories the removals leave behind go; those a hook or package made empty (a
    volume, a spool, a log directory) stay, as they would in kubler's images."""
    root = tmp_path / "root"
    for rel in ("var/log/app", "var/lib/app/data", "usr/share/app/empty", "var/cache/nginx"):
        (root / rel).mkdir(parents=True)
    for rel in (
        "var/lib/portage/world",
        "var/log/portage/build.log",
        "var/lib/gone/deep/file",
        "usr/share/doc/x/README",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / "var/lib/gone/deep/file").unlink()  # empty before: stays (deep and gone alike)
    subprocess.run(["sh", "-c", plan_slim(Strip()).shell(str(root))], check=True)
    for rel in (
        "var/log/app",
        "var/lib/app/data",
        "usr/share/app/empty",
        "var/cache/nginx",
        "var/lib/gone/deep",
    ):
        assert (root / rel).is_dir(), rel
    for rel in ("var/lib/portage", "var/log/portage", "usr/share/doc"):
        assert not (root / rel).exists(), rel
    assert not list(tmp_path.glob("cf-empty*")) and not list(Path("/tmp").glob("cf-empty.*.now"))
    # locales=None keeps everything, docs=False keeps docs
    plan2 = plan_slim(Strip(docs=False, locales=None, static_libs=False))
    assert "usr/share/doc" not in plan2.remove and plan2.keep_locales is None and not plan2.remove_names
    assert "var/db/pkg" in plan2.remove  # portage state always goes


def test_sbom_shape():
    recs = [_pkg("app-misc/hello-1.0", ["static"], ["static"]), _pkg("sys-apps/busybox-bin-1.35.0")]
    doc = spdx_document(
        "localhost/w/hello:latest",
        recs,
        created_epoch=1700000000,
        namespace_uri="https://x.invalid/1",
        tool_version="0.1.0",
        image_digest="sha256:ab",
    )
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    pkgs = {p["name"]: p for p in doc["packages"]}
    assert pkgs["app-misc/hello"]["versionInfo"] == "1.0"
    assert pkgs["app-misc/hello"]["externalRefs"][0]["referenceLocator"] == "pkg:ebuild/app-misc/hello@1.0"
    assert pkgs["sys-apps/busybox-bin"]["versionInfo"] == "1.35.0"
    ids = {p["SPDXID"] for p in doc["packages"]}
    assert len(ids) == len(doc["packages"]) == 3
    contains = [r for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"]
    assert {r["relatedSpdxElement"] for r in contains} == ids - {"SPDXRef-Image"}
    assert all(r["relatedSpdxElement"] in ids | {"SPDXRef-DOCUMENT"} for r in doc["relationships"])


def test_emerge_failure_tail_is_single_spaced(tmp_path):
    """The tail printed when emerge fails: one log line per message line (it was double-spaced),
    a progress line rewritten with carriage returns as it ended up."""
    from chrootforge.gentoo.executor import tail_block

    log = tmp_path / "emerge.log"
    log.write_text(
        "".join(f"line {i}\n" for i in range(30)) + "fetching 10%\r50%\r100%\n * ERROR: x failed\n"
    )
    block = tail_block(log, 4).splitlines()
    assert block == ["    | line 28", "    | line 29", "    | 100%", "    |  * ERROR: x failed"]
    assert tail_block(tmp_path / "missing.log", 4) == ""


def test_emerge_command_line_is_what_runs():
    from chrootforge.gentoo import emerge

    argv = emerge.emerge_argv([">=app-misc/hello-1"], 7)
    assert "--jobs=7" in argv
    line = emerge.command_line(argv)
    assert line.startswith("ROOT=/emerge-root ") and line.endswith("--jobs=7 '>=app-misc/hello-1'")
