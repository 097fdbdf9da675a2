"""What CI users do (issue 11), with real builds, a real registry (docker-registry over TLS with
htpasswd), real skopeo and a real binhost (`python3 -m http.server` over a runner's binpkgs cache):

- two runners, one registry: runner A (the unprivileged user; its own HOME, XDG cache and layout)
  builds examples/world with --remote-cache and --push; runner B (root when the suite runs as root,
  else the user again, with a fresh HOME, cache and layout) builds the same: every image is pulled,
  no emerge runs (no stage is even extracted), and the manifest digests, states and SBOMs equal A's;
- binhost: B rebuilds the leaf with --force, an empty binpkgs cache and A's binpkgs as the binhost:
  only binary merges, and the image equals A's (its package.provided came from pulled parents);
- re-push: A's second `build --push` uploads no blob bytes.
- signing (issue 21): A signs what it pushes and stores with a sigstore key (cosign's format);
  B takes cache entries only under a policy that wants that key's signature; every image carries
  its provenance (in-toto/SLSA), signed by A in a DSSE envelope that openssl verifies with
  cosign.pub; B's pulled layout and its export carry both.
The full world (busybox, glibc, s6, hello) is built once, by A.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity, shared_dir
from tests.helpers.registry import PASSWORD, USER, free_port
from tests.helpers.rootfs import remove_as
from tests.helpers.signing import sigstore_signed, write_policy, write_registries_d
from tests.helpers.world_build import namespace
from tests.pipeline import provenance_schema
from tests.registry.checks import no_secrets, one_error_line

pytestmark = pytest.mark.slow
IMAGES = ["busybox", "glibc", "s6", "hello"]
PREFIX = "localhost/chrootforge"


@dataclass
class Runner:
    """One CI runner: an identity with its own HOME, XDG cache and layout."""

    identity: object
    tmp: Path
    ns: Path
    env: dict
    flags: list[str]
    reports: list[dict] = field(default_factory=list)
    stderrs: list[str] = field(default_factory=list)  # each build's, for the assertion messages

    @property
    def layout(self) -> Path:
        return self.tmp / "layout"

    @property
    def cache(self) -> Path:
        return self.tmp / "cache" / "chrootforge"

    def build(
        self, *extra: str, target: str | None = None
    ) -> tuple[subprocess.CompletedProcess, dict | None]:
        proc = self.identity.cf(
            "build",
            "--json",
            "--layout",
            str(self.layout),
            *self.flags,
            *extra,
            target or str(self.ns),
            env=self.env,
            timeout=1200,
        )
        no_secrets(proc.stdout, proc.stderr)
        report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
        self.reports.append(report)
        self.stderrs.append(proc.stderr)
        return proc, report

    def digests(self) -> dict[str, str]:
        index = json.loads((self.layout / "index.json").read_text())
        names = {
            m["annotations"].get("org.opencontainers.image.ref.name"): m["digest"] for m in index["manifests"]
        }
        return {image: names[f"{PREFIX}/{image}:latest"] for image in IMAGES}

    def state(self, image: str) -> dict:
        return json.loads((self.layout.parent / "layout.build" / "state" / f"{image}.json").read_text())


def _runner(identity, ns: Path, registry, cert_dir: Path, repo: str, env: dict) -> Runner:
    tmp = identity.mkdtemp("dist.")
    for sub in ("home", "runtime"):
        (tmp / sub).mkdir(mode=0o700)
        if os.getuid() == 0:
            os.chown(tmp / sub, identity.uid, identity.gid)
    env = {
        **env,
        "HOME": str(tmp / "home"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "XDG_RUNTIME_DIR": str(tmp / "runtime"),
        "SOURCE_DATE_EPOCH": "",
    }
    flags = [
        "--remote-cache",
        f"docker://{registry.host}/{repo}-cache",
        "--cert-dir",
        str(cert_dir),
        "--creds",
        f"{USER}:{PASSWORD}",
    ]
    return Runner(identity, tmp, ns, env, flags)


@pytest.fixture(scope="module")
def world(world_inputs, world_repo, htpasswd_registry):
    """examples/world in a world-readable folder, pushing to a repository of its own."""
    repo = f"dist{secrets.token_hex(4)}"
    base = shared_dir("dist-ns.")
    registry = f'[output]\nregistry = "docker://{htpasswd_registry.host}/{repo}"\n'
    # the busybox -> glibc -> s6 -> hello chain (greeter, a second leaf, only adds time here)
    ns = namespace(
        base, world_repo, drop=("greeter",), edit=lambda text: text.replace("[output]\n", registry)
    )
    for dirpath, _dirs, files in os.walk(base):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    yield ns, repo
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def signing(world, htpasswd_registry, signing_keys):
    """registries.d (sigstore attachments on for the registry) and B's policy for the cache."""
    _, repo = world
    base = shared_dir("dist-sign.")
    regd = write_registries_d(base / "registries.d", htpasswd_registry.host, None, attachments=True)
    policy = write_policy(
        base / "policy.json",
        {f"{htpasswd_registry.host}/{repo}-cache": [sigstore_signed(signing_keys.cosign_pub)]},
        default=[{"type": "insecureAcceptAnything"}],
    )
    flags = [
        "--sign-by-sigstore-private-key",
        str(signing_keys.cosign_key),
        "--sign-passphrase-file",
        str(signing_keys.passphrase),
    ]
    yield {"regd": regd, "policy": policy, "flags": flags, "base": base}
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def runner_a(world, world_inputs, htpasswd_registry, cert_dirs, signing):
    ns, repo = world
    a = _runner(get_identity("user"), ns, htpasswd_registry, cert_dirs["ca"], repo, world_inputs.env())
    a.flags += ["--registries.d", str(signing["regd"]), *signing["flags"]]
    proc, _ = a.build("--push")
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-5000:]}"
    yield a
    remove_as(a.identity, a.tmp)


