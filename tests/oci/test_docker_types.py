"""Layouts written by other tools may hold Docker v2 schema 2 media types (an OCI layout may list a
Docker manifest): every reader takes them as it takes OCI ones, and gc never removes a blob that a
tag reaches, whatever its media type. Where gc cannot tell what a tag references (an unknown
manifest type, a damaged manifest) it removes nothing."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.oci import layout as lo
from chrootforge.oci import mediatypes as mt
from tests.helpers.oci import EPOCH, make_busybox_rootfs, rewrite_image, snapshot


def cf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True)


def blobs_of(layout: Path) -> dict[str, str]:
    """name -> sha256 of every blob file (what gc may touch)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (layout / "blobs" / "sha256").iterdir()
    }


# Docker's names, spelled out (as another tool writes them)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def as_docker(doc: dict) -> dict:
    """An OCI image manifest under Docker v2 schema 2 names (the same blobs)."""
    assert {d["mediaType"] for d in doc["layers"]} == {mt.LAYER_GZIP}
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": dict(doc["config"], mediaType=DOCKER_CONFIG),
        "layers": [dict(d, mediaType=DOCKER_LAYER_GZIP) for d in doc["layers"]],
    }


@pytest.fixture
def docker_layout(tmp_path, monkeypatch) -> dict:
    """`bb:docker`: a busybox image under Docker names; `bb:list`: a Docker manifest list holding
    it (linux/amd64) and an OCI image (linux/arm64); and one stray blob, which gc must remove."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    layout = tmp_path / "layout"
    oci.commit(rootfs, layout, "bb:docker", config={"Cmd": ["/bin/sh", "-c", "cat /etc/motd"]}, quiet=True)
    (rootfs / "etc" / "arm").write_text("other platform\n")
    oci.commit(rootfs, layout, "bb:arm", quiet=True)
    (rootfs / "etc" / "arm").unlink()
    docker = rewrite_image(layout, "bb:docker", manifest=as_docker, media_type=DOCKER_MANIFEST)
    arm = oci.resolve(layout, "bb:arm").descriptor
    entries = [
        {
            "mediaType": DOCKER_MANIFEST,
            "digest": docker,
            "size": lo.blob_path(layout, docker).stat().st_size,
            "platform": {"os": "linux", "architecture": "amd64"},
        },
        {
            "mediaType": mt.MANIFEST,
            "digest": arm["digest"],
            "size": arm["size"],
            "platform": {"os": "linux", "architecture": "arm64"},
        },
    ]
    listed, size = lo.write_blob(
        layout, json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    )
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] = [d for d in index["manifests"] if d["annotations"][mt.REF_NAME] != "bb:arm"]
    index["manifests"].append(
        {"mediaType": DOCKER_LIST, "digest": listed, "size": size, "annotations": {mt.REF_NAME: "bb:list"}}
    )
    (layout / "index.json").write_text(json.dumps(index))
    lo.gc(layout)  # the OCI documents rewrite_image replaced
    stray, _ = lo.write_blob(layout, b"left by an interrupted commit")
    return {"layout": layout, "rootfs": rootfs, "stray": stray, "docker": docker}


def test_verify_and_gc_follow_docker_manifests_and_lists(docker_layout):
    layout = docker_layout["layout"]
    out = cf("verify", str(layout))
    assert out.returncode == 0, out.stderr
    assert "1 blobs (0.0 MB) are not referenced" in out.stderr  # the stray one only
    before = blobs_of(layout)
    out = cf("gc", str(layout), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["removed"] == 1
    assert blobs_of(layout) == {k: v for k, v in before.items() if k != docker_layout["stray"][7:]}
    assert oci.verify(layout) == []


def test_every_reader_takes_a_docker_manifest(docker_layout, tmp_path):
    layout = docker_layout["layout"]
    found = oci.resolve(layout, "bb:docker")
    assert found.descriptor["mediaType"] == DOCKER_MANIFEST
    info = json.loads(cf("inspect", "--json", f"{layout}:bb:docker").stdout)["images"][0]
    assert [x["mediaType"] for x in info["layers"]] == [DOCKER_LAYER_GZIP]
    assert "gzip" in cf("inspect", f"{layout}:bb:docker").stdout
    # unpack reproduces the tree
    oci.unpack(layout, "bb:docker", tmp_path / "unpacked")
    owners = os.getuid() == 0
    assert snapshot(tmp_path / "unpacked", owners=owners) == snapshot(docker_layout["rootfs"], owners=owners)
    # export: both formats, and the archive is a valid layout again
    for fmt in ("oci-archive", "docker-archive"):
        out = cf("export", f"{layout}:bb:docker", "--format", fmt, "-o", str(tmp_path / f"{fmt}.tar"))
        assert out.returncode == 0, out.stderr
        with tarfile.open(tmp_path / f"{fmt}.tar") as tar:
            tar.extractall(tmp_path / fmt)
        assert oci.verify(tmp_path / fmt) == []
    # commit --parent: the child is OCI throughout, sharing the parent's layer bytes
    child = tmp_path / "child"
    shutil.copytree(docker_layout["rootfs"], child, symlinks=True)
    (child / "etc" / "new").write_text("child\n")
    out = cf("commit", str(child), "--layout", str(layout), "--tag", "bb:child", "--parent", "bb:docker")
    assert out.returncode == 0, out.stderr
    manifest = oci.resolve(layout, "bb:child").manifest
    assert [d["mediaType"] for d in manifest["layers"]] == [mt.LAYER_GZIP, mt.LAYER_GZIP]
    assert manifest["layers"][0]["digest"] == found.manifest["layers"][0]["digest"]
    assert oci.verify(layout) == []
    if shutil.which("skopeo"):  # a consumer reads the child
        out = subprocess.run(["skopeo", "inspect", f"oci:{layout}:bb:child"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    if shutil.which("umoci"):
        args = [] if os.getuid() == 0 else ["--rootless"]
        out = subprocess.run(
            ["umoci", "unpack", *args, "--image", f"{layout}:bb:child", str(tmp_path / "bundle")],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "bundle" / "rootfs" / "etc" / "new").read_text() == "child\n"


def test_a_tag_on_a_list_is_shown_by_inspect_and_refused_by_image_readers_with_a_reason(docker_layout):
    layout = docker_layout["layout"]
    out = cf("inspect", "--json", str(layout))  # the whole layout, the list among its tags
    assert out.returncode == 0, out.stderr
    shown = {img["tag"]: img for img in json.loads(out.stdout)["images"]}
    assert [m["platform"] for m in shown["bb:list"]["manifests"]] == ["linux/amd64", "linux/arm64"]
    assert shown["bb:list"]["mediaType"] == DOCKER_LIST and shown["bb:docker"]["layers"]
    out = cf("inspect", f"{layout}:bb:list")
    assert out.returncode == 0 and "linux/arm64: sha256:" in out.stdout, out.stderr
    out = cf("export", f"{layout}:bb:list", "-o", str(layout.parent / "list.tar"))
    assert out.returncode == 1
    assert "is a multi-platform index, not one image" in out.stderr and "Traceback" not in out.stderr


SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


@pytest.mark.parametrize("damage", ["schema1", "unknown-in-list", "truncated", "missing", "not-json"])
def test_gc_removes_nothing_when_it_cannot_tell_what_a_tag_references(docker_layout, damage):
    layout = docker_layout["layout"]
    index = json.loads((layout / "index.json").read_text())
    docker = next(d for d in index["manifests"] if d["annotations"][mt.REF_NAME] == "bb:docker")
    if damage == "schema1":  # its layers are named by blobSum: gc cannot know them
        layer = oci.resolve(layout, "bb:docker").manifest["layers"][0]["digest"]
        doc = {"schemaVersion": 1, "name": "bb", "fsLayers": [{"blobSum": layer}], "history": []}
        digest, size = lo.write_blob(layout, json.dumps(doc).encode())
        docker.update(mediaType=SCHEMA1, digest=digest, size=size)
    elif damage == "unknown-in-list":
        listed = next(d for d in index["manifests"] if d["annotations"][mt.REF_NAME] == "bb:list")
        doc = json.loads(lo.blob_path(layout, listed["digest"]).read_bytes())
        doc["manifests"][0]["mediaType"] = "application/vnd.example.future-manifest+json"
        listed["digest"], listed["size"] = lo.write_blob(layout, json.dumps(doc).encode())
    else:
        path = lo.blob_path(layout, docker["digest"])
        path.chmod(0o644)
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:40])
        elif damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"\x00not json")
    (layout / "index.json").write_text(json.dumps(index))
    before = blobs_of(layout)
    out = cf("gc", str(layout))
    assert out.returncode == 1, out.stdout
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("chrootforge: error: ") and "cannot tell which blobs" in lines[0], out.stderr
    assert len(lines) == 2 and "nothing was removed" in lines[1], out.stderr
    assert blobs_of(layout) == before
    out = cf("verify", str(layout))
    assert out.returncode == 1 and "are not referenced" not in out.stderr  # no advice to run gc


def test_gc_keeps_an_image_whatever_the_order_of_its_tag_and_referrers(tmp_path):
    """A referrer reaches its subject's manifest blob only; the tag must still reach the rest."""
    tree = tmp_path / "t"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "f").write_text("x")
    layout = tmp_path / "L"
    oci.commit(tree, layout, "img", quiet=True)
    oci.attach_referrer(layout, "img", b'{"spdxVersion": "SPDX-2.3"}', "application/spdx+json")
    oci.attach_referrer(layout, "img", b"signature", "application/vnd.example.sig")
    index = json.loads((layout / "index.json").read_text())
    for order in itertools.permutations(index["manifests"]):
        (layout / "index.json").write_text(json.dumps(dict(index, manifests=list(order))))
        before = blobs_of(layout)
        assert lo.gc(layout) == []
        assert blobs_of(layout) == before and oci.verify(layout) == []
