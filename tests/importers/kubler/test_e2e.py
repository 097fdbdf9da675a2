"""End to end, as root and as the unprivileged user: the kubler fixture namespace kworld (the test
world's packages in kubler's format: busybox -> glibc -> s6 -> hello, with a builder) is imported
with `chrootforge import kubler`, pointed at the test world's stage3 and tree (a kubler namespace
names Gentoo's), built, and its images run under podman: the keys, the kept hooks (with the
kubler-compat library), the builder chain and the template's steps all show in the images."""

from __future__ import annotations

import json
import os
import shutil
import time
import tomllib
from pathlib import Path

import pytest

from chrootforge.importers.kubler import tomlout
from chrootforge.spec.model import Namespace
from tests.helpers.identity import get_identity
from tests.helpers.world_build import WorldBuild

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PREFIX = "localhost/kworld"
IMAGES = ["busybox", "glibc", "s6", "hello"]


def podman_config(built: WorldBuild, image: str) -> dict:
    """The image's config as podman sees it."""
    out = built.podman("inspect", f"localhost/test/{image}:latest", "--format", "{{json .Config}}").stdout
    return json.loads(out)


def sh(built: WorldBuild, image: str, script: str) -> str:
    return built.run(image, "-c", script, entrypoint="/bin/sh").stdout


def _point_at_the_world(ns: Path, repo: Path) -> None:
    """The test world's stage3 and tree instead of the Gentoo ones the kubler builder names; every
    other imported setting stays."""
    path = ns / "chrootforge.toml"
    data = tomllib.loads(path.read_text())
    data["stage3"] = {"path": "${CHROOTFORGE_WORLD_STAGE}", "keyring": "${CHROOTFORGE_WORLD_KEYRING}"}
    data["tree"] = {"path": str(repo), "profile": "default/linux/amd64"}
    data["build"] = {**data["build"], "distfiles": "${CHROOTFORGE_WORLD_DISTFILES}"}
    path.write_text(
        tomlout.render(data, ["the imported kworld, on the test world's stage3 and tree"], Namespace)
    )


@pytest.fixture(scope="module", params=["root", "user"])
def built(request, world_inputs, world_repo) -> WorldBuild:
    identity = get_identity(request.param)

    def kworld(tmp: Path) -> Path:
        shutil.copytree(FIXTURES / "kworld", tmp / "kworld")
        return tmp / "kworld"

    w = WorldBuild.prepare(identity, "kworld.", kworld, world_inputs, epoch="1700000000", prefix=PREFIX)
    w.ns = w.tmp / "ns"  # what the import writes, which is built
    proc = w.cf("import", "kubler", str(w.tmp / "kworld"), str(w.ns))
    assert proc.returncode == 0, proc.stderr
    _point_at_the_world(w.ns, world_repo)
    w.build()
    w.to_podman(IMAGES)
    yield w
    w.remove()


def test_every_image_built_with_its_kubler_hooks(built):
    assert [(r["image"], r["status"]) for r in built.report["images"]] == [(i, "built") for i in IMAGES]
    steps = {r["image"]: r["steps"] for r in built.report["images"]}
    assert "uninstall" in steps["hello"]
    for image in IMAGES:
        log = built.log(image, "configure_builder")
        assert (
            log.index(">>> hook configure_builder: kubler-compat")
            < log.index(">>> hook configure_builder: ../kubler-builders/bob/kubler.sh")
            < log.index(">>> hook configure_builder: kubler.sh")
        )
        # the builder's static update_use is a key of every image: the builder's hook skips it
        assert "kubler-compat: build.sh:5 update_use: a spec key of the image now" in log
    assert "kubler-compat: build.sh:13 uninstall_package: a spec key of the image now" in built.log(
        "hello", "post_emerge"
    )


