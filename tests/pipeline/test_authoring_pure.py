"""Image authors' keys as plans, without a stage (issue 14): provided/unprovided, uninstall, runtime_libs,
[strip] keep; and the SBOM's SPDX licenses. The generated shell scripts run for real on fake trees."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from chrootforge.errors import CfError, UsageError
from chrootforge.gentoo import depstring, licenses, runtimelibs, uninstall
from chrootforge.gentoo.plan import plan_image, render_plan
from chrootforge.gentoo.portage_conf import generate
from chrootforge.gentoo.provided import plan_provided, read_resolved
from chrootforge.gentoo.records import InstalledPackage
from chrootforge.gentoo.sbom import spdx_document
from chrootforge.gentoo.slim import install_features, plan_slim, warn_unmatched
from chrootforge.gentoo.state import ImageState, load_state, save_state
from chrootforge.spec.graph import load_project
from chrootforge.spec.model import Strip


def _pkg(cpv, use=(), iuse=(), image="base", license_=""):
    from chrootforge.atoms import split_cpv

    cp, version = split_cpv(cpv)
    category, name = cp.split("/")
    return InstalledPackage(category, name, version, tuple(use), tuple(iuse), image=image, license=license_)


# -- provided / unprovided ---------------------------------------------------------------------------
def test_provided_plan_sources_and_unprovided():
    parent = [_pkg("sys-apps/busybox-1.36"), _pkg("dev-lang/perl-5.38")]
    plan = plan_provided(
        parent,
        {},
        parent_provided=("dev-libs/openssl-3.1", "virtual/libc-1"),
        provided=("dev-build/make-4.4", "dev-lang/python"),
        unprovided=("dev-lang/perl", "virtual/libc"),
    )
    assert plan.lines == ("dev-build/make-4.4", "dev-libs/openssl-3.1", "sys-apps/busybox-1.36")
    assert plan.resolve == ("dev-lang/python",)
    assert plan.explicit == ("dev-build/make-4.4", "dev-libs/openssl-3.1")
    assert plan.dropped == (
        "dev-lang/perl-5.38 (a package of the parents)",
        "virtual/libc-1 (provided by the parents)",
    )
    # children inherit the explicit entries (not the parents' packages: those come with the records)
    assert plan.passed_down(("dev-lang/python-3.12.1",)) == (
        "dev-build/make-4.4",
        "dev-lang/python-3.12.1",
        "dev-libs/openssl-3.1",
    )


def test_provided_resolve_script_runs(tmp_path):
    """The script asks portageq (a stand-in here; the world build test runs the real one) for the best
    visible version, appends it to package.provided and records it; an invisible package fails it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "portageq").write_text(
        '#!/bin/sh\n[ "$1 $2" = "best_visible /" ] || exit 2\n'
        'case "$3" in dev-lang/perl) echo dev-lang/perl-5.38.2-r1;; *) exit 1;; esac\n'
    )
    (bin_dir / "portageq").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    provided_file = tmp_path / "package.provided"
    provided_file.write_text("sys-apps/busybox-1.36\n")
    status = tmp_path / "status"
    status.mkdir()
    script = plan_provided([], {}, provided=("dev-lang/perl",)).resolve_script(
        str(status), str(provided_file)
    )
    subprocess.run(["sh", "-euc", script], check=True, env=env)
    assert provided_file.read_text() == "sys-apps/busybox-1.36\ndev-lang/perl-5.38.2-r1\n"
    assert read_resolved(status) == ("dev-lang/perl-5.38.2-r1",)
    bad = plan_provided([], {}, provided=("dev-lang/nope",)).resolve_script(str(status), str(provided_file))
    proc = subprocess.run(["sh", "-euc", bad], check=False, env=env, capture_output=True, text=True)
    assert proc.returncode == 3 and "no version of dev-lang/nope is visible in the tree" in proc.stderr
    assert plan_provided([], {}, provided=("a/b-1",)).resolve_script(str(status)) == ""
    assert read_resolved(tmp_path / "nothing") == ()


