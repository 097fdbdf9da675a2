"""`build --single-id` end to end: the test world, built by a user without /etc/subuid ranges (and by
root in single-id mode), gives the same images as a build with the full id map, and real consumers
see the owners the packages meant.

The namespace is examples/world plus `queue` (hello + app-misc/hello-queue, whose files belong to
hello's user and group through fowners in src_install and pkg_preinst, `insopts -o`, a chown in
pkg_postinst, with setgid bits) and `queuechild` (queue + one more package: the parent's owners must
survive unpack and the child's diff), and `linked`, whose hook gives a symlink to 701: what
single-id mode cannot record, which the build must say and which must be the only difference.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.oci import layers_of, merged
from tests.helpers.pipeline import Podman
from tests.helpers.world_build import WorldBuild, namespace

pytestmark = pytest.mark.slow
IMAGES = ["busybox", "glibc", "s6", "greeter", "hello", "queue", "queuechild"]
PREFIX = "localhost/chrootforge"


# queue: hello + app-misc/hello-queue; queuechild: queue + one more package; linked: a symlink's owner
FILES = {
    "queue/image.toml": 'parent = "hello"\npackages = ["app-misc/hello-queue"]\n\n[config]\nuser = "hello"\n'
    'cmd = ["/usr/bin/hello-queue", "hi"]\n',
    "queuechild/image.toml": 'parent = "queue"\npackages = ["app-misc/threadcancel"]\n',
    "linked/image.toml": 'parent = "busybox"\n\n[hooks]\npost_emerge = ["link.sh"]\n',
    "linked/link.sh": 'set -e\nln -s sh "$CF_ROOT/bin/owned-link"\nchown -h 701:701 "$CF_ROOT/bin/owned-link"\n'
    'touch "$CF_ROOT/owned-file"\nchown 701:701 "$CF_ROOT/owned-file"\n',
}


def _build(identity, world_inputs, world_repo, *flags: str) -> WorldBuild:
    w = WorldBuild.prepare(
        identity, "single-e2e.", lambda tmp: namespace(tmp, world_repo, files=FILES), world_inputs
    )
    w.build(*flags)
    return w


@pytest.fixture(scope="module")
def full(world_inputs, world_repo):
    """The reference: the same namespace built with the full id map (a user with a subuid range)."""
    world = _build(get_identity("user"), world_inputs, world_repo)
    yield world
    world.remove()


@pytest.fixture(scope="module", params=["single", "root"])
def single(request, world_inputs, world_repo):
    world = _build(get_identity(request.param), world_inputs, world_repo, "--single-id")
    yield world
    world.remove()


def test_single_id_build_says_what_it_changes(single):
    report = json.loads(single.proc.stdout)
    assert sorted(r["image"] for r in report["images"]) == sorted([*IMAGES, "linked"])
    assert all(r["status"] == "built" for r in report["images"])
    err = single.proc.stderr
    assert "single-id mode (no /etc/subuid range used)" in err
    assert "portage runs every phase as root (FEATURES=-userpriv -usersandbox, PORTAGE_USERNAME=root)" in err
    assert "recorded by a preloaded shim" in err and "not recorded: the owners of symlinks" in err
    assert "files of stage3-" in err and "are recorded in the user.rootlesscontainers xattr" in err
    assert err.count("could not record") == 1  # `linked` only: nothing of the test world is lost


def test_same_images_as_a_full_id_map(single, full):
    """The measure of faithfulness: every image's manifest digest equals the full-map build's."""
    ours, theirs = single.digests(IMAGES), full.digests(IMAGES)
    for image in IMAGES:
        same = "same" if ours[image] == theirs[image] else "DIFFERENT"
        print(
            f"[single-id digests] {single.identity.name} {image}: {ours[image][:19]} vs {theirs[image][:19]} {same}"
        )
    assert ours == theirs


def test_a_symlinks_owner_is_the_one_loss_and_it_is_reported(single, full):
    ref = f"{PREFIX}/linked:latest"
    assert single.index()[ref] != full.index()[ref]
    ours, theirs = layers_of(single.layout, ref)[-1], layers_of(full.layout, ref)[-1]
    assert theirs["bin/owned-link"][:2] == (701, 701) and ours["bin/owned-link"][:2] == (0, 0)
    assert ours["owned-file"][:2] == theirs["owned-file"][:2] == (701, 701)
    assert {p for p in ours if ours[p] != theirs[p]} == {"bin/owned-link"}
    err = single.proc.stderr
    assert "linked: single-id mode could not record 1 owners; they are 0:0 in the image" in err
    assert "/emerge-root/bin/owned-link (701:701, a symlink)" in err


def test_the_packages_owners_are_in_the_layers(single):
    layers = layers_of(single.layout, f"{PREFIX}/queue:latest")
    top = {path: entry[:3] for path, entry in layers[-1].items()}
    assert top["etc/hello/queue.conf"] == (0, 701, 0o640)  # insopts -o 0 -g 701 (doins)
    assert top["usr/bin/hello-queue"] == (0, 701, 0o2755)  # fowners then fperms in src_install
    assert top["var/spool/hello"] == (701, 701, 0o3770)  # fowners hello:hello in pkg_preinst
    assert top["var/lib/hello-queue"] == (701, 701, 0o755)  # chown in pkg_postinst, in ROOT
    assert top["var/lib/hello-queue/state"] == (701, 701, 0o644)
    child = layers_of(single.layout, f"{PREFIX}/queuechild:latest")
    assert child[:-1] == layers  # the parent's layers, shared
    assert not any(path.startswith(("var/spool", "var/lib/hello-queue", "etc/hello")) for path in child[-1])


def test_consumers_see_the_owners_and_the_image_runs(single, tmp_path):
    """As root: umoci unpacks real owners and podman runs the image as `hello`. As a user without
    sub-ids: `umoci unpack --rootless` keeps them as records, and `run --single-id`, `shell
    --single-id` and `commit --single-id` take that tree as the image's."""
    who = single.identity
    ref = f"{single.layout}:{PREFIX}/queue:latest"
    if who.is_root:
        dest = single.tmp / "umoci"
        proc = who.run(["umoci", "unpack", "--image", ref, str(dest)])
        assert proc.returncode == 0, proc.stderr
        spool = os.lstat(dest / "rootfs/var/spool/hello")
        assert (spool.st_uid, spool.st_gid, spool.st_mode & 0o7777) == (701, 701, 0o3770)
        client = os.lstat(dest / "rootfs/usr/bin/hello-queue")
        assert (client.st_uid, client.st_gid, client.st_mode & 0o7777) == (0, 701, 0o2755)
        podman = Podman(who, single.tmp / "podman")
        try:
            image = podman("pull", "-q", f"oci:{ref}").stdout.strip().splitlines()[-1]
            out = podman(
                "run",
                "--rm",
                *podman.run_args(),
                image,
                "sh",
                "-c",
                "id -u; hello-queue hi && ls -ln /var/spool/hello",
            ).stdout
            assert out.splitlines()[0] == "701"
            assert any(
                line.startswith("-rw-rw----") and " 701 " in line and "msg." in line
                for line in out.splitlines()
            )
            podman("run", "--rm", *podman.run_args(), image)  # its own command: exit 0
        finally:
            podman.cleanup()
        return
    dest = single.tmp / "umoci"
    proc = who.run(["umoci", "unpack", "--rootless", "--image", ref, str(dest)])
    assert proc.returncode == 0, proc.stderr
    rootfs = dest / "rootfs"
    run = single.cf(
        "run",
        "--single-id",
        str(rootfs),
        "--",
        "/bin/sh",
        "-c",
        "id -u; /usr/bin/hello-queue hi; ls /var/spool/hello",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "0" and "msg." in run.stdout
    shell = single.cf(
        "shell",
        "--single-id",
        str(rootfs),
        input="test -g /usr/bin/hello-queue && echo setgid-kept; exit 0\n",
    )
    assert shell.returncode == 0 and "setgid-kept" in shell.stdout, shell.stderr
    who.run(["sh", "-c", f"rm -f {rootfs}/var/spool/hello/msg.*"])
    layout = single.tmp / "recommitted"
    proc = single.cf("commit", "--single-id", str(rootfs), "--layout", str(layout), "--tag", "q", "--quiet")
    assert proc.returncode == 0, proc.stderr
    image = merged(layers_of(single.layout, f"{PREFIX}/queue:latest"))
    again = merged(layers_of(layout, "q"))
    assert {p: e[:4] for p, e in again.items()} == {p: e[:4] for p, e in image.items() if ".wh." not in p}


def test_rebuild_from_binary_packages(single):
    """--force-all into a new layout installs every package from the binpkgs the first build made:
    extracting them records the owners too, and the images are the same."""
    if single.identity.is_root:
        pytest.skip("the binary package path is the same for root; once is enough")
    layout = single.tmp / "again"
    proc = single.cf(
        "build", "--json", "--single-id", "--force-all", "--layout", str(layout), str(single.tmp / "world")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (layout.parent / "again.build/logs/queue/emerge.log").read_text()
    assert "[binary" in log and "app-misc/hello-queue" in log
    assert single.digests(IMAGES, layout) == single.digests(IMAGES)