def test_the_builder_chain_and_a_dynamic_call(built):
    """bob's configure_bob runs again in hello's builder (its `echo +static` is a kept command)
    and hello's configure_rootfs_build reads that file (a dynamic update_use, kept in the hook):
    it comes after the key bob's static `update_use -static` became, as in kubler."""
    assert built.run("hello").stdout.strip() == "hello 1.0 (static)"
    spec = tomllib.loads((built.ns / "hello" / "image.toml").read_text())
    assert spec["package"]["app-misc/hello"] == {"use": ["-static"]}  # the key, inherited from bob


def test_the_template_became_the_config(built):
    cfg = podman_config(built, "hello")
    assert cfg["User"] == "hello" and cfg["WorkingDir"] == "/home/hello"
    assert cfg["Entrypoint"] == ["hello"] and cfg["Cmd"] == ["--version"]
    assert {"GREETING_SOURCE=kubler", "HELLO_HOME=/home/hello", "LANG=C.UTF-8"} <= set(cfg["Env"])
    assert set(cfg["ExposedPorts"]) == {"8081/tcp", "8080/tcp", "9000/udp", "9001/udp"}  # s6's too
    assert set(cfg["Volumes"]) == {"/home/hello/data", "/var/lib/kworld"}
    assert cfg["Labels"]["maintainer"] == "Kworld Maintainer <kworld@example.invalid>"
    assert cfg["Labels"]["org.example.kworld"] == "hello"
    assert cfg["Labels"]["kubler.healthcheck"] == "--interval=30s --timeout=3s CMD hello || exit 1"
    assert podman_config(built, "s6")["Cmd"] == ["/usr/bin/s6-svscan", "-t0", "/service"]
    assert podman_config(built, "s6")["StopSignal"] == "SIGTERM"
    assert podman_config(built, "busybox")["Cmd"] == ["/bin/sh"]


def test_the_templates_steps_ran_in_the_images(built):
    """RUN (with the ENV before it, as the USER before it), COPY and WORKDIR."""
    assert sh(built, "glibc", "cat /etc/kworld-glibc").strip() == "glibc C.UTF-8"
    out = sh(built, "hello", "id -u; pwd; cat /tmp/kworld-run-uid /etc/kworld/greeting.txt").split("\n")
    assert out[:4] == ["701", "/home/hello", "701", "copied by COPY"]
    assert sh(built, "s6", "readlink /service/heartbeat").strip() == "/etc/service/heartbeat"


def test_the_kept_hooks_ran(built):
    # busybox's finish_rootfs_build: sed-or-die found root's line, mkdir made an empty log dir
    assert (
        sh(built, "busybox", "test -d /var/log/kworld && head -1 /etc/passwd").strip()
        == "root:x:0:0:root:/root:/bin/sh"
    )
    # s6's copies from /config (the image folder the hook carries), mode kept
    assert sh(built, "s6", "test -x /etc/service/heartbeat/run && head -2 /etc/service/heartbeat/run") == (
        '#!/bin/sh\nwhile :; do echo "heartbeat ${BOB_GREETING:-from s6}"; sleep 1; done\n'
    )
    # hello's: a BOB_ variable of kubler.conf reached the hook
    assert sh(built, "hello", "cat /etc/kworld-greeting").strip() == "greetings from kubler.conf"


def test_uninstall_package_became_the_uninstall_key(built):
    packages = {f"{r['category']}/{r['name']}" for r in built.state("hello")["records"]}
    assert "acct-user/hello" in packages and "acct-group/hello" not in packages
    assert sh(built, "hello", "grep ^hello: /etc/group").strip() == "hello:x:701:"


def test_s6_supervises_the_copied_service(built):
    name = f"kworld-s6-{os.getpid()}"
    built.podman("run", "-d", "--name", name, *built.podman.run_args(), "localhost/test/s6:latest")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "heartbeat from s6" in built.podman("logs", name).stdout:
                break
            time.sleep(0.5)
        assert "heartbeat from s6" in built.podman("logs", name).stdout
    finally:
        built.podman("rm", "-f", "-t", "2", name, check=False)