def test_plan_shows_provided_unprovided_uninstall_runtime_libs_keep(ns):
    ns.image("base", 'parent = "scratch"\npackages = ["sys-apps/busybox"]\n')
    ns.image(
        "app",
        """\
        parent = "base"
        packages = ["app-misc/hello"]
        provided = ["dev-lang/perl", "dev-build/make-4.4"]
        unprovided = ["sys-apps/busybox", "virtual/libc"]
        uninstall = ["dev-build/cmake"]
        force_uninstall = true
        runtime_libs = ["libgcc_s.so.1"]
        [strip]
        keep = ["/usr/share/doc/hello-*/README*"]
        """,
    )
    project, _ = load_project(ns.root, None)
    plan = plan_image(
        project,
        "app",
        [_pkg("sys-apps/busybox-1.36"), _pkg("sys-libs/glibc-2.39")],
        parent_provided=("virtual/libc-1",),
    )
    conf = generate(project.namespace, project.images["app"], plan.provided)
    assert conf.provided_append == "dev-build/make-4.4\nsys-libs/glibc-2.39\n"
    text = render_plan(plan)
    provided = text[text.index("profile/package.provided:") : text.index("   builder deps:")]
    assert provided.splitlines()[1:] == [
        "       dev-build/make-4.4",
        "       sys-libs/glibc-2.39",
        "       dev-lang/perl-<best visible version, resolved in the builder>",
        "       # unprovided: sys-apps/busybox-1.36 (a package of the parents)",
        "       # unprovided: virtual/libc-1 (provided by the parents)",
    ]
    assert (
        "   uninstall: ROOT=/emerge-root emerge --unmerge --color=n --nospinner dev-build/cmake (force_uninstall"
        in text
    )
    assert "   runtime_libs: libgcc_s.so.1 (from the builder's packages" in text
    assert "   strip keep: /usr/share/doc/hello-*/README*" in text
    # a keep pattern under /usr/share/doc: portage must install docs (no nodoc), the strip removes the rest
    features = next(line for line in conf.make_conf_append.splitlines() if line.startswith("FEATURES="))
    assert "nodoc" not in features and "noman" in features and "noinfo" in features


def test_plan_before_the_parent_is_built_still_shows_unprovided(ns):
    ns.image("base", 'parent = "scratch"\npackages = ["sys-apps/busybox"]\n')
    ns.image("app", 'parent = "base"\npackages = ["acct-user/hello"]\nunprovided = ["acct-user/hello"]\n')
    project, _ = load_project(ns.root, None)
    text = render_plan(plan_image(project, "app", []))  # no parent records: the parent is not built
    assert "       # unprovided: acct-user/hello (kept out of what the parents pass down" in text


def test_uninstall_of_a_parent_package_is_a_spec_error(ns):
    ns.image("base", 'parent = "scratch"\npackages = ["sys-apps/busybox"]\n')
    path = ns.image("app", 'parent = "base"\n# comment\nuninstall = ["sys-apps/busybox"]\n')
    project, _ = load_project(ns.root, None)
    with pytest.raises(UsageError) as info:
        plan_image(project, "app", [_pkg("sys-apps/busybox-1.36", image="base")])
    assert f"{path}:3: uninstall: sys-apps/busybox is in the parent image 'base'" in info.value.render()
    assert plan_image(project, "app", None).uninstall.packages == ("sys-apps/busybox",)  # parent unbuilt


# -- uninstall: the dependency check ------------------------------------------------------------------
def test_depstring_parse():
    tree = depstring.parse(">=a/b-1:0= || ( c/d ( e/f g/h ) ) ssl? ( i/j ) !k/l")
    assert tree[0] == ">=a/b-1:0=" and tree[-1] == "!k/l"
    assert tree[1].kind == "any" and tree[1].items[1].kind == "all"
    assert tree[2].kind == "use" and tree[2].flag == "ssl" and tree[2].applies({"ssl"})
    assert depstring.text(tree[1]) == "|| ( c/d ( e/f g/h ) )"
    assert depstring.parse("!ssl? ( a/b )")[0].negated
    for bad in ("( a/b", "a/b )", "|| a/b", "ssl?"):
        with pytest.raises(ValueError):
            depstring.parse(bad)


