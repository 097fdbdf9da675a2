"""End to end in the test world, as root and as the unprivileged user: an image scaffolded by
`chrootforge new` on the world's glibc, and the image authors' keys of issue 14 (provided and
unprovided, uninstall with and without force, runtime_libs, [strip] keep), the SBOM's licenses and
/sbin/nologin. One build of busybox -> glibc and these images per identity (module-scoped); every
image is checked with podman.

    glibc -> scaffolded   `chrootforge new --parent glibc --package app-misc/hello`, as written
    glibc -> cancel       threadcancel without gcc's runtime libraries; hello, whose acct-user/hello
                          is uninstalled with force_uninstall
    glibc -> gccrt        threadcancel with runtime_libs (the builder gets the world's gcc-bin in a
                          configure_builder hook, as a real stage3 has sys-devel/gcc), [strip] keep
    gccrt -> noacct       hello with its accounts provided; gcc-bin emerged then uninstalled
    noacct -> withacct    unprovided: the accounts are installed after all
    glibc -> needs        (built alone) uninstall of what hello needs: the build fails, naming hello
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.world_build import WorldBuild, namespace, own

pytestmark = pytest.mark.slow
CANCEL_ERROR = "libgcc_s.so.1 must be installed for pthread_cancel to work"
GCC_BIN = "sys-devel/gcc-bin-12.2.0_p14_p12_p1"

SPECS = {
    "cancel": """\
        parent = "glibc"
        packages = ["app-misc/threadcancel", "app-misc/hello"]
        uninstall = ["acct-user/hello"]
        force_uninstall = true
        """,
    "gccrt": """\
        parent = "glibc"
        packages = ["app-misc/threadcancel"]
        runtime_libs = ["libgcc_s.so.1", "libstdc++.so.6"]
        [hooks]
        configure_builder = ["gcc-runtime.sh"]
        finish_rootfs = ["check-binaries"]
        [strip]
        keep = ["/usr/share/doc/threadcancel-*/README*", "/usr/share/zoneinfo/UTC"]
        """,
    "noacct": """\
        parent = "gccrt"
        packages = ["app-misc/hello", "sys-devel/gcc-bin"]
        provided = ["acct-user/hello-0", "acct-group/hello"]
        uninstall = ["sys-devel/gcc-bin"]
        """,
    "withacct": """\
        parent = "noacct"
        packages = ["acct-user/hello"]
        unprovided = ["acct-user/hello", "acct-group/hello"]
        """,
}
GCC_HOOK = (
    "# A real stage3 has sys-devel/gcc in /var/db/pkg; the synthetic one gets the world's gcc-bin.\n"
    "emerge --oneshot --usepkg --color=n --nospinner sys-devel/gcc-bin\n"
)
IMAGES = ["busybox", "glibc", "cancel", "gccrt", "scaffolded", "noacct", "withacct"]


def _records(doc: dict) -> set[str]:
    """The Gentoo packages of an SBOM (what /var/db/pkg listed), as cat/pkg-version."""
    return {
        f"{p['name']}-{p['versionInfo']}"
        for p in doc["packages"]
        if p["SPDXID"].startswith("SPDXRef-Package-")
    }


def make_namespace(tmp: Path, repo: Path) -> Path:
    """busybox -> glibc of examples/world, plus the images of SPECS and gccrt's hook."""
    specs = {f"{name}/image.toml": spec.replace("        ", "") for name, spec in SPECS.items()}
    files = {**specs, "gccrt/gcc-runtime.sh": GCC_HOOK}
    return namespace(tmp, repo, drop=("s6", "hello", "greeter"), files=files)


@pytest.fixture(scope="module", params=["root", "user"])
def world(request, world_inputs, world_repo) -> WorldBuild:
    identity = get_identity(request.param)
    w = WorldBuild.prepare(
        identity, "authoring.", lambda tmp: make_namespace(tmp, world_repo), world_inputs, epoch="1700000000"
    )
    new = w.cf("new", str(w.ns / "scaffolded"), "--parent", "glibc", "--package", "app-misc/hello")
    assert new.returncode == 0, new.stderr
    w.build()
    w.to_podman(IMAGES)
    yield w
    w.remove()


