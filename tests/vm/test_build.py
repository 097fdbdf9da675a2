"""`chrootforge build --vm` for real, as the unprivileged user (one guest build, shared by the tests):

- on the host, under a seccomp filter that refuses user namespaces, `--vm auto` falls back to the
  guest, announced in one line;
- the busybox image it builds has the manifest digest of a host build of the same inputs (the guest
  has no network device: the build needed nothing from the network);
- the image passes skopeo inspect and podman run; a second `--vm on` build finds it up to date.

Under TCG a guest build takes minutes, so this is the only one; the host build beside it is seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.identity import REPO, get_identity
from tests.helpers.pipeline import Podman
from tests.helpers.rootfs import remove_as
from tests.helpers.vm import vm_env
from tests.pipeline.test_build_e2e import PREFIX, make_namespace

pytestmark = pytest.mark.slow
SECCOMP = REPO / "tests" / "helpers" / "seccomp.py"
REF = f"{PREFIX}/busybox:latest"


@dataclass
class Builds:
    identity: object
    tmp: Path
    ns: Path
    env_vm: dict
    host: subprocess.CompletedProcess
    vm: subprocess.CompletedProcess

    def digest(self, layout: str) -> str:
        index = json.loads((self.tmp / layout / "index.json").read_text())
        return {
            m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"]
            for m in index["manifests"]
        }[REF]


@pytest.fixture(scope="module")
def builds(world_inputs, world_repo, vm_artifacts):
    user = get_identity("user")
    tmp = user.mkdtemp("vmbuild.")
    ns = make_namespace(tmp, world_repo)
    if os.getuid() == 0:
        for path in [ns, *ns.rglob("*")]:
            os.chown(path, user.uid, user.gid)
    base = {**world_inputs.env(), "SOURCE_DATE_EPOCH": "1700000000"}
    env_host = {**base, "XDG_CACHE_HOME": str(tmp / "cache-host")}
    env_vm = {**base, **vm_env(), "XDG_CACHE_HOME": str(tmp / "cache-vm")}  # no binpkgs from the host build
    host = user.cf(
        "build",
        "--json",
        "--vm",
        "off",
        "--layout",
        str(tmp / "host"),
        str(ns / "busybox"),
        env=env_host,
        timeout=1200,
    )
    assert host.returncode == 0, host.stderr[-4000:]
    vm = user.run(
        [
            *user.python,
            str(SECCOMP),
            *user.cf_argv(
                "build", "--json", "--vm", "auto", "--layout", str(tmp / "vm"), str(ns / "busybox")
            ),
        ],
        env=env_vm,
        timeout=3600,
    )
    yield Builds(user, tmp, ns, env_vm, host, vm)
    remove_as(user, tmp)


def test_vm_auto_falls_back_to_the_guest_when_userns_is_blocked(builds):
    assert builds.vm.returncode == 0, builds.vm.stderr[-6000:]
    notices = [line for line in builds.vm.stderr.splitlines() if "--vm auto" in line]
    assert notices == [
        (
            "chrootforge: notice: user namespaces are blocked here (a seccomp filter refuses unshare "
            "(this looks like a container that blocks user namespaces: Operation not permitted)): "
            "building in a QEMU guest (--vm auto)"
        )
    ]
    report = json.loads(builds.vm.stdout)
    assert report["layout"] == str(builds.tmp / "vm")
    assert [(r["image"], r["status"]) for r in report["images"]] == [("busybox", "built")]
    assert (builds.tmp / "vm.build" / "state" / "busybox.json").is_file()
    assert (builds.tmp / "vm.build" / "sbom" / "busybox.spdx.json").is_file()


def test_air_gapped_build_has_the_host_builds_digest(builds):
    assert builds.vm.returncode == 0, builds.vm.stderr[-6000:]
    assert builds.digest("vm") == builds.digest("host")


def test_consumers_accept_the_vm_built_image(builds):
    assert builds.vm.returncode == 0, builds.vm.stderr[-6000:]
    user = builds.identity
    layout = builds.tmp / "vm"
    proc = user.run(["skopeo", "inspect", f"oci:{layout}:{REF}"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Digest"] == builds.digest("vm")
    assert user.cf("verify", str(layout)).returncode == 0
    podman = Podman(user, builds.tmp / "podman")
    try:
        image = podman("pull", "-q", f"oci:{layout}:{REF}").stdout.strip().splitlines()[-1]
        out = podman(
            "run", "--rm", *podman.run_args(), image, "/bin/busybox", "echo", "built in a guest"
        ).stdout
        assert out.strip() == "built in a guest"
    finally:
        podman.cleanup()


def test_second_vm_build_is_up_to_date(builds):
    """The host's state and layout reach the guest: nothing is rebuilt, the layout is unchanged."""
    assert builds.vm.returncode == 0, builds.vm.stderr[-6000:]
    before = (builds.tmp / "vm" / "index.json").read_bytes()
    proc = builds.identity.cf(
        "build",
        "--json",
        "--vm",
        "on",
        "--layout",
        str(builds.tmp / "vm"),
        str(builds.ns / "busybox"),
        env=builds.env_vm,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert [(r["image"], r["status"]) for r in json.loads(proc.stdout)["images"]] == [
        ("busybox", "up-to-date")
    ]
    assert (builds.tmp / "vm" / "index.json").read_bytes() == before