def test_needed_by():
    installed = [
        uninstall.Installed("app-misc/hello-1.0", "app-misc/hello", "acct-user/hello >=sys-libs/zlib-1.2"),
        uninstall.Installed("acct-user/hello-0", "acct-user/hello", "acct-group/hello"),
        uninstall.Installed("acct-group/hello-0", "acct-group/hello", ""),
        uninstall.Installed("dev-build/make-4.4", "dev-build/make", ""),
        uninstall.Installed(
            "app-misc/tool-1", "app-misc/tool", "|| ( dev-build/make dev-build/ninja ) !dev-build/cmake"
        ),
        uninstall.Installed("sys-libs/zlib-1.3", "sys-libs/zlib", ""),
    ]
    assert uninstall.needed_by(installed, {"acct-user/hello"}, set()) == [
        "app-misc/hello-1.0 needs acct-user/hello"
    ]
    assert uninstall.needed_by(installed, {"acct-user/hello", "app-misc/hello"}, set()) == []
    assert uninstall.needed_by(installed, {"sys-libs/zlib"}, set()) == [
        "app-misc/hello-1.0 needs sys-libs/zlib (>=sys-libs/zlib-1.2)"
    ]
    # an `||` group needs make only while no other choice is there
    assert uninstall.needed_by(installed, {"dev-build/make"}, set()) == [
        "app-misc/tool-1 needs dev-build/make (|| ( dev-build/make dev-build/ninja ))"
    ]
    assert uninstall.needed_by(installed, {"dev-build/make"}, {"dev-build/ninja"}) == []
    # package.provided satisfies a dependency as well; a blocker is no dependency
    assert uninstall.needed_by(installed, {"acct-group/hello"}, {"acct-group/hello"}) == []
    assert uninstall.needed_by(installed, {"dev-build/cmake"}, set()) == []


def _vdb(root: Path, cpv: str, rdepend: str = "") -> None:
    d = root / "var/db/pkg" / cpv
    d.mkdir(parents=True)
    if rdepend:
        (d / "RDEPEND").write_text(rdepend + "\n")


def test_uninstall_run_refuses_before_touching_the_root(tmp_path):
    _vdb(tmp_path, "app-misc/hello-1.0", "acct-user/hello")
    _vdb(tmp_path, "acct-user/hello-0")
    assert [p.cpv for p in uninstall.read_installed(tmp_path)] == ["acct-user/hello-0", "app-misc/hello-1.0"]

    def no_sandbox(*args):
        raise AssertionError("unmerge must not run")

    plan = uninstall.UninstallPlan(("acct-user/hello",))
    with pytest.raises(CfError, match=r"uninstall: app-misc/hello-1.0 needs acct-user/hello") as info:
        uninstall.run(plan, tmp_path, (), no_sandbox, "img")
    assert "force_uninstall = true" in info.value.hint
    with pytest.raises(CfError, match="uninstall: dev-build/make not installed by this image's emerge"):
        uninstall.run(uninstall.UninstallPlan(("dev-build/make",)), tmp_path, (), no_sandbox, "img")
    # provided entries satisfy the dependency: then it may go (the sandbox step is then reached)
    ran = []
    with pytest.raises(CfError, match="emerge --unmerge left acct-user/hello installed"):
        uninstall.run(plan, tmp_path, ("acct-user/hello-0",), lambda *a: ran.append(a), "img")
    assert ran and ran[0][0] == "uninstall" and "emerge --unmerge" in ran[0][1]
    assert ran[0][2]["ROOT"] == "/emerge-root"


# -- runtime_libs: the copy script on a fake builder and image --------------------------------------
HOST_LIB = next(
    (
        p
        for p in (Path("/lib/x86_64-linux-gnu/libgcc_s.so.1"), Path("/usr/lib64/libgcc_s.so.1"))
        if p.exists()
    ),
    None,
)


