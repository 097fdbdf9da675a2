"""push and pull against a real registry (docker-registry 2.8, TLS + htpasswd), checked by real
clients: skopeo inspect/copy, podman pull/run, and the SBOM found again through the referrers
fallback tag. The CLI runs as root and as the unprivileged test user."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.registry import RegistryOptions, pull, push, remote_digest
from tests.helpers.identity import SHARED_TMP
from tests.helpers.oci import Podman
from tests.helpers.registry import PASSWORD, USER, TcpProxy
from tests.registry.checks import SECRETS, cli, no_secrets, one_error_line


def need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


def skopeo(*args: str, cert_dir: Path) -> subprocess.CompletedProcess:
    """skopeo inspect/copy with the test registry's CA and credentials (copy: for its source)."""
    prefix = "--src-" if args[0] == "copy" else "--"
    return subprocess.run(
        [
            "skopeo",
            args[0],
            f"{prefix}cert-dir",
            str(cert_dir),
            f"{prefix}creds",
            f"{USER}:{PASSWORD}",
            *args[1:],
        ],
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture
def api_options(cert_dirs, tmp_path, monkeypatch) -> RegistryOptions:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return RegistryOptions(cert_dir=str(cert_dirs["ca"]), creds=f"{USER}:{PASSWORD}", quiet=True)


def test_push_then_pull_round_trip(identity, identity_tmp, htpasswd_registry, registry_images, cert_dirs):
    need("skopeo")
    host, images = htpasswd_registry.host, registry_images
    dest = f"docker://{host}/{identity.name}/bb:1"
    auth = ["--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}"]
    out = identity.cf("push", f"{images.layout}:{images.base}", dest, "--json", *auth)
    assert out.returncode == 0, out.stderr
    no_secrets(out.stdout, out.stderr)
    result = json.loads(out.stdout)
    assert result["digest"] == images.digest(images.base)
    # config, layer, and the SBOM's empty config and document
    assert result["blobs_uploaded"] + result["blobs_skipped"] + result["blobs_mounted"] == 4
    assert result["referrers"] == [images.sbom_digest()] and result["referrers_via"] == "tag"

    inspected = json.loads(
        skopeo("inspect", f"docker://{host}/{identity.name}/bb:1", cert_dir=cert_dirs["ca"]).stdout
    )
    assert inspected["Digest"] == images.digest(images.base)

    target = identity_tmp / "layout"
    out = identity.cf("pull", dest, f"{target}:mine:1", "--json", *auth)
    assert out.returncode == 0, out.stderr
    no_secrets(out.stdout, out.stderr)
    assert json.loads(out.stdout)["digest"] == images.digest(images.base)
    assert identity.cf("verify", str(target)).returncode == 0
    index = json.loads((target / "index.json").read_text())
    tagged = [
        d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name")
    ]
    assert [d["digest"] for d in tagged] == [images.digest(images.base)]
    # the SBOM came along, in the layout's referrer convention
    sbom = [d for d in index["manifests"] if d.get("annotations", {}).get("dev.chrootforge.subject")]
    assert [d["digest"] for d in sbom] == [images.sbom_digest()]
    assert sbom[0]["artifactType"] == images.sbom_type
    # byte-identical blobs
    for desc in [images.manifest(images.base)["config"], *images.manifest(images.base)["layers"]]:
        assert (target / "blobs/sha256" / desc["digest"][7:]).read_bytes() == (
            images.layout / "blobs/sha256" / desc["digest"][7:]
        ).read_bytes()


def test_podman_pulls_and_runs_what_was_pushed(identity, htpasswd_registry, registry_images, cert_dirs):
    need("podman")
    images = registry_images
    ref = f"{htpasswd_registry.host}/{identity.name}/run:1"
    out = identity.cf(
        "push",
        f"{images.layout}:{images.base}",
        f"docker://{ref}",
        "--cert-dir",
        str(cert_dirs["ca"]),
        "--creds",
        f"{USER}:{PASSWORD}",
    )
    assert out.returncode == 0, out.stderr
    podman = Podman(identity, identity.mkdtemp("podman."))
    try:
        got = podman.run(
            "pull", "--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}", f"docker://{ref}"
        )
        assert got.returncode == 0, got.stderr
        ran = podman.run_image(ref)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "made by chrootforge\n"
    finally:
        podman.cleanup()


def test_sbom_is_found_through_the_referrers_fallback_tag(
    htpasswd_registry, registry_images, cert_dirs, api_options
):
    need("skopeo")
    images = registry_images
    repo = f"{htpasswd_registry.host}/sbom/bb"
    result = push(images.layout, images.base, f"docker://{repo}:1", api_options)
    assert result.referrers_via == "tag"
    subject = images.digest(images.base)
    raw = skopeo("inspect", "--raw", f"docker://{repo}:sha256-{subject[7:]}", cert_dir=cert_dirs["ca"]).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [(d["digest"], d["artifactType"]) for d in index["manifests"]] == [
        (images.sbom_digest(), images.sbom_type)
    ]
    artifact = json.loads(
        skopeo("inspect", "--raw", f"docker://{repo}@{images.sbom_digest()}", cert_dir=cert_dirs["ca"]).stdout
    )
    assert artifact["subject"]["digest"] == subject
    # another referrer pushed there by someone else survives our next push (merge, not overwrite)
    foreign = index["manifests"][0] | {
        "digest": images.digest(images.child),
        "artifactType": "application/x-other",
        "size": len((images.layout / "blobs/sha256" / images.digest(images.child)[7:]).read_bytes()),
    }
    push(images.layout, images.child, f"docker://{repo}:child", api_options)
    index["manifests"].append(foreign)
    _put_manifest(
        htpasswd_registry.host,
        "sbom/bb",
        f"sha256-{subject[7:]}",
        json.dumps(index).encode(),
        index["mediaType"],
        cert_dirs["ca"],
    )
    push(images.layout, images.base, f"docker://{repo}:1", api_options)
    merged = json.loads(
        skopeo("inspect", "--raw", f"docker://{repo}:sha256-{subject[7:]}", cert_dir=cert_dirs["ca"]).stdout
    )
    assert {d["digest"] for d in merged["manifests"]} == {images.sbom_digest(), images.digest(images.child)}


def _put_manifest(host: str, repo: str, tag: str, data: bytes, media_type: str, cert_dir: Path) -> None:
    """A manifest PUT by another client (plain requests), to prepare registry state."""
    import requests

    resp = requests.put(
        f"https://{host}/v2/{repo}/manifests/{tag}",
        data=data,
        auth=(USER, PASSWORD),
        verify=str(cert_dir / "ca.crt"),
        headers={"Content-Type": media_type},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text


def test_repush_uploads_no_blob_bytes(htpasswd_registry, registry_images, api_options):
    """Counted on the wire by a proxy in front of the registry, not only by PushResult."""
    images = registry_images
    proxy = TcpProxy(htpasswd_registry.port)
    try:
        dest = f"docker://{proxy.host}/repush/bb:2"
        first = push(images.layout, images.child, dest, api_options)
        first_sent = proxy.sent
        layer_bytes = sum(d["size"] for d in images.manifest(images.child)["layers"])
        assert first.uploaded_bytes >= layer_bytes and first_sent > layer_bytes
        second = push(images.layout, images.child, dest, api_options)
        assert second.digest == first.digest
        assert (second.uploaded_bytes, second.blobs_uploaded, second.blobs_skipped) == (0, 0, 3)
        assert proxy.sent - first_sent < 20_000  # HEADs and the manifest PUT: headers only
    finally:
        proxy.stop()


def test_chunked_upload_and_cross_repository_mount(
    htpasswd_registry, registry_images, api_options, cert_dirs
):
    need("skopeo")
    images = registry_images
    host = htpasswd_registry.host
    small_chunks = RegistryOptions(
        cert_dir=api_options.cert_dir, creds=api_options.creds, quiet=True, chunk_size=256 << 10
    )
    push(images.layout, images.child, f"docker://{host}/mount/src:2", small_chunks)
    patches = htpasswd_registry.access_log("PATCH", r"^/v2/mount/src/blobs/uploads/")
    assert len(patches) >= 3_000_000 // (256 << 10) and all(status == 202 for _, _, status in patches)

    result = push(images.layout, images.child, f"docker://{host}/mount/dest:2", api_options)
    assert result.blobs_mounted == 3 and result.uploaded_bytes == 0
    mounts = htpasswd_registry.access_log("POST", r"^/v2/mount/dest/blobs/uploads/\?mount=")
    assert len(mounts) == 3 and all("from=mount/src" in path and status == 201 for _, path, status in mounts)
    # a real client copies the mounted image out and finds the same bytes
    out = SHARED_TMP / f"skopeo-copy.{os.getpid()}"
    try:
        skopeo("copy", f"docker://{host}/mount/dest:2", f"oci:{out}:x", cert_dir=cert_dirs["ca"])
        index = json.loads((out / "index.json").read_text())
        assert index["manifests"][0]["digest"] == images.digest(images.child)
        for desc in images.manifest(images.child)["layers"]:
            data = (out / "blobs/sha256" / desc["digest"][7:]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_remote_digest_and_pull_by_digest(htpasswd_registry, registry_images, api_options, tmp_path):
    images = registry_images
    host = htpasswd_registry.host
    push(images.layout, images.base, f"docker://{host}/lookup/bb:1", api_options)
    assert remote_digest(f"docker://{host}/lookup/bb:1", api_options) == images.digest(images.base)
    assert remote_digest(f"docker://{host}/lookup/bb:nope", api_options) is None
    assert remote_digest(f"docker://{host}/never/pushed:1", api_options) is None
    layout = tmp_path / "layout"
    oci.commit(Path(images.layout).parent / "rootfs", layout, "keep:1", quiet=True)
    before = (layout / "index.json").read_bytes()
    digest = pull(
        f"docker://{host}/lookup/bb@{images.digest(images.base)}", layout, "by-digest:1", api_options
    )
    assert digest == images.digest(images.base)
    assert oci.verify(layout) == []
    tags = {
        d["annotations"]["org.opencontainers.image.ref.name"]
        for d in json.loads((layout / "index.json").read_text())["manifests"]
        if "annotations" in d and "org.opencontainers.image.ref.name" in d["annotations"]
    }
    assert tags == {"keep:1", "by-digest:1"}
    assert json.loads(before)["manifests"][0] in json.loads((layout / "index.json").read_text())["manifests"]
    # the pull taught the blob location cache: pushing to another repository mounts every blob
    again = push(layout, "by-digest:1", f"docker://{host}/lookup/copy:1", api_options)
    assert (again.blobs_mounted, again.blobs_uploaded, again.uploaded_bytes) == (4, 0, 0)


def test_authfile_lookup_and_rejected_credentials(
    identity, identity_tmp, htpasswd_registry, registry_images, cert_dirs
):
    images = registry_images
    dest = f"docker://{htpasswd_registry.host}/{identity.name}/auth:1"
    home = identity_tmp
    good = home / "good.json"
    good.write_text(json.dumps({"auths": {htpasswd_registry.host: {"auth": SECRETS[1]}}}))
    bad = home / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "auths": {
                    htpasswd_registry.host: {
                        "auth": base64.b64encode(f"{USER}:{PASSWORD}-wrong".encode()).decode()
                    }
                }
            }
        )
    )
    if os.getuid() == 0:
        for path in (good, bad):
            os.chown(path, identity.uid, identity.gid)
    args = ("push", f"{images.layout}:{images.base}", dest, "--cert-dir", str(cert_dirs["ca"]))
    out = identity.cf(*args, env={"REGISTRY_AUTH_FILE": str(good)})
    assert out.returncode == 0, out.stderr
    out = identity.cf(*args, "--authfile", str(bad), env={"REGISTRY_AUTH_FILE": str(good)})
    assert out.returncode == 1
    one_error_line(out.stderr, f"access denied with the credentials from {bad}")
    no_secrets(out.stdout, out.stderr)
    out = identity.cf(*args)  # no credentials anywhere
    assert out.returncode == 1
    one_error_line(out.stderr, "the registry requires authentication")


