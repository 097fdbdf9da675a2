"""Hostile and faulty registries (tests/helpers/fakeregistry.py on 127.0.0.1): each failure is one
clear line and a non-zero exit, and the target layout keeps its earlier tags byte for byte (no new
blob, no temp file, the same index.json). Also: retries that succeed, uploads that resume from the
registry's offset, and the OCI 1.1 referrers API path."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.errors import CfError
from chrootforge.oci import mediatypes as mt
from chrootforge.oci.layout import gc as oci_gc
from chrootforge.registry import RegistryOptions, pull, push
from tests.helpers import fakeregistry as fr
from tests.registry.checks import cli, cli_on_tty, one_error_line

FAST = {
    "CHROOTFORGE_REGISTRY_TIMEOUT": "1",
    "CHROOTFORGE_REGISTRY_RETRIES": "1",
    "CHROOTFORGE_RETRY_BACKOFF": "0.01",
}


@pytest.fixture
def fake(registry_images):
    server = fr.FakeRegistry()
    server.seed(registry_images.layout, registry_images.base, "img/bb", "1")
    yield server
    server.stop()


@pytest.fixture
def earlier(tmp_path, monkeypatch) -> Path:
    """A layout that already holds the tag keep:1."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "tree" / "etc").mkdir(parents=True)
    (tmp_path / "tree" / "etc" / "kept").write_text("earlier image\n")
    oci.commit(tmp_path / "tree", tmp_path / "layout", "keep:1", quiet=True)
    return tmp_path / "layout"


def snapshot(layout: Path) -> dict[str, str]:
    return {
        str(p.relative_to(layout)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(layout.rglob("*"))
        if p.is_file() and p.name != ".index.lock"
    }


def pull_fails(
    fake,
    layout: Path,
    fragment: str,
    ref: str = "img/bb:1",
    env: dict | None = None,
    tls_verify: bool = False,
) -> str:
    before = snapshot(layout)
    out = cli(
        "pull",
        f"docker://{fake.host}/{ref}",
        f"{layout}:got:1",
        *([] if tls_verify else ["--tls-verify=false"]),
        env={**FAST, **(env or {})},
    )
    assert out.returncode == 1, out.stderr
    one_error_line(out.stderr, fragment)
    assert snapshot(layout) == before
    assert oci.verify(layout) == []
    return out.stderr


def test_blob_bytes_not_matching_the_digest(fake, earlier, registry_images):
    layer = registry_images.manifest(registry_images.base)["layers"][0]["digest"]
    blobs = fake.repo("img/bb")["blobs"]
    blobs[layer] = bytes([blobs[layer][0] ^ 1]) + blobs[layer][1:]
    pull_fails(fake, earlier, f"blob {layer[7:19]} does not match its digest")


def test_blob_longer_than_its_descriptor(fake, earlier, registry_images):
    layer = registry_images.manifest(registry_images.base)["layers"][0]["digest"]
    fake.repo("img/bb")["blobs"][layer] += b"trailing junk"
    pull_fails(fake, earlier, "is longer than the")


def test_manifest_over_4_mib(fake, earlier, registry_images):
    doc = dict(registry_images.manifest(registry_images.base), annotations={"pad": "x" * (5 << 20)})
    fake.put_manifest("img/bb", "huge", json.dumps(doc).encode(), mt.MANIFEST)
    pull_fails(fake, earlier, "more than the 4194304 bytes allowed", ref="img/bb:huge")


def test_redirect_loop(fake, earlier):
    fake.faults.append(fr.redirect_loop(r"/blobs/sha256:"))
    pull_fails(fake, earlier, "redirect loop")


def test_server_that_stops_answering_times_out(fake, earlier):
    fake.faults.append(fr.hang(r"/manifests/"))
    started = time.monotonic()
    stderr = pull_fails(fake, earlier, "no answer within 1s")
    assert time.monotonic() - started < 15
    assert "--timeout" in stderr


def test_malformed_www_authenticate(fake, earlier):
    fake.faults.append(fr.malformed_challenge('Bearer realm="https://auth.example/token,service="x"'))
    pull_fails(fake, earlier, "sent a malformed WWW-Authenticate header")


def test_unknown_layer_media_type(fake, earlier, registry_images):
    doc = registry_images.manifest(registry_images.base)
    doc = dict(doc, layers=[dict(doc["layers"][0], mediaType="application/x-not-a-layer")])
    fake.put_manifest("img/bb", "odd", json.dumps(doc).encode(), mt.MANIFEST)
    pull_fails(fake, earlier, "unknown media type 'application/x-not-a-layer'", ref="img/bb:odd")


def test_manifest_not_matching_the_pulled_digest(fake, earlier, registry_images):
    digest = registry_images.digest(registry_images.base)
    other = json.dumps(registry_images.manifest(registry_images.child)).encode()
    fake.repo("img/bb")["manifests"][digest] = (other, mt.MANIFEST)
    pull_fails(fake, earlier, "the registry sent a manifest whose digest is", ref=f"img/bb@{digest}")


def test_referrer_whose_subject_is_another_image(fake, earlier, registry_images):
    subject = registry_images.digest(registry_images.base)
    sbom = registry_images.sbom_digest()
    art = json.loads(fake.read_blob(registry_images.layout, sbom))
    art["subject"]["digest"] = registry_images.digest(registry_images.child)
    raw = json.dumps(art).encode()
    fake.put_manifest("img/bb", fr.digest_of(raw), raw, mt.MANIFEST, registry_images.layout)
    index = {
        "schemaVersion": 2,
        "mediaType": mt.INDEX,
        "manifests": [{"mediaType": mt.MANIFEST, "digest": fr.digest_of(raw), "size": len(raw)}],
    }
    fake.put_manifest("img/bb", f"sha256-{subject[7:]}", json.dumps(index).encode(), mt.INDEX)
    pull_fails(fake, earlier, "but its subject differs")


def test_sigterm_mid_download_leaves_no_temp_file(fake, earlier):
    fake.faults.append(fr.stall_blob(after=300_000))
    before = snapshot(earlier)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chrootforge",
            "pull",
            f"docker://{fake.host}/img/bb:1",
            f"{earlier}:got:1",
            "--tls-verify=false",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **FAST, "CHROOTFORGE_REGISTRY_TIMEOUT": "60"},
    )
    try:
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 0 for p in (earlier / ".tmp").glob("blob.*")):
            assert time.monotonic() < deadline and proc.poll() is None, "no partial download appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "chrootforge: interrupted" in stderr
    assert snapshot(earlier) == before


