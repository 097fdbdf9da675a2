"""The shipped examples load and plan without a stage: examples/gentoo (real Gentoo), examples/world
and examples/source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chrootforge.gentoo import state as st
from chrootforge.gentoo.mountview import describe_mounts
from chrootforge.gentoo.plan import plan_image
from chrootforge.gentoo.records import InstalledPackage, dump
from chrootforge.spec.graph import build_order, load_project

REPO = Path(__file__).resolve().parents[2]
GENTOO = REPO / "examples" / "gentoo"
WORLD = REPO / "examples" / "world"


def test_gentoo_example_graph_and_sources():
    project, requested = load_project(GENTOO)
    assert build_order(project.images, requested) == ["busybox", "glibc", "s6", "nginx"]
    ns = project.namespace
    assert ns.stage3.mirrors == ("https://distfiles.gentoo.org",) and ns.stage3.variant == "openrc"
    assert ns.tree.snapshot == "latest" and ns.network == "host" and ns.compression == "zstd"


def test_gentoo_example_plan():
    project, _ = load_project(GENTOO)
    busybox = plan_image(project, "busybox", None)
    assert busybox.emerge_argv[-2:] == ("sys-apps/baselayout", "sys-apps/busybox")
    assert busybox.emerge_argv[0] == "emerge" and "--usepkg" in busybox.emerge_argv
    assert "--binpkg-respect-use=y" in busybox.emerge_argv and "--buildpkg" in busybox.emerge_argv
    assert busybox.emerge_env["ROOT"] == "/emerge-root"
    assert "sys-apps/busybox static -pam -selinux" in busybox.portage.files["package.use/zz-chrootforge"]
    assert busybox.config["Cmd"] == ["/bin/sh"]
    # nginx: with its parent's records, package.provided lists them; its services make s6 PID 1.
    parent = [
        InstalledPackage("sys-apps", "s6", "2.12.0.3", ("execline",), ("execline",)),
        InstalledPackage("sys-apps", "busybox", "1.36.1", ("static",), ("static", "pam")),
    ]
    nginx = plan_image(project, "nginx", parent)
    assert nginx.provided.lines == ("sys-apps/busybox-1.36.1", "sys-apps/s6-2.12.0.3")
    files = nginx.portage.files
    assert "www-servers/nginx ~amd64" in files["package.accept_keywords/zz-chrootforge"]
    assert ">=www-servers/nginx-1.99" in files["package.mask/zz-chrootforge"]
    assert 'CFLAGS="-O2 -pipe -fstack-protector-strong"' in files["env/cf-www-servers_nginx.conf"]
    assert nginx.config["Cmd"] == ["s6-svscan", "-t0", "/service"]
    assert nginx.config["ExposedPorts"] == {"443/tcp": {}, "80/tcp": {}}
    assert nginx.config["StopSignal"] == "SIGTERM"
    run = next(e for e in nginx.services if e.path == "/etc/service/nginx/run")
    assert "exec nginx -g 'daemon off;'" in run.content
    assert nginx.check_binaries is not None and not nginx.hooks["finish_rootfs"]  # the default check
    mounts = describe_mounts(project.namespace, nginx)
    assert any(m.startswith("/var/db/repos/gentoo") and m.endswith("(read-only)") for m in mounts)
    assert any(m.startswith("/var/tmp/portage") and "tmpfs" in m for m in mounts)
    assert any(m.startswith("/var/cache/binpkgs") for m in mounts)
    assert any(m.startswith("/etc/resolv.conf") for m in mounts)  # network = host


def test_plan_cli_uses_built_parent_records(tmp_path):
    """`build --plan` prints the graph and, once a parent is built, package.provided from its record."""
    layout = tmp_path / "layout"
    st.save_state(
        layout,
        st.ImageState(
            image="busybox",
            key="k",
            manifest_digest="sha256:00",
            tags=["latest"],
            records=dump([InstalledPackage("sys-apps", "busybox", "1.36.1")]),
        ),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chrootforge",
            "build",
            "--plan",
            "--layout",
            str(layout),
            str(GENTOO / "glibc"),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "order: busybox -> glibc" in out
    glibc = out[out.index("== image glibc") :]
    assert "profile/package.provided:\n       sys-apps/busybox-1.36.1" in glibc
    assert "emerge: ROOT=/emerge-root" in glibc and "sys-libs/glibc" in glibc
    assert "sys-libs/glibc -multilib -nscd" in glibc


def test_world_example_plans(monkeypatch):
    for var in ("CHROOTFORGE_WORLD_STAGE", "CHROOTFORGE_WORLD_KEYRING", "CHROOTFORGE_WORLD_DISTFILES"):
        monkeypatch.setenv(var, "/nonexistent")
    project, requested = load_project(WORLD)
    assert build_order(project.images, requested) == ["busybox", "glibc", "s6", "greeter", "hello"]
    hello = plan_image(project, "hello", [])
    assert hello.config["Cmd"] == ["s6-svscan", "-t0", "/service"]
    assert "GREETING_SOURCE=chrootforge" in hello.config["Env"]
    assert hello.portage.profile == "/var/db/repos/gentoo/profiles/default/linux/amd64/23.0"
    assert project.namespace.tree.name == "cfworld"


def test_source_example_plans(monkeypatch):
    """examples/source: a static busybox from scratch, glibc on it, and from-source packages above."""
    for var in ("CHROOTFORGE_WORLD_STAGE", "CHROOTFORGE_WORLD_KEYRING", "CHROOTFORGE_WORLD_DISTFILES"):
        monkeypatch.setenv(var, "/nonexistent")
    project, requested = load_project(REPO / "examples" / "source")
    assert build_order(project.images, requested) == [
        "busybox",
        "glibc",
        "hello",
        "nginx",
        "skalibs",
        "skahello",
    ]
    busybox = plan_image(project, "busybox", None)
    assert busybox.parent is None
    assert "sys-apps/busybox static make-symlinks" in busybox.portage.files["package.use/zz-chrootforge"]
    nginx = plan_image(project, "nginx", [])
    assert nginx.builder_deps_argv[-1] == "www-servers/nginx" and "--onlydeps" in nginx.builder_deps_argv
    assert nginx.config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert project.namespace.prefix == "localhost/chrootforge/source"
    assert nginx.portage.profile == "/var/db/repos/gentoo/profiles/default/linux/amd64/23.0"


def test_wide_bench_namespace_plans(monkeypatch):
    """bench/bench_build.py's --jobs namespace: six independent leaves on glibc, every package from
    the test world's repository, so --jobs 2 has siblings to build side by side."""
    for var in ("CHROOTFORGE_WORLD_STAGE", "CHROOTFORGE_WORLD_KEYRING", "CHROOTFORGE_WORLD_DISTFILES"):
        monkeypatch.setenv(var, "/nonexistent")
    project, requested = load_project(REPO / "bench" / "namespaces" / "wide")
    order = build_order(project.images, requested)
    assert order[:2] == ["busybox", "glibc"] and len(order) == 8
    leaves = order[2:]
    assert all(project.images[name].parent == "glibc" for name in leaves)
    assert project.namespace.tree.name == "cfworld"
    repo = REPO / "examples" / "repo"
    for name in leaves:
        argv = plan_image(project, name, []).emerge_argv
        assert argv[-1] == project.images[name].packages[0] and (repo / argv[-1]).is_dir()
