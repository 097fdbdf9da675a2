"""Images a registry holds under Docker's v2 schema 2 media types (what `docker push` writes), and a
Docker manifest list: pull stores them in their OCI form (the same config and layer bytes, a new
manifest digest), and every reader, skopeo and umoci take the result; gc removes none of it.
Against the real registry (docker-registry 2.8), the CLI as root and as the unprivileged user."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from chrootforge.oci import mediatypes as mt
from chrootforge.registry.manifests import host_platform
from tests.helpers.registry import PASSWORD, USER

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


def _http(method: str, host: str, path: str, ca: Path, **kwargs) -> requests.Response:
    resp = requests.request(
        method, f"https://{host}/v2/{path}", auth=(USER, PASSWORD), verify=str(ca), timeout=30, **kwargs
    )
    assert resp.status_code < 300, (resp.status_code, resp.text)
    return resp


@pytest.fixture(scope="module")
def docker_repo(htpasswd_registry, registry_images, cert_dirs) -> dict:
    """docker/bb:2 and docker/bb:1 pushed by skopeo --format v2s2; docker/bb:list a Docker
    manifest list (PUT by hand) whose entry for this machine is bb:2, another platform's bb:1."""
    need("skopeo")
    host, images, ca = htpasswd_registry.host, registry_images, cert_dirs["ca"] / "ca.crt"
    raw = {}
    for tag in ("1", "2"):
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--format",
                "v2s2",
                "--dest-cert-dir",
                str(cert_dirs["ca"]),
                "--dest-creds",
                f"{USER}:{PASSWORD}",
                f"oci:{images.layout}:bb:{tag}",
                f"docker://{host}/docker/bb:{tag}",
            ],
            check=True,
            capture_output=True,
        )
        resp = _http("GET", host, f"docker/bb/manifests/{tag}", ca, headers={"Accept": DOCKER_MANIFEST})
        assert resp.headers["Content-Type"] == DOCKER_MANIFEST
        raw[tag] = resp.content
    here = host_platform()[1]
    other = "arm64" if here != "arm64" else "amd64"
    entries = [
        {
            "mediaType": DOCKER_MANIFEST,
            "size": len(raw[tag]),
            "digest": "sha256:" + hashlib.sha256(raw[tag]).hexdigest(),
            "platform": {"architecture": arch, "os": "linux"},
        }
        for tag, arch in (("1", other), ("2", here))
    ]
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    _http("PUT", host, "docker/bb/manifests/list", ca, data=listing, headers={"Content-Type": DOCKER_LIST})
    return {"host": host, "raw": raw, "images": images}


def _stored(layout: Path, tag: str) -> tuple[dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    desc = next(d for d in index["manifests"] if d.get("annotations", {}).get(mt.REF_NAME) == tag)
    return desc, json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())


def test_docker_images_are_pulled_in_their_oci_form_and_usable_everywhere(
    identity, identity_tmp, docker_repo, cert_dirs
):
    need("umoci")
    host, images = docker_repo["host"], docker_repo["images"]
    auth = ["--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}"]
    layout = identity_tmp / "layout"
    docker = json.loads(docker_repo["raw"]["2"])
    remote = "sha256:" + hashlib.sha256(docker_repo["raw"]["2"]).hexdigest()
    digests = []
    for ref, tag in (("docker/bb:2", "got:2"), ("docker/bb:list", "got:list")):
        out = identity.cf("pull", f"docker://{host}/{ref}", f"{layout}:{tag}", *auth)
        assert out.returncode == 0, out.stderr
        desc, manifest = _stored(layout, tag)
        assert out.stdout.strip() == desc["digest"] != remote
        assert desc["mediaType"] == manifest["mediaType"] == mt.MANIFEST
        assert manifest["config"] == dict(docker["config"], mediaType=mt.CONFIG)
        assert manifest["layers"] == [dict(d, mediaType=mt.LAYER_GZIP) for d in docker["layers"]]
        # the config and layers are the image's own bytes: the OCI image's from the start
        assert [d["digest"] for d in manifest["layers"]] == [
            d["digest"] for d in images.manifest("bb:2")["layers"]
        ]
        assert manifest["config"]["digest"] == images.manifest("bb:2")["config"]["digest"]
        digests.append(desc["digest"])
    assert digests[0] == digests[1]  # the list's entry for this machine is bb:2

    out = identity.cf("verify", str(layout))
    assert out.returncode == 0 and "not referenced" not in out.stderr, out.stderr
    out = identity.cf("inspect", "--json", f"{layout}:got:2")
    assert out.returncode == 0 and len(json.loads(out.stdout)["images"][0]["layers"]) == 2, out.stderr
    out = identity.cf("export", f"{layout}:got:2", "-o", str(identity_tmp / "got.tar"))
    assert out.returncode == 0, out.stderr
    child = identity_tmp / "child"
    child.mkdir()
    (child / "hello").write_text("child\n")
    if identity.is_root is False:
        os.chown(child, identity.uid, identity.gid)
        os.chown(child / "hello", identity.uid, identity.gid)
    out = identity.cf("commit", str(child), "--layout", str(layout), "--tag", "child", "--parent", "got:2")
    assert out.returncode == 0, out.stderr
    out = identity.run(["skopeo", "inspect", f"oci:{layout}:got:2"])
    assert out.returncode == 0 and json.loads(out.stdout)["Digest"] == digests[0], out.stderr
    bundle = identity_tmp / "bundle"
    rootless = [] if identity.is_root else ["--rootless"]
    out = identity.run(["umoci", "unpack", *rootless, "--image", f"{layout}:got:2", str(bundle)])
    assert out.returncode == 0, out.stderr
    assert (bundle / "rootfs" / "etc" / "motd").read_text() == "made by chrootforge\n"
    assert (bundle / "rootfs" / "big").stat().st_size == 3_000_000
    blobs = sorted(os.listdir(layout / "blobs" / "sha256"))
    out = identity.cf("gc", str(layout), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["removed"] == 0, out.stderr
    assert sorted(os.listdir(layout / "blobs" / "sha256")) == blobs
    # and back to the registry, as the OCI image it now is
    dest = f"docker://{host}/{identity.name}/back:2"
    out = identity.cf("push", f"{layout}:got:2", dest, *auth)
    assert out.returncode == 0 and out.stdout.strip() == digests[0], out.stderr
    resp = _http(
        "GET",
        host,
        f"{identity.name}/back/manifests/2",
        cert_dirs["ca"] / "ca.crt",
        headers={"Accept": mt.MANIFEST},
    )
    assert resp.headers["Content-Type"] == mt.MANIFEST
    assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == digests[0]