@pytest.fixture(scope="module")
def runner_b(runner_a, world, world_inputs, htpasswd_registry, cert_dirs, signing):
    ns, repo = world
    identity = get_identity("root") if os.getuid() == 0 else get_identity("user")
    b = _runner(identity, ns, htpasswd_registry, cert_dirs["ca"], repo, world_inputs.env())
    b.flags += ["--registries.d", str(signing["regd"]), "--policy", str(signing["policy"])]
    proc, _ = b.build("--push")
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-5000:]}"
    yield b
    remove_as(b.identity, b.tmp)


def _skopeo(*args: str, cert_dir: Path) -> dict:
    proc = subprocess.run(
        ["skopeo", "inspect", "--cert-dir", str(cert_dir), "--creds", f"{USER}:{PASSWORD}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- runner A: built, stored in the cache, pushed --------------------------------------------------
def test_a_builds_stores_and_pushes(runner_a, world, htpasswd_registry, cert_dirs):
    report = runner_a.reports[0]
    _, repo = world
    assert [(r["image"], r["status"], r["cache"]) for r in report["images"]] == [
        (image, "built", "stored") for image in IMAGES
    ]
    host = htpasswd_registry.host
    for r in report["images"]:
        assert [p["reference"] for p in r["pushed"]] == [f"docker://{host}/{repo}/{r['image']}:latest"]
        # the SBOM, the build state, the provenance and its signed envelope
        assert r["pushed"][0]["digest"] == r["digest"] and r["pushed"][0]["referrers"] == 4
        assert r["pushed"][0]["signed"]
        # real clients see what was pushed: the image under its name, and the cache entry by key
        pushed = _skopeo(f"docker://{host}/{repo}/{r['image']}:latest", cert_dir=cert_dirs["ca"])
        assert pushed["Digest"] == r["digest"]
        key = runner_a.state(r["image"])["key"]
        cached = _skopeo(f"docker://{host}/{repo}-cache:cf-{key.split(':')[1]}", cert_dir=cert_dirs["ca"])
        assert cached["Digest"] == r["digest"] and cached["Labels"]["org.chrootforge.build.engine-key"] == key
    # the referrers (fallback tag, distribution 2.8): the SBOM and the build state
    hello = report["images"][-1]["digest"]
    index = _skopeo(
        "--raw", f"docker://{host}/{repo}/hello:{hello.replace(':', '-')}", cert_dir=cert_dirs["ca"]
    )
    assert sorted(m["artifactType"] for m in index["manifests"]) == [
        "application/spdx+json",
        "application/vnd.chrootforge.build.engine-state.v1+json",
        "application/vnd.in-toto+json",
        "application/vnd.in-toto.provenance+dsse",
    ]


# -- runner B: everything pulled, nothing built ---------------------------------------------------
def test_b_pulls_every_image_and_builds_nothing(runner_a, runner_b):
    report = runner_b.reports[0]
    assert [r["status"] for r in report["images"]] == ["pulled"] * len(IMAGES), (
        f"{[(r['image'], r['status'], r.get('cache')) for r in report['images']]}\n{runner_b.stderrs[0][-6000:]}"
    )
    assert all(r["cache"].startswith("docker://") and ":cf-" in r["cache"] for r in report["images"])
    assert runner_b.digests() == runner_a.digests()
    assert not (runner_b.layout.parent / "layout.build" / "logs").exists()  # no step ran
    assert not (runner_b.cache / "stages").exists()  # no stage was even extracted
    assert not (runner_b.cache / "binpkgs").exists()
    for image in IMAGES:
        a, b = runner_a.state(image), runner_b.state(image)
        assert {k: v for k, v in b.items() if k not in ("seconds", "sources")} == {
            k: v for k, v in a.items() if k not in ("seconds", "sources")
        }
        assert b["sources"] == {
            "remote-cache": next(r["cache"] for r in report["images"] if r["image"] == image)
        }
        sbom = runner_b.layout.parent / "layout.build" / "sbom" / f"{image}.spdx.json"
        assert (
            sbom.read_bytes()
            == (runner_a.layout.parent / "layout.build" / "sbom" / f"{image}.spdx.json").read_bytes()
        )
    proc = runner_b.identity.cf("verify", str(runner_b.layout), env=runner_b.env)
    assert proc.returncode == 0, proc.stderr
    proc = runner_b.identity.cf("sbom", f"{runner_b.layout}:{PREFIX}/hello:latest", env=runner_b.env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["packages"]
    # B pushed what it pulled: nothing to upload
    assert all(p["uploaded_bytes"] == 0 for r in report["images"] for p in r["pushed"])


# -- the binhost -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def binhost_server(runner_a):
    """`python3 -m http.server` over runner A's binpkgs cache (every binpkgs key a directory)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port),
            "--directory",
            str(runner_a.cache / "binpkgs"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", proc
    proc.terminate()
    proc.wait(10)


def _binhost_leaf(runner: Runner, runner_a: Runner, url: str) -> None:
    """`build --force NS/hello --binhost URL` with an empty binpkgs cache: only binary merges."""
    assert not list(runner.cache.glob("binpkgs/*/*/*/*.gpkg.tar"))  # it compiled nothing, has none
    proc, report = runner.build("--force", "--binhost", url, target=str(runner.ns / "hello"))
    assert proc.returncode == 0, proc.stderr[-5000:]
    status = {r["image"]: r["status"] for r in report["images"]}
    assert status == {"busybox": "up-to-date", "glibc": "up-to-date", "s6": "up-to-date", "hello": "built"}
    hello = next(r for r in report["images"] if r["image"] == "hello")
    assert "binhost" in hello["steps"] and "emerge" in hello["steps"]
    logs = runner.layout.parent / "layout.build" / "logs" / "hello"
    log = "".join(p.read_text() for p in [logs / "emerge.log", *sorted(logs.glob("packages/*.log"))])
    assert log.count(">>> Emerging binary") >= 1 and "app-misc/hello-1.0" in log
    assert ">>> Emerging (" not in log and ">>> Compiling source" not in log
    assert "binary package(s) from http://127.0.0.1" in proc.stderr
    # the same image as A's: its package.provided came from the pulled parents' build state
    assert hello["digest"] == runner_a.digests()["hello"]
    # what came from the binhost stays in the mirror; the runner's own PKGDIR holds what it compiled
    assert list(runner.cache.glob("binhost/*/*/app-misc/hello/*.gpkg.tar"))
    assert not list(runner.cache.glob("binpkgs/*/*/*/*.gpkg.tar"))
    pretend = (runner.layout.parent / "layout.build" / "logs" / "hello" / "binhost.log").read_text()
    assert "file:///var/cache/chrootforge-binhost/app-misc/hello/" in pretend


def test_binhost_leaf_takes_only_binary_packages(runner_a, runner_b, binhost_server):
    _binhost_leaf(runner_b, runner_a, binhost_server[0])


def test_binhost_leaf_rootless(
    runner_a, runner_b, world, world_inputs, htpasswd_registry, cert_dirs, binhost_server
):
    """The same for the unprivileged user (when B was root): parents from the cache, leaf from the binhost."""
    if not runner_b.identity.is_root:
        pytest.skip("runner B already was the unprivileged user")
    ns, repo = world
    c = _runner(get_identity("user"), ns, htpasswd_registry, cert_dirs["ca"], repo, world_inputs.env())
    try:
        proc, report = c.build(target=str(ns / "s6"))
        assert proc.returncode == 0 and [r["status"] for r in report["images"]] == ["pulled"] * 3, proc.stderr
        _binhost_leaf(c, runner_a, binhost_server[0])
    finally:
        remove_as(c.identity, c.tmp)


# -- re-push ------------------------------------------------------------------------------------------
def test_a_repush_uploads_no_blob_bytes(runner_a, htpasswd_registry):
    before = len(htpasswd_registry.access_log())
    proc, report = runner_a.build("--push")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(r["status"], r["cache"]) for r in report["images"]] == [
        ("up-to-date", "in the remote cache")
    ] * 4
    assert all(p["uploaded_bytes"] == 0 for r in report["images"] for p in r["pushed"])
    assert len([p for r in report["images"] for p in r["pushed"]]) == len(IMAGES)
    uploads = [
        entry
        for entry in htpasswd_registry.access_log()[before:]
        if "/blobs/uploads" in entry[1] and entry[0] in ("POST", "PATCH", "PUT")
    ]
    assert uploads == []


# -- signing and provenance (issue 21) --------------------------------------------------------------
def test_b_took_only_signed_cache_entries_and_a_foreign_key_is_refused(
    runner_a, runner_b, world, htpasswd_registry, cert_dirs, signing, signing_keys
):
    """B's policy wants cosign.pub's signature on the cache: it pulled every image (above), so
    every entry A stored was signed; a policy naming another key refuses them, in one line."""
    _, repo = world
    other = write_policy(
        signing["base"] / "other.json",
        {f"{htpasswd_registry.host}/{repo}-cache": [sigstore_signed(signing_keys.other_pub)]},
    )
    key = runner_a.state("busybox")["key"]
    proc = runner_b.identity.cf(
        "pull",
        f"docker://{htpasswd_registry.host}/{repo}-cache:cf-{key.split(':')[1]}",
        f"{runner_b.tmp / 'foreign'}:x",
        "--cert-dir",
        str(cert_dirs["ca"]),
        "--creds",
        f"{USER}:{PASSWORD}",
        "--policy",
        str(other),
        "--registries.d",
        str(signing["regd"]),
        env=runner_b.env,
    )
    assert proc.returncode == 1
    one_error_line(proc.stderr, "the policy's key does not verify")
    assert not (runner_b.tmp / "foreign").exists()


def _verify_envelope(runner: Runner, ref: str, statement: bytes, signing_keys, keyid: str) -> None:
    """The image's DSSE envelope signs exactly `statement`, by cosign.pub (checked by openssl)."""
    import subprocess as sp

    from chrootforge.registry.signing import dsse

    shown = runner.identity.cf("provenance", "--envelope", f"{runner.layout}:{ref}", env=runner.env)
    assert shown.returncode == 0, shown.stderr
    payload_type, payload, sigs = dsse.decode(shown.stdout.encode())
    assert payload_type == "application/vnd.in-toto+json" and payload == statement
    assert [k for k, _ in sigs] == [keyid]
    work = runner.tmp / f"dsse-{ref.split('/')[-1].replace(':', '-')}"
    work.mkdir(exist_ok=True)
    (work / "pae").write_bytes(dsse.pae(payload_type, payload))
    (work / "sig").write_bytes(sigs[0][1])
    verify = sp.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(signing_keys.cosign_pub),
            "-signature",
            str(work / "sig"),
            str(work / "pae"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0 and "Verified OK" in verify.stdout, verify.stderr


def test_provenance_travels_valid_and_signed(runner_a, runner_b, signing_keys):
    import hashlib

    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(signing_keys.cosign_pub.read_bytes())
    keyid = (
        "sha256:"
        + hashlib.sha256(
            pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest()
    )
    for image in IMAGES:
        ref = f"{PREFIX}/{image}:latest"
        written = (
            runner_a.layout.parent / "layout.build" / "provenance" / f"{image}.intoto.json"
        ).read_bytes()
        doc = json.loads(written)
        provenance_schema.slsa_provenance_v1(doc)
        assert doc["subject"][0]["digest"]["sha256"] == runner_a.digests()[image].split(":")[1]
        assert str(runner_a.tmp) not in written.decode() and "/home/" not in written.decode()
        _verify_envelope(runner_a, ref, written, signing_keys, keyid)  # A signed what it built
        # B pulled the image: its provenance and envelope came along (unless B rebuilt it since:
        # the binhost test rebuilds hello, which then has B's own, unsigned, provenance)
        shown = runner_b.identity.cf("provenance", f"{runner_b.layout}:{ref}", env=runner_b.env)
        assert shown.returncode == 0, shown.stderr
        theirs = json.loads(shown.stdout)
        assert theirs["subject"] == doc["subject"]
        if "binhost" in theirs["predicate"]["buildDefinition"]["externalParameters"]:
            assert image == "hello"
            envelope = runner_b.identity.cf(
                "provenance", "--envelope", f"{runner_b.layout}:{ref}", env=runner_b.env
            )
            assert envelope.returncode == 1  # A's envelope does not sign B's statement: it went
        else:
            assert theirs == doc
            _verify_envelope(runner_b, ref, written, signing_keys, keyid)
    hello = json.loads(
        (runner_a.layout.parent / "layout.build" / "provenance" / "hello.intoto.json").read_text()
    )
    deps = {d["name"]: d for d in hello["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps[f"{PREFIX}/s6:latest"]["digest"]["sha256"] == runner_a.digests()["s6"].split(":")[1]


def test_export_carries_the_provenance(runner_b):
    import tarfile

    archive = runner_b.tmp / "s6.oci.tar"
    proc = runner_b.identity.cf(
        "export", f"{runner_b.layout}:{PREFIX}/s6:latest", "-o", str(archive), env=runner_b.env
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        top = json.load(tar.extractfile(f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
    types = sorted(m.get("artifactType", "") for m in top["manifests"])
    assert "application/vnd.in-toto+json" in types and "application/vnd.in-toto.provenance+dsse" in types
