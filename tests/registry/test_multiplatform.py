"""A multi-platform image through a real registry (docker-registry 2.8, TLS + htpasswd): push
carries the index and every image with its referrers; skopeo picks an arch from it; pull brings
the same index back, or one platform's image with --platform. As root and as the unprivileged user."""

from __future__ import annotations

import json

from chrootforge.oci import mediatypes as mt
from tests.helpers.registry import PASSWORD, USER
from tests.registry.checks import no_secrets
from tests.registry.test_push_pull import need, skopeo

AMD64, ARM64 = "linux/amd64", "linux/arm64"


def _tagged(layout) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return {
        m["annotations"][mt.REF_NAME]: m
        for m in index["manifests"]
        if mt.REF_NAME in (m.get("annotations") or {})
    }


def test_push_and_pull_an_index(identity, identity_tmp, htpasswd_registry, multi_layout, cert_dirs):
    need("skopeo")
    m, host = multi_layout, htpasswd_registry.host
    dest = f"docker://{host}/{identity.name}/multi:1"
    auth = ["--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}"]
    out = identity.cf("push", f"{m.layout}:{m.tag}", dest, "--json", *auth)
    assert out.returncode == 0, out.stderr
    no_secrets(out.stdout, out.stderr)
    result = json.loads(out.stdout)
    assert result["digest"] == m.index_digest
    assert sorted(result["referrers"]) == sorted(m.sboms.values())  # each image's SBOM went along

    ref = dest.removeprefix("docker://")
    raw = skopeo("inspect", "--raw", f"docker://{ref}", cert_dir=cert_dirs["ca"]).stdout
    assert raw.encode() == (m.layout / "blobs/sha256" / m.index_digest[7:]).read_bytes()
    for arch, platform in (("arm64", ARM64), ("amd64", AMD64)):
        inspected = json.loads(
            skopeo("inspect", "--override-arch", arch, f"docker://{ref}", cert_dir=cert_dirs["ca"]).stdout
        )
        # skopeo names the tag's digest (the index's) and describes the image it chose for the arch
        manifest = json.loads((m.layout / "blobs/sha256" / m.digests[platform][7:]).read_bytes())
        assert inspected["Digest"] == m.index_digest and inspected["Architecture"] == arch
        assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]]
        copied = identity_tmp / f"copy-{arch}"
        skopeo(
            "copy", "--override-arch", arch, f"docker://{ref}", f"oci:{copied}:x", cert_dir=cert_dirs["ca"]
        )
        assert _tagged(copied)["x"]["digest"] == m.digests[platform]

    whole = identity_tmp / "whole"
    out = identity.cf("pull", dest, f"{whole}:back:1", "--json", *auth)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["digest"] == m.index_digest
    desc = _tagged(whole)["back:1"]
    assert (desc["mediaType"], desc["digest"]) == (mt.INDEX, m.index_digest)
    assert identity.cf("verify", str(whole)).returncode == 0
    index = json.loads((whole / "index.json").read_text())
    subjects = {d["digest"]: d["annotations"].get("dev.chrootforge.subject") for d in index["manifests"][1:]}
    assert subjects == {m.sboms[p]: m.digests[p] for p in m.digests}

    one = identity_tmp / "one"
    out = identity.cf("pull", dest, f"{one}:arm:1", "--platform", ARM64, "--json", *auth)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["digest"] == m.digests[ARM64]
    desc = _tagged(one)["arm:1"]
    assert (desc["mediaType"], desc["digest"]) == (mt.MANIFEST, m.digests[ARM64])