def _elf32(path: Path) -> None:
    """A file with a 32-bit x86 ELF header: another ABI than the builder's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HH", 2, 3) + bytes(16))


def _contents(vdb: Path, cpv: str, lines: list[str], license_: str = "GPL-3+") -> None:
    d = vdb / cpv
    d.mkdir(parents=True)
    (d / "CONTENTS").write_text("".join(line + "\n" for line in lines))
    (d / "LICENSE").write_text(license_ + "\n")


@pytest.mark.skipif(HOST_LIB is None, reason="no libgcc_s.so.1 on this host to stand in for gcc's")
def test_runtime_libs_script_copies_from_the_owning_package(tmp_path):
    builder, image, status = tmp_path / "builder", tmp_path / "image", tmp_path / "status"
    status.mkdir()
    gccdir = builder / "usr/lib/gcc/x86_64-pc-linux-gnu/13"
    gccdir.mkdir(parents=True)
    shutil.copy(HOST_LIB, gccdir / "libgcc_s.so.1.real")
    os.symlink("libgcc_s.so.1.real", gccdir / "libgcc_s.so.1")
    _elf32(gccdir / "32/libgcc_s.so.1")
    vdb = builder / "var/db/pkg"
    _contents(
        vdb,
        "sys-devel/gcc-13.2.1_p20240113-r1",
        [
            f"obj {gccdir}/libgcc_s.so.1.real 0123 1",
            f"sym {gccdir}/libgcc_s.so.1 -> libgcc_s.so.1.real 1",
            f"obj {gccdir}/32/libgcc_s.so.1 0123 1",
        ],
        "GPL-3+ LGPL-3+ || ( GPL-3+ libgcc libstdc++ gcc-runtime-library-exception-3.1 ) FDL-1.3+",
    )
    _contents(vdb, "sys-apps/other-1", [f"obj {builder}/usr/bin/other 0 1"])
    libc_dir = image / "lib/x86_64-linux-gnu"
    libc_dir.mkdir(parents=True)
    shutil.copy(HOST_LIB, libc_dir / "libc.so.6")  # any ELF of the native ABI stands for the C library
    _elf32(image / "lib/libc.so.6")
    plan = runtimelibs.RuntimeLibsPlan(("libgcc_s.so.1",))
    script = plan.script(str(status), root=str(image), vdb=str(vdb))
    proc = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    copied = image / "lib/x86_64-linux-gnu/libgcc_s.so.1"
    assert copied.read_bytes() == HOST_LIB.read_bytes() and not copied.is_symlink()
    files = runtimelibs.read_copied(status, image, "app")
    assert len(files) == 1
    f = files[0]
    assert (f.path, f.source, f.package) == (
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        f"{gccdir}/libgcc_s.so.1",
        "sys-devel/gcc-13.2.1_p20240113-r1",
    )
    assert (
        f.sha256 == hashlib.sha256(HOST_LIB.read_bytes()).hexdigest() and f.version == "13.2.1_p20240113-r1"
    )
    assert f.license.startswith("GPL-3+ LGPL-3+ ||")
    # again: the same bytes are already there, nothing new is recorded
    proc = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True)
    assert proc.returncode == 0 and "already in the image" in proc.stdout
    assert runtimelibs.read_copied(status, image, "app") == []
    # a name no package has; two packages with it; no C library in the image
    for change, message in [
        (lambda: None, "no package installed in the builder has libstdc++.so.6"),
        (
            lambda: _contents(vdb, "sys-devel/gcc-12.3.1", [f"obj {gccdir}/libgcc_s.so.1 0 1"]),
            "several builder packages have libgcc_s.so.1",
        ),
        (lambda: shutil.rmtree(libc_dir), "the image has no libc.so.6 for this architecture"),
    ]:
        change()
        names = ("libstdc++.so.6",) if "libstdc++" in message else ("libgcc_s.so.1",)
        script = runtimelibs.RuntimeLibsPlan(names).script(str(status), root=str(image), vdb=str(vdb))
        proc = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True)
        assert proc.returncode == 3 and message in proc.stderr, proc.stderr


def test_builder_files_merge_and_state_round_trip(tmp_path):
    a = runtimelibs.BuilderFile(
        "/lib64/libgcc_s.so.1",
        "/usr/lib/gcc/x/13/libgcc_s.so.1",
        "sys-devel/gcc-13.2",
        "GPL-3+",
        "1" * 40,
        "2" * 64,
        "base",
    )
    b = runtimelibs.BuilderFile(
        "/lib64/libgcc_s.so.1",
        "/usr/lib/gcc/x/14/libgcc_s.so.1",
        "sys-devel/gcc-14.1",
        "GPL-3+",
        "3" * 40,
        "4" * 64,
        "child",
    )
    c = runtimelibs.BuilderFile(
        "/lib64/libstdc++.so.6", "/x", "sys-devel/gcc-13.2", "GPL-3+", "5" * 40, "6" * 64, "base"
    )
    assert runtimelibs.merge([a, c], [b]) == [b, c]
    state = ImageState(
        image="i",
        key="k",
        manifest_digest="sha256:0",
        tags=["t"],
        provided=["dev-lang/perl-5.38"],
        builder_files=runtimelibs.dump([a]),
    )
    save_state(tmp_path, state)
    again = load_state(tmp_path, "i")
    assert again.provided == ["dev-lang/perl-5.38"] and runtimelibs.load(again.builder_files) == [a]
    # a state written before these fields existed still loads
    path = tmp_path.parent / f"{tmp_path.name}.build" / "state" / "old.json"
    path.write_text(json.dumps({"image": "old", "key": "k", "manifest_digest": "d", "tags": []}))
    old = load_state(tmp_path, "old")
    assert old.provided == [] and old.builder_files == []


# -- [strip] keep --------------------------------------------------------------------------------------
def test_strip_keep_runs(tmp_path):
    root, status = tmp_path / "root", tmp_path / "status"
    status.mkdir()
    files = {
        "usr/share/doc/hello-1.0/README.bz2": "r",
        "usr/share/doc/hello-1.0/NEWS": "n",
        "usr/share/doc/other-2/README": "o",
        "usr/share/zoneinfo/UTC": "z",
        "usr/lib/libz.a": "a",
        "usr/lib/libm.a": "m",
        "usr/share/locale/de/LC_MESSAGES/x.mo": "de",
        "var/db/pkg/a/b-1/PF": "pf",
        "usr/include/zlib.h": "h",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "usr/share/doc").chmod(0o750)
    plan = plan_slim(
        Strip(
            keep=(
                "/usr/share/doc/hello-*/README*",
                "/usr/lib/libz.a",
                "/usr/share/locale/de",
                "/usr/share/zoneinfo/UTC",
                "/opt/nothing*",
                "/usr/include/*.hpp",
            )
        )
    )
    subprocess.run(["sh", "-c", plan.shell(str(root), str(status))], check=True)
    kept = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert kept == {
        "usr/share/doc/hello-1.0/README.bz2",
        "usr/lib/libz.a",
        "usr/share/locale/de/LC_MESSAGES/x.mo",
        "usr/share/zoneinfo/UTC",
    }
    assert (root / "usr/share/doc/hello-1.0/README.bz2").read_text() == "r"
    assert stat.S_IMODE((root / "usr/share/doc").stat().st_mode) == 0o750  # recreated as it was
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert not list(root.glob("**/cf-keep*")) and not list(Path("/tmp").glob("cf-keep.*"))
    assert warn_unmatched(status, "img") == ["/opt/nothing*", "/usr/include/*.hpp"]
    # no keep: the script is the one it always was (no status file needed)
    assert "cf_keep" not in plan_slim(Strip()).shell(str(root))


def test_install_features_follow_keep():
    assert install_features(Strip()) == ["nodoc", "noman", "noinfo"]
    assert install_features(Strip(keep=("/usr/share/zoneinfo/UTC",))) == ["nodoc", "noman", "noinfo"]
    assert install_features(Strip(keep=("/usr/share/man/man1/ls.1*",))) == ["nodoc", "noinfo"]
    assert install_features(Strip(keep=("/usr/share/*/README",))) == []  # might match any of them
    assert install_features(Strip(docs=False, man=False, info=False)) == []


# -- SPDX licenses --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "gentoo,use,spdx,refs",
    [
        ("GPL-2", (), "GPL-2.0-only", ()),
        ("GPL-2+", (), "GPL-2.0-or-later", ()),
        ("LGPL-2.1+", (), "LGPL-2.1-or-later", ()),
        ("MIT", (), "MIT", ()),
        ("ISC", (), "ISC", ()),
        ("BSD", (), "BSD-3-Clause", ()),
        ("BSD-2", (), "BSD-2-Clause", ()),
        ("Apache-2.0", (), "Apache-2.0", ()),
        ("LGPL-2.1+ GPL-2", (), "LGPL-2.1-or-later AND GPL-2.0-only", ()),
        ("|| ( MIT Apache-2.0 )", (), "MIT OR Apache-2.0", ()),
        ("|| ( GPL-2 ( MIT ISC ) ) ZLIB", (), "(GPL-2.0-only OR (MIT AND ISC)) AND Zlib", ()),
        ("GPL-2 || ( MIT || ( BSD ISC ) )", (), "GPL-2.0-only AND (MIT OR BSD-3-Clause OR ISC)", ()),
        ("ssl? ( openssl ) !ssl? ( public-domain )", ("ssl",), "OpenSSL", ()),
        (
            "ssl? ( openssl ) !ssl? ( public-domain )",
            (),
            "LicenseRef-Gentoo-public-domain",
            ("public-domain",),
        ),
        (
            "GPL-3+ gcc-runtime-library-exception-3.1",
            (),
            "GPL-3.0-or-later AND LicenseRef-Gentoo-gcc-runtime-library-exception-3.1",
            ("gcc-runtime-library-exception-3.1",),
        ),
        ("Foo+_bar", (), "LicenseRef-Gentoo-Foo--bar", ("Foo+_bar",)),
        ("GPL-2-with-classpath-exception", (), "GPL-2.0-only WITH Classpath-exception-2.0", ()),
        ("MIT MIT", (), "MIT", ()),
        ("", (), "NOASSERTION", ()),
        ("doc? ( FDL-1.3 )", (), "NOASSERTION", ()),
    ],
)
def test_gentoo_license_to_spdx(gentoo, use, spdx, refs):
    got = licenses.to_spdx(gentoo, use)
    assert (got.expression, got.refs) == (spdx, refs)


def test_sbom_licenses_and_builder_files():
    records = [
        _pkg("app-misc/hello-1.0", license_="MIT"),
        _pkg("sys-apps/x-1", license_="|| ( GPL-2+ fancy )"),
        _pkg("sys-apps/broken-1", license_="|| ( MIT"),
    ]
    files = [
        runtimelibs.BuilderFile(
            "/lib64/libgcc_s.so.1",
            "/usr/lib/gcc/x/13/libgcc_s.so.1",
            "sys-devel/gcc-13.2.1",
            "GPL-3+ gcc-runtime-library-exception-3.1",
            "a" * 40,
            "b" * 64,
            "gccrt",
        ),
        runtimelibs.BuilderFile(
            "/lib64/libstdc++.so.6",
            "/usr/lib/gcc/x/13/libstdc++.so.6",
            "sys-devel/gcc-13.2.1",
            "GPL-3+ gcc-runtime-library-exception-3.1",
            "c" * 40,
            "d" * 64,
            "gccrt",
        ),
    ]
    doc = spdx_document(
        "localhost/w/app:latest",
        records,
        created_epoch=0,
        namespace_uri="https://x.invalid/1",
        tool_version="0",
        builder_files=files,
    )
    pkgs = {p["SPDXID"]: p for p in doc["packages"]}
    assert pkgs["SPDXRef-Package-app-misc-hello-1.0"]["licenseDeclared"] == "MIT"
    assert (
        pkgs["SPDXRef-Package-sys-apps-x-1"]["licenseDeclared"]
        == "GPL-2.0-or-later OR LicenseRef-Gentoo-fancy"
    )
    assert pkgs["SPDXRef-Package-sys-apps-broken-1"]["licenseDeclared"] == "NOASSERTION"
    gcc = pkgs["SPDXRef-BuilderPackage-sys-devel-gcc-13.2.1"]
    assert (gcc["name"], gcc["versionInfo"], gcc["filesAnalyzed"]) == ("sys-devel/gcc", "13.2.1", True)
    assert (
        gcc["licenseDeclared"] == "GPL-3.0-or-later AND LicenseRef-Gentoo-gcc-runtime-library-exception-3.1"
    )
    assert (
        gcc["packageVerificationCode"]["packageVerificationCodeValue"]
        == hashlib.sha1(("a" * 40 + "c" * 40).encode()).hexdigest()
    )
    listed = {f["SPDXID"]: f for f in doc["files"]}
    assert set(gcc["hasFiles"]) == set(listed)
    assert sorted(f["fileName"] for f in listed.values()) == [
        "./lib64/libgcc_s.so.1",
        "./lib64/libstdc++.so.6",
    ]
    assert all({c["algorithm"] for c in f["checksums"]} == {"SHA1", "SHA256"} for f in listed.values())
    rel = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    assert ("SPDXRef-Image", "CONTAINS", gcc["SPDXID"]) in rel
    assert all((gcc["SPDXID"], "CONTAINS", f) in rel for f in listed)
    assert {e["licenseId"] for e in doc["hasExtractedLicensingInfos"]} == {
        "LicenseRef-Gentoo-fancy",
        "LicenseRef-Gentoo-gcc-runtime-library-exception-3.1",
    }
    ids = [p["SPDXID"] for p in doc["packages"]] + list(listed)
    assert len(ids) == len(set(ids))
    # every LicenseRef used is defined
    used = {
        ref
        for p in doc["packages"]
        for ref in p["licenseDeclared"].replace("(", " ").replace(")", " ").split()
        if ref.startswith("LicenseRef-")
    }
    assert used == {e["licenseId"] for e in doc["hasExtractedLicensingInfos"]}