def test_all_built(world):
    assert [(r["image"], r["status"]) for r in world.report["images"]] == [(i, "built") for i in IMAGES]
    steps = {r["image"]: r["steps"] for r in world.report["images"]}
    assert (
        "uninstall" in steps["noacct"]
        and "uninstall" in steps["cancel"]
        and "uninstall" not in steps["gccrt"]
    )
    assert "runtime_libs" in steps["gccrt"] and "runtime_libs" not in steps["noacct"]


# -- chrootforge new ------------------------------------------------------------------------------------
def test_scaffolded_image_builds_and_runs(world):
    spec = (world.ns / "scaffolded" / "image.toml").read_text()
    assert (
        'parent = "glibc"' in spec and 'packages = ["app-misc/hello"]' in spec and "#runtime_libs = " in spec
    )
    assert "Hello from chrootforge! build=dynamic" in world.run("scaffolded", "hello").stdout
    assert "usr/bin/hello" in world.top_layer("scaffolded")


def test_every_account_has_its_shell(world):
    """/sbin/nologin exists (baselayout) and refuses, for hello (acct-user) and nobody."""
    script = (
        'for s in $(cut -d: -f7 /etc/passwd | sort -u); do [ -x "$s" ] || echo "missing $s"; done; echo done'
    )
    assert world.run("scaffolded", "sh", "-c", script).stdout.strip() == "done"
    passwd = world.run("scaffolded", "cat", "/etc/passwd").stdout
    assert "hello:x:701:701:hello:/dev/null:/sbin/nologin" in passwd and "nobody:" in passwd
    proc = world.run("scaffolded", "/sbin/nologin", user="hello", check=False)
    assert proc.returncode == 1 and "This account is currently not available." in proc.stderr


# -- runtime_libs -------------------------------------------------------------------------------------
def test_pthread_cancel_needs_gcc_runtime(world):
    proc = world.run("cancel", "threadcancel", check=False)
    assert proc.returncode != 0 and CANCEL_ERROR in proc.stdout + proc.stderr
    assert world.run("gccrt", "threadcancel").stdout.strip() == "threadcancel: thread cancelled"