def test_tls_trust_comes_from_cert_dir_certs_d_or_is_switched_off(
    htpasswd_registry, registry_images, pki, tmp_path
):
    images = registry_images
    dest = f"docker://{htpasswd_registry.host}/tls/bb:1"
    base = ["push", f"{images.layout}:{images.base}", dest, "--creds", f"{USER}:{PASSWORD}"]
    env = {
        "CHROOTFORGE_CERTS_D": str(tmp_path / "certs.d"),
        "CHROOTFORGE_REGISTRY_RETRIES": "0",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return cli(*args, env=env)

    out = run(*base)
    assert out.returncode == 1
    one_error_line(out.stderr, f"TLS with {htpasswd_registry.host} failed: ")
    assert "certificate verify failed" in out.stderr
    pki.cert_dir(tmp_path / "certs.d" / htpasswd_registry.host)
    assert run(*base).returncode == 0
    shutil.rmtree(tmp_path / "certs.d")
    out = run(*base, "--tls-verify=false")
    assert out.returncode == 0, out.stderr


def test_tls_verify_false_warns_once_and_urllib3_never(htpasswd_registry, registry_images, tmp_path):
    """One chrootforge warning (credentials over an unchecked connection), none of urllib3's
    InsecureRequestWarning per connection, for a push and a pull of several blobs."""
    images = registry_images
    dest = f"docker://{htpasswd_registry.host}/insecure/bb:2"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "CHROOTFORGE_CERTS_D": str(tmp_path / "none")}
    creds = ["--tls-verify=false", "--creds", f"{USER}:{PASSWORD}"]
    for args in (
        ("push", f"{images.layout}:{images.child}", dest),
        ("pull", dest, f"{tmp_path / 'layout'}:bb:2"),
    ):
        out = cli(*args, *creds, env=env)
        assert out.returncode == 0, out.stderr
        assert "InsecureRequestWarning" not in out.stderr and "warnings.warn" not in out.stderr, out.stderr
        warned = [line for line in out.stderr.splitlines() if line.startswith("chrootforge: WARNING:")]
        assert warned == [
            f"chrootforge: WARNING: sending credentials for {htpasswd_registry.host} over TLS without "
            "checking its certificate (--tls-verify=false)"
        ], out.stderr
        no_secrets(out.stdout, out.stderr)
