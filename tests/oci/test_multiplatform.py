"""Multi-platform tags in a layout: an OCI image index of one image per platform, as a
multi-platform build writes it (build.platformindex.assemble), checked by the real consumers (skopeo, umoci,
podman) and by chrootforge's own commands, as root and as the unprivileged user."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import pytest

from chrootforge.errors import CfError
from chrootforge.oci import imageindex
from chrootforge.oci import mediatypes as mt
from chrootforge.platforms import parse_platform
from tests.helpers.oci import Podman
from tests.helpers.rootfs import remove_as

AMD64, ARM64 = "linux/amd64", "linux/arm64"


def blob(layout, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def tagged(layout) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return {
        m["annotations"][mt.REF_NAME]: m
        for m in index["manifests"]
        if mt.REF_NAME in (m.get("annotations") or {})
    }


def test_the_tag_is_an_index_of_each_platform(multi_layout):
    m = multi_layout
    for tag in ("localhost/t/multi:1", "localhost/t/multi:latest"):
        desc = tagged(m.layout)[tag]
        assert (desc["mediaType"], desc["digest"]) == (mt.INDEX, m.index_digest)
    index = json.loads(blob(m.layout, m.index_digest))
    assert index["mediaType"] == mt.INDEX and index["schemaVersion"] == 2
    assert [(e["platform"], e["digest"], e["mediaType"]) for e in index["manifests"]] == [
        ({"architecture": "amd64", "os": "linux"}, m.digests[AMD64], mt.MANIFEST),
        ({"architecture": "arm64", "os": "linux"}, m.digests[ARM64], mt.MANIFEST),
    ]
    for platform, digest in m.digests.items():
        config = json.loads(blob(m.layout, json.loads(blob(m.layout, digest))["config"]["digest"]))
        assert f"{config['os']}/{config['architecture']}" == platform


def test_each_platforms_sbom_travels(multi_layout):
    from chrootforge.oci.layout import gc, read_index
    from chrootforge.oci.referrer import referrers

    m = multi_layout
    for platform, digest in m.digests.items():
        found = referrers(read_index(m.layout), digest)
        assert [r["digest"] for r in found] == [m.sboms[platform]]
    assert gc(m.layout) == []  # everything is reachable: the index's images and their referrers


def test_assembling_again_gives_the_same_index(multi_layout, tmp_path):
    from chrootforge.build.platformindex import assemble

    m = multi_layout
    images = [
        (parse_platform(p), m.layout.parent / f"sub-{parse_platform(p).slug}", d)
        for p, d in m.digests.items()
    ]
    assert assemble(tmp_path / "again", ["a:1"], images)[0] == m.index_digest
    swapped = assemble(tmp_path / "swapped", ["a:1"], images[::-1])[0]
    assert swapped != m.index_digest  # the order is the namespace's platform order: it counts


def test_verify_inspect_and_skopeo(identity, multi_layout):
    m = multi_layout
    proc = identity.cf("verify", str(m.layout))
    assert proc.returncode == 0, proc.stderr
    proc = identity.cf("inspect", f"{m.layout}:{m.tag}", "--json")
    assert proc.returncode == 0, proc.stderr
    image = json.loads(proc.stdout)["images"][0]
    assert image["digest"] == m.index_digest and image["mediaType"] == mt.INDEX
    assert [(p["platform"], p["digest"]) for p in image["platforms"]] == list(m.digests.items())
    assert [(e["platform"], e["digest"]) for e in image["manifests"]] == list(m.digests.items())
    text = identity.cf("inspect", f"{m.layout}:{m.tag}").stdout
    assert f"index    {m.index_digest}  platforms: linux/amd64, linux/arm64" in text
    raw = identity.run(["skopeo", "inspect", "--raw", f"oci:{m.layout}:{m.tag}"], check=True).stdout
    assert raw.encode() == blob(m.layout, m.index_digest)
    out = identity.mkdtemp("skopeo.")
    try:
        for arch, platform in (("arm64", ARM64), ("amd64", AMD64)):
            dest = out / arch
            identity.run(
                ["skopeo", "--override-arch", arch, "copy", f"oci:{m.layout}:{m.tag}", f"oci:{dest}:x"],
                check=True,
            )
            assert tagged(dest)["x"]["digest"] == m.digests[platform]
    finally:
        remove_as(identity, out)


def test_export_and_load(identity, multi_layout):
    m = multi_layout
    out = identity.mkdtemp("export.")
    podman = None
    if shutil.which("podman"):
        (out / "podman").mkdir()
        podman = Podman(identity, out / "podman")
    try:
        whole = out / "whole.tar"
        proc = identity.cf("export", f"{m.layout}:{m.tag}", "--format", "oci-archive", "-o", str(whole))
        assert proc.returncode == 0, proc.stderr
        with tarfile.open(whole) as tar:
            index = json.loads(tar.extractfile("index.json").read())
            names = set(tar.getnames())
            # ONE descriptor (podman and skopeo refuse more): an index of the images, with their
            # platforms, and of their referrers (each SBOM), which platform-choosing consumers skip
            [top] = index["manifests"]
            assert top["mediaType"] == mt.INDEX and top["annotations"][mt.REF_NAME] == m.tag
            inner = json.loads(tar.extractfile(f"blobs/sha256/{top['digest'][7:]}").read())
        platforms = [(d["digest"], d["platform"].get("os")) for d in inner["manifests"]]
        assert platforms[:2] == [(m.digests[AMD64], "linux"), (m.digests[ARM64], "linux")]
        assert {d for d, os_name in platforms[2:] if os_name == "unknown"} == set(m.sboms.values())
        assert all(f"blobs/sha256/{d[7:]}" in names for d in [*m.digests.values(), *m.sboms.values()])
        raw = identity.run(["skopeo", "inspect", "--raw", f"oci-archive:{whole}:{m.tag}"], check=True).stdout
        assert json.loads(raw)["manifests"][1]["digest"] == m.digests[ARM64]
        copied = out / "copied"
        identity.run(
            ["skopeo", "--override-arch", "arm64", "copy", f"oci-archive:{whole}:{m.tag}", f"oci:{copied}:x"],
            check=True,
        )
        assert tagged(copied)["x"]["digest"] == m.digests[ARM64]
        # without the referrers, the archive's tag names the layout's own index
        bare = out / "bare.tar"
        proc = identity.cf("export", f"{m.layout}:{m.tag}", "--no-referrers", "-o", str(bare))
        assert proc.returncode == 0, proc.stderr
        with tarfile.open(bare) as tar:
            [top] = json.loads(tar.extractfile("index.json").read())["manifests"]
        assert top["digest"] == m.index_digest

        arm = out / "arm.tar"
        proc = identity.cf(
            "export", f"{m.layout}:{m.tag}", "--format", "docker-archive", "--platform", ARM64, "-o", str(arm)
        )
        assert proc.returncode == 0, proc.stderr
        with tarfile.open(arm) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())[0]
            config = json.loads(tar.extractfile(manifest["Config"]).read())
            index = json.loads(tar.extractfile("index.json").read())
        assert config["architecture"] == "arm64" and manifest["RepoTags"] == ["localhost/t/multi:1"]
        assert index["manifests"][0]["digest"] == m.digests[ARM64]
        assert index["manifests"][0]["annotations"][mt.REF_NAME] == m.tag
        bad = identity.cf(
            "export",
            f"{m.layout}:{m.tag}",
            "--format",
            "docker-archive",
            "--platform",
            "linux/riscv64",
            "-o",
            str(out / "x.tar"),
        )
        assert bad.returncode == 1 and "has no image for linux/riscv64" in bad.stderr
        assert "it has: linux/amd64, linux/arm64" in bad.stderr
        if podman is not None:
            proc = identity.cf("load", f"{m.layout}:{m.tag}", "--platform", AMD64, *podman.load_args())
            assert proc.returncode == 0, proc.stderr
            run = podman.run_image("localhost/t/multi:1")
            assert run.stdout == "made by chrootforge\n", run.stderr
    finally:
        if podman is not None:
            podman.cleanup()
        remove_as(identity, out)


def test_commit_platform_sets_the_config(identity, tmp_path_factory):
    from tests.helpers.oci import make_busybox_rootfs

    base = identity.mkdtemp("commit.")
    try:
        rootfs = make_busybox_rootfs(base / "rootfs")
        if not identity.is_root:
            subprocess.run(["chown", "-R", f"{identity.uid}:{identity.gid}", str(base)], check=True)
        for platform, expected in (
            ("linux/arm/v7", {"architecture": "arm", "os": "linux", "variant": "v7"}),
            ("arm64", {"architecture": "arm64", "os": "linux"}),
        ):
            proc = identity.cf(
                "commit", str(rootfs), "--layout", str(base / "l"), "--tag", "c:1", "--platform", platform
            )
            assert proc.returncode == 0, proc.stderr
            manifest = json.loads(blob(base / "l", proc.stdout.strip()))
            config = json.loads(blob(base / "l", manifest["config"]["digest"]))
            assert {k: config[k] for k in expected} == expected and ("variant" in config) == (
                "variant" in expected
            )
        bad = identity.cf(
            "commit", str(rootfs), "--layout", str(base / "l"), "--tag", "c:2", "--platform", "linux/sparc"
        )
        assert bad.returncode == 2 and "unknown architecture 'sparc'" in bad.stderr
    finally:
        remove_as(identity, base)


def test_choose_an_image(multi_layout):
    entries = [
        {"digest": "a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "b", "platform": {"os": "linux", "architecture": "riscv64"}},
    ]
    assert imageindex.choose(entries, parse_platform("arm64"), "t")["digest"] == "a"
    assert imageindex.choose(entries[1:], None, "t")["digest"] == "b"  # the only one
    with pytest.raises(CfError) as err:
        imageindex.choose(entries, None, "tag x")  # this amd64 machine's is not there
    assert "none of them this machine's" in str(err.value) and "--platform" in (err.value.hint or "")
    with pytest.raises(CfError, match="has no image for linux/arm/v7"):
        imageindex.choose(entries, parse_platform("linux/arm/v7"), "t")


def test_a_child_builds_on_its_platforms_parent(multi_layout, tmp_path):
    from chrootforge import oci
    from tests.helpers.oci import fixed_epoch, make_busybox_rootfs

    layout = tmp_path / "layout"
    shutil.copytree(multi_layout.layout, layout)
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "child-file").write_text("x\n")
    with fixed_epoch():
        child = oci.commit(
            rootfs, layout, "child:1", parent=multi_layout.tag, platform=parse_platform(ARM64), quiet=True
        )
        manifest = json.loads(blob(layout, child.digest))
        parent = json.loads(blob(layout, multi_layout.digests[ARM64]))
        assert manifest["layers"][:1] == parent["layers"]  # the arm64 image's layer, not amd64's
        with pytest.raises(CfError, match="has no image for linux/riscv64"):
            oci.commit(rootfs, layout, "child:2", parent=multi_layout.tag, platform=parse_platform("riscv64"))
        with pytest.raises(CfError, match="is an image for linux/arm64, not linux/amd64"):
            oci.commit(rootfs, layout, "child:3", parent="child:1", platform=parse_platform("amd64"))
