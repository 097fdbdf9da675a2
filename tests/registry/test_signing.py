"""Signed pushes and policy-checked pulls against a real registry (docker-registry, TLS,
htpasswd), decided by real clients, as root and as the unprivileged user:

- OpenPGP: `push --sign-by` writes the lookaside store; `skopeo standalone-verify` accepts the
  signature; `skopeo copy --policy` and `podman pull --signature-policy` with signedBy accept the
  image, refuse it unsigned and signed by another key; so does `chrootforge pull --policy`;
- sigstore: `push --sign-by-sigstore-private-key` (cosign's encrypted key, with a passphrase file)
  writes the sha256-<hex>.sig tag; skopeo copies it out as a sigstore signature, openssl verifies
  its ECDSA signature with cosign.pub, podman reads the attachments; `chrootforge pull --policy`
  with sigstoreSigned accepts it and refuses unsigned, foreign-key and replayed signatures.
  (Debian's podman and skopeo are built with sigstore disabled: the test that lets podman enforce
  sigstoreSigned skips there, saying so.)
- attacks: a signature of another digest (a replayed .sig tag, a swapped lookaside file), a
  signature by an untrusted key, a policy with unknown keys: each one line, nothing stored;
- failures: a wrong passphrase, a missing key, an unreachable lookaside: one line, nothing pushed
  or pulled.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.oci import Podman
from tests.helpers.registry import PASSWORD, USER
from tests.helpers.signing import (
    PASSPHRASE,
    gnupg_home,
    signed_by,
    sigstore_signed,
    stop_identity_agent,
    write_policy,
    write_registries_d,
)
from tests.registry.checks import no_secrets, one_error_line

CREDS = f"{USER}:{PASSWORD}"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


def need(*tools: str) -> None:
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")


@dataclasses.dataclass
class Setup:
    """One identity's repositories, keys and configuration; three pushes made once:
    `signed` (bb:1, both signatures), `unsigned` (bb:2) and `foreign` (bb:2 signed by the other
    keys, under another repository)."""

    identity: object
    base: Path
    host: str
    ns: str  # the repository namespace of this identity
    gnupghome: Path
    regd: Path
    lookaside: Path
    cert_dir: Path
    keys: object
    images: object

    def ref(self, name: str) -> str:
        return f"{self.host}/{self.ns}/{name}"

    @property
    def env(self) -> dict:
        return {"GNUPGHOME": str(self.gnupghome)}

    def cf(self, *args: str):
        proc = self.identity.cf(*args, env=self.env)
        no_secrets(proc.stdout, proc.stderr)
        assert PASSPHRASE not in proc.stdout + proc.stderr  # nor the signing key's passphrase
        return proc

    def push(self, tag: str, name: str, *sign: str):
        return self.cf(
            "push",
            f"{self.images.layout}:{tag}",
            f"docker://{self.ref(name)}",
            "--cert-dir",
            str(self.cert_dir),
            "--creds",
            CREDS,
            "--registries.d",
            str(self.regd),
            *sign,
        )

    def pull(self, name: str, policy: Path, layout: Path | None = None, regd: Path | None = None):
        layout = (
            layout
            or self.base / f"pulled-{hashlib.sha256(f'{policy}|{name}|{regd}'.encode()).hexdigest()[:8]}"
        )
        return self.cf(
            "pull",
            f"docker://{self.ref(name)}",
            f"{layout}:x",
            "--cert-dir",
            str(self.cert_dir),
            "--creds",
            CREDS,
            "--policy",
            str(policy),
            "--registries.d",
            str(regd or self.regd),
        ), layout

    def skopeo(self, *args: str, policy: Path | None = None, regd: Path | None = None):
        globals_ = ["--registries.d", str(regd or self.regd)]
        if policy is not None:
            globals_ += ["--policy", str(policy)]
        return self.identity.run(["skopeo", *globals_, *args], env=self.env, timeout=120)

    def copy_out(self, name: str, policy: Path, regd: Path | None = None):
        out = self.base / f"copy-{hashlib.sha256(str(policy).encode() + name.encode()).hexdigest()[:8]}"
        return self.skopeo(
            "copy",
            "--src-cert-dir",
            str(self.cert_dir),
            "--src-creds",
            CREDS,
            f"docker://{self.ref(name)}",
            f"dir:{out}",
            policy=policy,
            regd=regd,
        ), out

    def policy(self, name: str, *requirements: dict) -> Path:
        return write_policy(self.base / f"{name}.json", {f"{self.host}/{self.ns}": list(requirements)})

    def manifest_digest(self, name: str) -> str:
        raw = self.skopeo(
            "inspect",
            "--raw",
            "--cert-dir",
            str(self.cert_dir),
            "--creds",
            CREDS,
            f"docker://{self.ref(name)}",
        )
        assert raw.returncode == 0, raw.stderr
        return "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest()


def _signing_flags(keys, which: str) -> list[str]:
    if which == "trusted":
        return [
            "--sign-by",
            keys.trusted_fpr,
            "--sign-by-sigstore-private-key",
            str(keys.cosign_key),
            "--sign-passphrase-file",
            str(keys.passphrase),
        ]
    return ["--sign-by", keys.other_fpr, "--sign-by-sigstore-private-key", str(keys.other_key)]


@pytest.fixture(scope="module", params=["root", "user"])
def setup(request, htpasswd_registry, registry_images, cert_dirs, signing_keys):
    need("skopeo", "gpg")
    identity = get_identity(request.param)
    base = identity.mkdtemp("sign.")
    s = Setup(
        identity=identity,
        base=base,
        host=htpasswd_registry.host,
        ns=f"sign-{identity.name}",
        gnupghome=gnupg_home(identity, signing_keys, base),
        regd=base / "registries.d",
        lookaside=base / "lookaside",
        cert_dir=cert_dirs["ca"],
        keys=signing_keys,
        images=registry_images,
    )
    write_registries_d(s.regd, f"{s.host}/{s.ns}", s.lookaside, attachments=True)
    for tag, name, which in (
        ("bb:1", "app:signed", "trusted"),
        ("bb:2", "app:unsigned", None),
        ("bb:2", "foreign:1", "other"),
    ):
        proc = s.push(tag, name, *(_signing_flags(signing_keys, which) if which else []))
        assert proc.returncode == 0, proc.stderr
    yield s
    stop_identity_agent(identity, s.gnupghome)
    shutil.rmtree(base, ignore_errors=True)


def _refused(
    s: Setup, name: str, policy: Path, fragment: str, code: int = 1, regd: Path | None = None
) -> None:
    """chrootforge pull refuses `name` under `policy`: one line, exit `code`, nothing stored."""
    pulled, layout = s.pull(name, policy, regd=regd)
    assert pulled.returncode == code, pulled.stderr
    one_error_line(pulled.stderr, fragment)
    assert not layout.exists()


def _signature_file(s: Setup, name: str, digest: str, n: int = 1) -> Path:
    repo = name.split(":")[0]
    return s.lookaside / f"{s.ns}/{repo}@sha256={digest[7:]}" / f"signature-{n}"


def _podman_home(s: Setup, name: str) -> Path:
    """A HOME for podman whose ~/.config/containers/registries.d is the test's (podman has no
    flag for it), owned by the identity."""
    home = s.base / name
    shutil.copytree(s.regd, home / ".config" / "containers" / "registries.d")
    subprocess.run(["chown", "-R", f"{s.identity.uid}:{s.identity.gid}", str(home)], check=True)
    return home


# -- OpenPGP ---------------------------------------------------------------------------------------
def test_skopeo_standalone_verify_accepts_the_signature(setup):
    s = setup
    digest = s.images.digest(s.images.base)
    raw = s.skopeo(
        "inspect", "--raw", "--cert-dir", str(s.cert_dir), "--creds", CREDS, f"docker://{s.ref('app:signed')}"
    )
    manifest = s.base / "manifest.json"
    manifest.write_text(raw.stdout)
    signature = _signature_file(s, "app:signed", digest)
    verified = s.skopeo(
        "standalone-verify", str(manifest), s.ref("app:signed"), s.keys.trusted_fpr, str(signature)
    )
    assert verified.returncode == 0, verified.stderr
    assert f"Signature verified, digest {digest}" in verified.stdout
    # the signature names the identity it was pushed as: another one fails
    wrong = s.skopeo(
        "standalone-verify", str(manifest), s.ref("app:other"), s.keys.trusted_fpr, str(signature)
    )
    assert wrong.returncode != 0


def test_skopeo_and_chrootforge_enforce_signed_by(setup):
    s = setup
    policy = s.policy("gpg", signed_by(s.keys.trusted_gpg))
    copied, out = s.copy_out("app:signed", policy)
    assert copied.returncode == 0, copied.stderr
    assert (out / "manifest.json").exists()
    pulled, layout = s.pull("app:signed", policy)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == s.images.digest(s.images.base)
    assert s.identity.cf("verify", str(layout)).returncode == 0

    for name in ("app:unsigned", "foreign:1"):
        refused, _ = s.copy_out(name, s.policy(f"gpg-{name[:3]}", signed_by(s.keys.trusted_gpg)))
        assert refused.returncode != 0 and "Source image rejected" in refused.stderr, refused.stderr
    # chrootforge: one line each, nothing stored
    _refused(s, "app:unsigned", policy, "the lookaside store has none")
    foreign_policy = write_policy(
        s.base / "gpg-foreign.json", {f"{s.host}/{s.ns}/foreign": [signed_by(s.keys.trusted_gpg)]}
    )
    _refused(s, "foreign:1", foreign_policy, "signed by a key the policy does not name")


def test_podman_enforces_signed_by(setup):
    need("podman")
    s = setup
    home = _podman_home(s, "podman-home")
    policy = s.policy("podman-gpg", signed_by(s.keys.trusted_gpg))
    podman = Podman(s.identity, s.identity.mkdtemp("podman."))
    try:
        pull = [
            "pull",
            "--signature-policy",
            str(policy),
            "--cert-dir",
            str(s.cert_dir),
            "--creds",
            CREDS,
        ]
        ok = podman.run(*pull, f"docker://{s.ref('app:signed')}", env={"HOME": str(home)})
        assert ok.returncode == 0, ok.stderr
        refused = podman.run(*pull, f"docker://{s.ref('app:unsigned')}", env={"HOME": str(home)})
        assert refused.returncode != 0 and "Source image rejected" in refused.stderr, refused.stderr
        assert "A signature was required, but no signature exists" in refused.stderr
        # a policy with an unknown key: podman refuses it too
        bad = s.base / "podman-unknown.json"
        bad.write_text(json.dumps({"default": [{**signed_by(s.keys.trusted_gpg), "keyPaht": "/x"}]}))
        bad.chmod(0o644)
        refused = podman.run(
            *pull[:1],
            "--signature-policy",
            str(bad),
            *pull[3:],
            f"docker://{s.ref('app:signed')}",
            env={"HOME": str(home)},
        )
        assert refused.returncode != 0 and "keyPaht" in refused.stderr, refused.stderr
        # the image also carries our sigstore attachment (use-sigstore-attachments is on): podman
        # fetched and parsed the sha256-<hex>.sig manifest and its layers to get there
    finally:
        podman.cleanup()


# -- sigstore --------------------------------------------------------------------------------------
def _sigstore_signatures(out: Path) -> list[dict]:
    """The sigstore signatures skopeo copied into a dir: image (its own sigstore-json format)."""
    found = []
    for path in sorted(out.glob("signature-*")):
        data = path.read_bytes()
        if data.startswith(b"\x00sigstore-json\n"):
            found.append(json.loads(data[len(b"\x00sigstore-json\n") :]))
    return found


def test_skopeo_reads_the_sig_tag_and_openssl_verifies_it(setup):
    need("openssl")
    s = setup
    accept = write_policy(s.base / "accept.json", {}, default=[{"type": "insecureAcceptAnything"}])
    copied, out = s.copy_out("app:signed", accept)
    assert copied.returncode == 0, copied.stderr
    sigs = _sigstore_signatures(out)
    assert len(sigs) == 1 and sigs[0]["mimeType"] == SIMPLESIGNING
    payload = base64.b64decode(sigs[0]["payload"])
    claim = json.loads(payload)["critical"]
    assert claim["type"] == "cosign container image signature"
    assert claim["image"]["docker-manifest-digest"] == s.images.digest(s.images.base)
    assert claim["identity"]["docker-reference"] == s.ref("app:signed")
    (s.base / "payload").write_bytes(payload)
    (s.base / "sig.der").write_bytes(
        base64.b64decode(sigs[0]["annotations"]["dev.cosignproject.cosign/signature"])
    )
    for pub, expected in ((s.keys.cosign_pub, 0), (s.keys.other_pub, 1)):
        verify = subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(pub),
                "-signature",
                str(s.base / "sig.der"),
                str(s.base / "payload"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == expected, verify.stdout + verify.stderr
    assert (
        "Verified OK"
        in subprocess.run(
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(s.keys.cosign_pub),
                "-signature",
                str(s.base / "sig.der"),
                str(s.base / "payload"),
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )


def test_chrootforge_enforces_sigstore_signed(setup):
    s = setup
    policy = s.policy("sigstore", sigstore_signed(s.keys.cosign_pub))
    pulled, layout = s.pull("app:signed", policy)
    assert pulled.returncode == 0, pulled.stderr
    _refused(s, "app:unsigned", policy, "the registry holds no sigstore signature of this digest")
    foreign = write_policy(
        s.base / "sig-foreign.json", {f"{s.host}/{s.ns}/foreign": [sigstore_signed(s.keys.cosign_pub)]}
    )
    _refused(s, "foreign:1", foreign, "the policy's key does not verify")
    # without use-sigstore-attachments the .sig tag is not read (as for podman)
    regd = write_registries_d(s.base / "regd-noattach", f"{s.host}/{s.ns}", s.lookaside, attachments=False)
    _refused(s, "app:signed", policy, "does not enable use-sigstore-attachments", regd=regd)


def test_podman_enforces_sigstore_signed(setup):
    need("podman")
    s = setup
    home = _podman_home(s, "podman-home-sig")
    policy = s.policy("podman-sig", sigstore_signed(s.keys.cosign_pub))
    podman = Podman(s.identity, s.identity.mkdtemp("podman."))
    try:
        pull = ["pull", "--signature-policy", str(policy), "--cert-dir", str(s.cert_dir), "--creds", CREDS]
        ok = podman.run(*pull, f"docker://{s.ref('app:signed')}", env={"HOME": str(home)})
        if "sigstore disabled" in ok.stderr:
            pytest.skip(
                f"this podman cannot verify sigstore signatures: {ok.stderr.strip().splitlines()[-1]}"
            )
        assert ok.returncode == 0, ok.stderr
        refused = podman.run(*pull, f"docker://{s.ref('app:unsigned')}", env={"HOME": str(home)})
        assert refused.returncode != 0 and "Source image rejected" in refused.stderr, refused.stderr
    finally:
        podman.cleanup()


# -- attacks ---------------------------------------------------------------------------------------
def _put(s: Setup, repo: str, reference: str, data: bytes, media_type: str) -> None:
    import requests

    resp = requests.put(
        f"https://{s.host}/v2/{repo}/manifests/{reference}",
        data=data,
        auth=(USER, PASSWORD),
        verify=str(s.cert_dir / "ca.crt"),
        headers={"Content-Type": media_type},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text


def _get(s: Setup, repo: str, reference: str) -> bytes:
    import requests

    resp = requests.get(
        f"https://{s.host}/v2/{repo}/manifests/{reference}",
        auth=(USER, PASSWORD),
        verify=str(s.cert_dir / "ca.crt"),
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return resp.content


def test_a_replayed_sig_tag_is_refused(setup):
    """A's sha256-A.sig manifest (its blobs mounted along) put under B's sha256-B.sig tag."""
    s = setup
    a, b = s.images.digest(s.images.base), s.images.digest(s.images.child)
    repo = f"{s.ns}/replay"
    assert s.push("bb:2", "replay:b").returncode == 0
    src = f"{s.ns}/app"
    manifest = _get(s, src, a.replace(":", "-") + ".sig")
    # the blobs of the .sig manifest into the target repository (a cross-repository mount)
    import requests

    for desc in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
        resp = requests.post(
            f"https://{s.host}/v2/{repo}/blobs/uploads/?mount={desc['digest']}&from={src}",
            auth=(USER, PASSWORD),
            verify=str(s.cert_dir / "ca.crt"),
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
    _put(s, repo, b.replace(":", "-") + ".sig", manifest, "application/vnd.oci.image.manifest.v1+json")
    policy = write_policy(
        s.base / "replay.json",
        {f"{s.host}/{s.ns}/replay": [sigstore_signed(s.keys.cosign_pub, {"type": "matchRepository"})]},
    )
    _refused(s, "replay:b", policy, f"it is a signature of {a[:19]}, not of {b[:19]}")


def test_a_swapped_lookaside_file_is_refused_by_skopeo_and_chrootforge(setup):
    s = setup
    a, b = s.images.digest(s.images.base), s.images.digest(s.images.child)
    assert s.push("bb:2", "swap:1").returncode == 0
    target = _signature_file(s, "swap:1", b)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_signature_file(s, "app:signed", a), target)
    policy = write_policy(
        s.base / "swap.json",
        {f"{s.host}/{s.ns}/swap": [signed_by(s.keys.trusted_gpg, {"type": "matchRepository"})]},
    )
    refused, _ = s.copy_out("swap:1", policy)
    assert refused.returncode != 0 and "does not match" in refused.stderr, refused.stderr
    _refused(s, "swap:1", policy, f"it is a signature of {a[:19]}, not of {b[:19]}")


def test_a_policy_with_unknown_keys_is_refused_by_everyone(setup):
    s = setup
    policy = s.base / "unknown.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {f"{s.host}/{s.ns}": [{**signed_by(s.keys.trusted_gpg), "keyPaht": "/x"}]}
                },
            }
        )
    )
    policy.chmod(0o644)
    _refused(s, "app:signed", policy, "unknown key 'keyPaht' (did you mean 'keyPath'?)", code=2)
    refused, _ = s.copy_out("app:signed", policy)
    assert refused.returncode != 0 and "keyPaht" in refused.stderr, refused.stderr


# -- failures: one line, nothing pushed or pulled --------------------------------------------------
def _tag_exists(s: Setup, name: str) -> bool:
    proc = s.skopeo(
        "inspect", "--raw", "--cert-dir", str(s.cert_dir), "--creds", CREDS, f"docker://{s.ref(name)}"
    )
    return proc.returncode == 0


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (
            lambda k: [
                "--sign-by-sigstore-private-key",
                str(k.cosign_key),
                "--sign-passphrase-file",
                str(k.wrong_passphrase),
            ],
            "wrong passphrase",
        ),
        (lambda k: ["--sign-by-sigstore-private-key", str(k.cosign_key)], "is encrypted"),
        (
            lambda k: ["--sign-by", k.trusted_fpr, "--sign-passphrase-file", str(k.wrong_passphrase)],
            "wrong passphrase for the OpenPGP key",
        ),
        (lambda k: ["--sign-by", k.trusted_fpr], "is protected by a passphrase"),
        (lambda k: ["--sign-by", "0" * 40], "no secret key matches it"),
        (lambda k: ["--sign-by-sigstore-private-key", "/nonexistent/cosign.key"], "does not exist"),
    ],
)
def test_a_push_that_cannot_sign_pushes_nothing(setup, flags, fragment):
    s = setup
    name = f"fail:{hashlib.sha256(fragment.encode()).hexdigest()[:8]}"
    stop_identity_agent(s.identity, s.gnupghome)  # gpg-agent would sign with a passphrase it cached
    proc = s.push("bb:1", name, *flags(s.keys))
    assert proc.returncode == 2, proc.stderr
    one_error_line(proc.stderr, fragment)
    assert not _tag_exists(s, name)


def test_an_unreachable_lookaside_is_one_line(setup):
    s = setup
    regd = write_registries_d(
        s.base / "regd-down", f"{s.host}/{s.ns}", "http://127.0.0.1:9/sigs", attachments=False
    )
    policy = s.policy("down", signed_by(s.keys.trusted_gpg))
    _refused(s, "app:signed", policy, "the lookaside 127.0.0.1:9 cannot be reached", regd=regd)
    # and a push cannot write its signature to an http lookaside: refused before pushing
    proc = s.cf(
        "push",
        f"{s.images.layout}:bb:1",
        f"docker://{s.ref('down:1')}",
        "--cert-dir",
        str(s.cert_dir),
        "--creds",
        CREDS,
        "--registries.d",
        str(regd),
        "--sign-by",
        s.keys.trusted_fpr,
        "--sign-passphrase-file",
        str(s.keys.passphrase),
    )
    assert proc.returncode == 2
    one_error_line(proc.stderr, "only file:// stores can be written")
    assert not _tag_exists(s, "down:1")


def test_a_second_push_adds_no_signature(setup):
    s = setup
    digest = s.images.digest(s.images.base)
    proc = s.push("bb:1", "app:signed", *_signing_flags(s.keys, "trusted"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in _signature_file(s, "app:signed", digest).parent.iterdir()) == [
        "signature-1"
    ]
    sig_manifest = json.loads(_get(s, f"{s.ns}/app", digest.replace(":", "-") + ".sig"))
    assert len(sig_manifest["layers"]) == 1


def test_an_http_lookaside_is_read_by_skopeo_and_chrootforge(setup):
    """The store published over HTTP (as a lookaside usually is), read by both."""
    import socket
    import sys
    import time

    from tests.helpers.registry import free_port

    s = setup
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port),
            "--directory",
            str(s.lookaside),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        regd = write_registries_d(
            s.base / "regd-http", f"{s.host}/{s.ns}", f"http://127.0.0.1:{port}", attachments=False
        )
        policy = s.policy("http", signed_by(s.keys.trusted_gpg))
        copied, _ = s.copy_out("app:signed", policy, regd=regd)
        assert copied.returncode == 0, copied.stderr
        pulled, layout = s.pull("app:signed", policy, layout=s.base / "via-http", regd=regd)
        assert pulled.returncode == 0, pulled.stderr
        _refused(s, "app:unsigned", policy, "the lookaside store has none", regd=regd)
    finally:
        server.terminate()
        server.wait(10)