def test_flood_of_referrers(fake, earlier, registry_images):
    subject = registry_images.digest(registry_images.base)
    entry = {"mediaType": mt.MANIFEST, "digest": registry_images.sbom_digest(), "size": 10}
    index = {"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": [entry] * 10_000}
    fake.put_manifest("img/bb", f"sha256-{subject[7:]}", json.dumps(index).encode(), mt.INDEX)
    pull_fails(fake, earlier, "10000 referrers, more than the 64 a pull takes")
    assert not fake.requests("GET", rf"/manifests/{registry_images.sbom_digest()}$")


def test_500_then_success(fake, earlier, registry_images):
    fake.faults.append(fr.status_first(2, 500, r"/manifests/1$"))
    fake.faults.append(fr.status_first(1, 503, r"/blobs/sha256:"))
    out = cli(
        "pull",
        f"docker://{fake.host}/img/bb:1",
        f"{earlier}:got:1",
        "--tls-verify=false",
        env={**FAST, "CHROOTFORGE_REGISTRY_RETRIES": "2"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == registry_images.digest(registry_images.base)
    assert len(fake.requests("GET", r"/manifests/1$")) == 3
    assert oci.verify(earlier) == []
    assert oci.resolve(earlier, "keep:1") and oci.resolve(earlier, "got:1")


def test_push_resumes_a_broken_chunk_at_the_registrys_offset(registry_images, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHROOTFORGE_RETRY_BACKOFF", "0.01")
    images = registry_images
    server = fr.FakeRegistry()
    chunk = 256 << 10
    server.faults.append(fr.cut_patch(after=100_000))
    try:
        options = RegistryOptions(tls_verify=False, chunk_size=chunk, quiet=True)
        result = push(images.layout, images.child, f"docker://{server.host}/up/bb:2", options)
        assert result.digest == images.digest(images.child)
        big = max(images.manifest(images.child)["layers"], key=lambda d: d["size"])
        assert server.repo("up/bb")["blobs"][big["digest"]] == fr.FakeRegistry.read_blob(
            images.layout, big["digest"]
        )
        # after the cut: a status query, then the next PATCH starts exactly where the registry stood
        first = next(p for m, p, _ in server.log if m == "PATCH")  # the one that was cut
        upload = first.split("?")[0].rsplit("/", 1)[-1]
        log = [(m, p, h) for m, p, h in server.log if f"/blobs/uploads/{upload}" in p]
        cut = 0
        assert log[cut + 1][0] == "GET"
        assert log[cut + 2][0] == "PATCH" and log[cut + 2][2]["Content-Range"].startswith("100000-")
        # nothing was sent twice: the registry received each blob byte once
        uploaded = sum(
            len(fr.FakeRegistry.read_blob(images.layout, d)) for d in server.repo("up/bb")["blobs"]
        )
        assert server.received == uploaded
    finally:
        server.stop()


def test_push_retries_after_500(registry_images, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHROOTFORGE_RETRY_BACKOFF", "0.01")
    server = fr.FakeRegistry()
    server.faults.append(fr.status_first(2, 500, r"/blobs/uploads/.+digest=", method="PUT"))
    server.faults.append(fr.status_first(1, 502, r"/manifests/", method="PUT"))
    try:
        out = cli(
            "push",
            f"{registry_images.layout}:{registry_images.child}",
            f"docker://{server.host}/r/bb:2",
            "--tls-verify=false",
            env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
        )
        assert out.returncode == 0, out.stderr
        data, _ = server.repo("r/bb")["manifests"]["2"]
        assert fr.digest_of(data) == registry_images.digest(registry_images.child)
    finally:
        server.stop()


def test_refused_mount_falls_back_to_an_upload(registry_images, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = registry_images
    server = fr.FakeRegistry()
    try:
        options = RegistryOptions(tls_verify=False, quiet=True)
        push(images.layout, images.child, f"docker://{server.host}/a/bb:2", options)
        server.faults.append(fr.status_first(99, 403, r"mount=", method="POST"))
        result = push(images.layout, images.child, f"docker://{server.host}/b/bb:2", options)
        assert (result.blobs_uploaded, result.blobs_mounted) == (3, 0)
        assert len(server.requests("POST", r"^/v2/b/bb/blobs/uploads/\?mount=.+&from=a/bb$")) == 3
        assert result.digest == images.digest(images.child)
    finally:
        server.stop()


def test_progress_on_a_terminal_only(registry_images, tmp_path):
    images = registry_images
    server = fr.FakeRegistry()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    try:
        dest = f"docker://{server.host}/p/bb:2"
        code, shown = cli_on_tty(
            "push", f"{images.layout}:{images.child}", dest, "--tls-verify=false", env=env
        )
        assert code == 0 and f"push {server.host}/p/bb:2:" in shown and "MB/s" in shown
        code, shown = cli_on_tty("pull", dest, f"{tmp_path / 'got'}:bb:2", "--tls-verify=false", env=env)
        assert code == 0 and f"pull {server.host}/p/bb:2:" in shown and "MB/s" in shown
        code, shown = cli_on_tty(
            "-q", "push", f"{images.layout}:{images.child}", dest, "--tls-verify=false", env=env
        )
        assert code == 0 and shown == ""
        out = cli("pull", dest, f"{tmp_path / 'got2'}:bb:2", "--tls-verify=false", env=env)
        assert out.returncode == 0 and "MB/s" not in out.stderr
    finally:
        server.stop()


def test_referrers_api_when_the_registry_has_it(registry_images, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = registry_images
    server = fr.FakeRegistry(referrers_api=True)
    try:
        options = RegistryOptions(tls_verify=False, quiet=True)
        result = push(images.layout, images.base, f"docker://{server.host}/api/bb:1", options)
        assert result.referrers_via == "api" and result.referrers == (images.sbom_digest(),)
        assert not server.requests(None, r"/manifests/sha256-")  # no fallback tag
        pull(f"docker://{server.host}/api/bb:1", tmp_path / "got", "bb:1", options)
        assert server.requests("GET", rf"/referrers/{images.digest(images.base)}$")
        index = json.loads((tmp_path / "got" / "index.json").read_text())
        assert [d["digest"] for d in index["manifests"] if "dev.chrootforge.subject" in d["annotations"]] == [
            images.sbom_digest()
        ]
        assert oci.verify(tmp_path / "got") == []
        # the tag moves to an image without referrers: the old image's SBOM leaves the index
        push(images.layout, images.child, f"docker://{server.host}/api/bb:2", options)
        pull(f"docker://{server.host}/api/bb:2", tmp_path / "got", "bb:1", options)
        index = json.loads((tmp_path / "got" / "index.json").read_text())
        assert [d["digest"] for d in index["manifests"]] == [images.digest(images.child)]
        assert oci.verify(tmp_path / "got") == []
    finally:
        server.stop()


def _serve_variant(fake, images, tag: str, config=None, layers=None) -> None:
    """Serve bb:1 as img/bb:TAG with its config changed (`config`: dict -> dict or bytes) and/or
    its layers replaced (`layers`: [(blob bytes, media type)]); every digest and size is right."""
    repo = fake.repo("img/bb")
    manifest = images.manifest(images.base)
    if config is not None:
        old = json.loads(fake.read_blob(images.layout, manifest["config"]["digest"]))
        new = config(old)
        data = new if isinstance(new, bytes) else json.dumps(new).encode()
        repo["blobs"][fr.digest_of(data)] = data
        manifest = dict(manifest, config=dict(manifest["config"], digest=fr.digest_of(data), size=len(data)))
    if layers is not None:
        for data, _ in layers:
            repo["blobs"][fr.digest_of(data)] = data
        manifest = dict(
            manifest,
            layers=[
                {"mediaType": media, "digest": fr.digest_of(data), "size": len(data)}
                for data, media in layers
            ],
        )
    fake.put_manifest("img/bb", tag, json.dumps(manifest).encode(), mt.MANIFEST)


def _gzip_tar(name: str) -> bytes:
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    return gzip.compress(buf.getvalue(), mtime=0)


def _diff_ids(config: dict, *layers: bytes) -> dict:
    import gzip

    ids = ["sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() for data in layers]
    return dict(config, rootfs={"type": "layers", "diff_ids": ids})


ESCAPE = _gzip_tar("../escaped")


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("diff_id", "diff_id: expected sha256:"),
        ("diff_id count", "'rootfs.diff_ids' has 2 entries for 1 layers"),
        ("no rootfs", "field 'rootfs' must be an object"),
        ("config list", "is a JSON list, not an object"),
        ("config huge", "more than the 4194304 a manifest or config may have"),
        ("config deep", "nests deeper than 64 levels"),
        ("not gzip", "does not decompress"),
        ("escaping entry", "escaped"),
    ],
)
def test_an_invalid_image_is_refused_before_anything_is_stored(
    fake, earlier, registry_images, case, fragment
):
    """pull checks the staged image with verify's own checker: an image verify would refuse never
    reaches the layout."""
    changes = {
        "diff_id": {"config": lambda c: _diff_ids(c, _gzip_tar("other"))},
        "diff_id count": {
            "config": lambda c: dict(c, rootfs={"type": "layers", "diff_ids": c["rootfs"]["diff_ids"] * 2})
        },
        "no rootfs": {"config": lambda c: {k: v for k, v in c.items() if k != "rootfs"}},
        "config list": {"config": lambda c: [c]},
        "config huge": {"config": lambda c: dict(c, pad="x" * (5 << 20))},
        "config deep": {
            "config": lambda c: (json.dumps(c)[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}").encode()
        },
        "not gzip": {"layers": [(b"\x1f\x8b\x08 not really gzip", mt.LAYER_GZIP)]},
        "escaping entry": {"layers": [(ESCAPE, mt.LAYER_GZIP)], "config": lambda c: _diff_ids(c, ESCAPE)},
    }
    _serve_variant(fake, registry_images, "bad", **changes[case])
    stderr = pull_fails(fake, earlier, fragment, ref="img/bb:bad")
    assert f"{fake.host}/img/bb:bad is not a valid image" in stderr


def test_a_damaged_blob_already_in_the_layout_is_not_reused(fake, earlier, registry_images):
    out = cli("pull", f"docker://{fake.host}/img/bb:1", f"{earlier}:first:1", "--tls-verify=false", env=FAST)
    assert out.returncode == 0, out.stderr
    layer = registry_images.manifest(registry_images.base)["layers"][0]["digest"]
    path = earlier / "blobs" / "sha256" / layer[7:]
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    path.write_bytes(bytes(damaged))
    before = snapshot(earlier)
    out = cli("pull", f"docker://{fake.host}/img/bb:1", f"{earlier}:second:1", "--tls-verify=false", env=FAST)
    assert out.returncode == 1, out.stderr
    one_error_line(out.stderr, "is not a valid image")
    assert layer in out.stderr
    assert snapshot(earlier) == before


def test_a_blob_removed_by_gc_during_the_pull_is_never_published(fake, earlier, registry_images, tmp_path):
    """The pull reuses a blob the layout holds unreferenced; gc removes it between the check and
    the publication: the tag must not appear (verify would find a dangling reference)."""
    options = RegistryOptions(tls_verify=False, quiet=True, retries=0)
    pull(f"docker://{fake.host}/img/bb:1", earlier, "first:1", options)
    index = json.loads((earlier / "index.json").read_text())
    index["manifests"] = [d for d in index["manifests"] if d["annotations"].get(mt.REF_NAME) == "keep:1"]
    (earlier / "index.json").write_text(json.dumps(index))  # first:1's blobs are now garbage
    before = (earlier / "index.json").read_bytes()
    with pytest.raises(CfError, match="left .* during the pull"):
        pull(f"docker://{fake.host}/img/bb:1", earlier, "got:1", options, accept=lambda _: oci_gc(earlier))
    assert (earlier / "index.json").read_bytes() == before
    assert oci.verify(earlier) == []


@pytest.mark.parametrize(
    "media_type, fragment",
    [
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", "a Docker schema 1 manifest"),
        ("application/vnd.example.future+json", "unknown manifest media type"),
    ],
)
def test_an_unsupported_manifest_type_stores_nothing(fake, earlier, registry_images, media_type, fragment):
    doc = dict(registry_images.manifest(registry_images.base), mediaType=media_type)
    fake.put_manifest("img/bb", "odd", json.dumps(doc).encode(), media_type)
    pull_fails(fake, earlier, fragment, ref="img/bb:odd")


def test_a_foreign_docker_layer_stores_nothing(fake, earlier, registry_images):
    doc = registry_images.manifest(registry_images.base)
    foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    doc = dict(
        doc,
        mediaType="application/vnd.docker.distribution.manifest.v2+json",
        config=dict(doc["config"], mediaType="application/vnd.docker.container.image.v1+json"),
        layers=[dict(doc["layers"][0], mediaType=foreign)],
    )
    fake.put_manifest("img/bb", "foreign", json.dumps(doc).encode(), doc["mediaType"], registry_images.layout)
    stderr = pull_fails(fake, earlier, f"unknown media type '{foreign}'", ref="img/bb:foreign")
    assert "foreign (non-distributable) layer" in stderr


def test_a_deeply_nested_manifest_is_one_line(fake, earlier):
    raw = b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    fake.repo("img/bb")["manifests"]["deep"] = (raw, mt.MANIFEST)
    pull_fails(
        fake, earlier, f"the manifest {fake.host}/img/bb:deep nests deeper than 64 levels", ref="img/bb:deep"
    )


def test_a_plain_http_registry_is_told_about_tls_verify_false(fake, earlier):
    stderr = pull_fails(fake, earlier, "it answered in plain HTTP", tls_verify=True)
    assert "hint: --tls-verify=false lets chrootforge use plain HTTP" in stderr
    assert "ca.crt" not in stderr  # installing a CA cannot help a server without TLS