def test_runtime_libs_are_files_of_the_builders_package(world):
    layer = world.top_layer("gccrt")
    libs = {
        name: layer[name]
        for name in ("lib/x86_64-linux-gnu/libgcc_s.so.1", "lib/x86_64-linux-gnu/libstdc++.so.6")
    }
    assert all(libs.values()), "copied as regular files, beside the image's libc.so.6"
    doc = world.sbom("gccrt")
    gcc = next(p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-BuilderPackage-"))
    assert f"{gcc['name']}-{gcc['versionInfo']}" == GCC_BIN and gcc["filesAnalyzed"] is True
    assert (
        gcc["licenseDeclared"] == "GPL-3.0-or-later AND LicenseRef-Gentoo-gcc-runtime-library-exception-3.1"
    )
    files = {f["fileName"]: f for f in doc["files"] if f["SPDXID"] in gcc["hasFiles"]}
    for name, data in libs.items():
        sums = {c["algorithm"]: c["checksumValue"] for c in files[f"./{name}"]["checksums"]}
        assert sums == {"SHA1": hashlib.sha1(data).hexdigest(), "SHA256": hashlib.sha256(data).hexdigest()}
    assert GCC_BIN not in _records(doc)  # a builder package, not one of the image
    # the child inherits the record, not a second copy
    child = world.sbom("noacct")
    assert {f["fileName"] for f in child["files"]} == set(files)
    assert not any(n.endswith("libgcc_s.so.1") for n in world.top_layer("noacct"))
    assert [f["package"] for f in world.state("noacct")["builder_files"]] == [GCC_BIN, GCC_BIN]
    assert (
        "runtime_libs: /lib/x86_64-linux-gnu/libgcc_s.so.1 <- /usr/lib/gcc/x86_64-pc-linux-gnu/12/"
        in world.log("gccrt", "runtime_libs")
    )


# -- [strip] keep -------------------------------------------------------------------------------------
def test_strip_keep(world):
    layer = world.top_layer("gccrt")
    docs = sorted(n for n in layer if n.startswith("usr/share/doc/") and layer[n] is not None)
    assert len(docs) == 1 and docs[0].startswith("usr/share/doc/threadcancel-1.0/README")
    assert not any(n.startswith("usr/share/doc") for n in world.top_layer("cancel"))  # no keep: stripped
    assert (
        "WARNING: image gccrt: [strip] keep pattern '/usr/share/zoneinfo/UTC' matches nothing"
        in world.proc.stderr
    )


# -- provided / unprovided ----------------------------------------------------------------------------
def test_provided_are_not_installed_and_pass_down(world):
    assert world.state("noacct")["provided"] == ["acct-group/hello-0", "acct-user/hello-0"]
    assert not any(p.startswith("acct-") for p in _records(world.sbom("noacct")))
    assert "hello:" not in world.run("noacct", "cat", "/etc/passwd").stdout
    assert world.run("noacct", "hello").stdout.startswith("Hello from chrootforge!")
    # the child unprovides both: emerge installs them, in its layer
    assert {"acct-user/hello-0", "acct-group/hello-0"} <= _records(world.sbom("withacct"))
    assert world.state("withacct")["provided"] == []
    assert "hello:x:701:" in world.run("withacct", "cat", "/etc/passwd").stdout
    assert re.search(r">>> Emerging (binary )?\(2 of 2\) acct-user/hello-0", world.log("withacct", "emerge"))


def test_plan_of_built_parents(world):
    proc = world.cf("build", "--plan", "--layout", str(world.layout), str(world.ns / "withacct"))
    assert proc.returncode == 0, proc.stderr
    plan = proc.stdout[proc.stdout.index("== image withacct") :]
    assert "# unprovided: acct-group/hello-0 (provided by the parents)" in plan
    assert "# unprovided: acct-user/hello-0 (provided by the parents)" in plan
    assert "       app-misc/hello-1.0\n" in plan
    noacct = proc.stdout[proc.stdout.index("== image noacct") : proc.stdout.index("== image withacct")]
    assert "acct-group/hello-<best visible version, resolved in the builder>" in noacct
    assert "uninstall: ROOT=/emerge-root emerge --unmerge --color=n --nospinner sys-devel/gcc-bin" in noacct


# -- uninstall ----------------------------------------------------------------------------------------
def test_uninstall_removes_files_and_records(world):
    assert f"{GCC_BIN}::cfworld for /emerge-root/" in world.log("noacct", "emerge")
    assert "Unmerging (1 of 1) sys-devel/gcc-bin" in world.log("noacct", "uninstall")
    assert not any(n.startswith("usr/lib/gcc") for n in world.top_layer("noacct"))
    assert GCC_BIN not in _records(world.sbom("noacct")) and "app-misc/hello-1.0" in _records(
        world.sbom("noacct")
    )
    assert GCC_BIN not in world.state("noacct")["own"]


def test_force_uninstall(world):
    assert (
        "WARNING: image cancel: uninstall (force_uninstall): app-misc/hello-1.0 needs acct-user/hello"
        in world.proc.stderr
    )
    assert "acct-user/hello-0" not in _records(world.sbom("cancel"))
    assert "app-misc/hello-1.0" in _records(world.sbom("cancel"))


def test_uninstall_of_a_needed_package_fails(world):
    (world.ns / "needs").mkdir()
    (world.ns / "needs" / "image.toml").write_text(
        'parent = "glibc"\npackages = ["app-misc/hello"]\nuninstall = ["acct-user/hello"]\n'
    )
    own(world.identity, world.ns / "needs")
    before = (world.layout / "index.json").read_bytes()
    proc = world.cf("build", "--layout", str(world.layout), str(world.ns / "needs"))
    assert proc.returncode == 1
    assert "image needs: uninstall: app-misc/hello-1.0 needs acct-user/hello" in proc.stderr
    assert "force_uninstall = true" in proc.stderr and "Traceback" not in proc.stderr
    assert (world.layout / "index.json").read_bytes() == before


# -- SBOM licenses --------------------------------------------------------------------------------------
def test_sbom_licenses(world):
    declared = {p["name"]: p["licenseDeclared"] for p in world.sbom("withacct")["packages"]}
    assert declared["app-misc/hello"] == "MIT"
    assert declared["sys-apps/busybox-bin"] == "GPL-2.0-only"
    assert declared["sys-libs/glibc-bin"] == "LGPL-2.1-or-later AND GPL-2.0-only"
    assert declared["acct-user/hello"] == "NOASSERTION"  # the ebuild names no LICENSE
