"""Pure parts of signing and policy: secretbox against libsodium and cosign, the signed claim,
docker references and scopes, policy.json parsing and signedIdentity, registries.d, DSSE."""

from __future__ import annotations

import base64
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from chrootforge.errors import UsageError
from chrootforge.registry import dockerref
from chrootforge.registry.policy import policyfile as pc
from chrootforge.registry.policy.identity import IdentityMatch, matches
from chrootforge.registry.signing import dsse, keys, secretbox
from chrootforge.registry.signing import payload as pl
from chrootforge.registry.signing import registries_d as rd
from chrootforge.registry.signing.yamlsubset import YamlError, loads

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


# -- secretbox -----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(hs.binary(max_size=300), hs.binary(min_size=32, max_size=32), hs.binary(min_size=24, max_size=24))
def test_secretbox_equals_libsodium(message, key, nonce):
    import nacl.secret

    sealed = nacl.secret.SecretBox(key).encrypt(message, nonce)[24:]
    assert secretbox.seal(message, nonce, key) == sealed
    assert secretbox.open_box(sealed, nonce, key) == message


def test_secretbox_refuses_a_flipped_bit_and_a_wrong_key():
    key, nonce = os.urandom(32), os.urandom(24)
    box = bytearray(secretbox.seal(b"a private key", nonce, key))
    with pytest.raises(secretbox.SecretBoxError):
        secretbox.open_box(box, nonce, os.urandom(32))
    box[20] ^= 1
    with pytest.raises(secretbox.SecretBoxError):
        secretbox.open_box(bytes(box), nonce, key)


# A key that cosign itself wrote (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N=2^15, password
# "hello"): the test vector pemsigstorekey of sigstore/cosign's pkg/cosign/keys_test.go
# (Apache-2.0). Opening it checks scrypt + secretbox + PKCS#8 against cosign's Go code.
COSIGN_MADE_KEY = b"""-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
"""


def test_a_key_cosign_wrote_opens_with_its_password_only(tmp_path):
    path = tmp_path / "cosign.key"
    path.write_bytes(COSIGN_MADE_KEY)
    signer = keys.load_private_key(path, b"hello")
    assert keys.verify(signer.key.public_key(), signer.sign(b"x"), b"x")
    with pytest.raises(keys.KeyProblem, match="wrong passphrase"):
        keys.load_private_key(path, b"hell0")
    with pytest.raises(keys.KeyProblem, match="is encrypted"):
        keys.load_private_key(path, None)


def test_cosign_key_round_trip_and_refusals(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k").write_bytes(keys.encrypt_cosign(der, b"pw"))
    assert keys.load_private_key(tmp_path / "k", b"pw").public_pem == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # scrypt parameters outside cosign's three (a DoS lever) are refused before any work
    doc = json.loads(keys.pem_blocks(keys.encrypt_cosign(der, b"pw"))[0][1])
    doc["kdf"]["params"]["N"] = 1 << 24
    (tmp_path / "dos").write_bytes(keys.pem(keys.COSIGN_TYPES[0], json.dumps(doc).encode()))
    with pytest.raises(keys.KeyProblem, match="unsupported key derivation"):
        keys.load_private_key(tmp_path / "dos", b"pw")
    other = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(keys.KeyProblem, match="not an ECDSA P-256 key"):
        keys.load_private_key(tmp_path / "ed", None)
    (tmp_path / "pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(keys.KeyProblem, match="not a private key"):
        keys.load_private_key(tmp_path / "pub", None)
    with pytest.raises(keys.KeyProblem, match="does not exist"):
        keys.load_private_key(tmp_path / "missing", None)


# -- the signed claim ----------------------------------------------------------------------------
def test_claim_round_trip_and_strictness():
    raw = pl.make(pl.SIMPLE_TYPE, DIGEST, "reg.example.com/a/b:1", 1700000000)
    claim = pl.parse(raw, pl.SIMPLE_TYPE)
    assert (claim.manifest_digest, claim.docker_reference) == (DIGEST, "reg.example.com/a/b:1")
    with pytest.raises(pl.BadPayload, match="type"):
        pl.parse(raw, pl.SIGSTORE_TYPE)  # a simple claim is not a sigstore one
    doc = json.loads(raw)
    bad = [
        dict(doc, extra=1),
        {**doc, "critical": {**doc["critical"], "extra": 1}},
        {**doc, "critical": {**doc["critical"], "image": {"docker-manifest-digest": DIGEST, "x": 1}}},
        {**doc, "critical": {**doc["critical"], "identity": {}}},
        {**doc, "optional": {"timestamp": 1.5}},
        {**doc, "critical": {**doc["critical"], "image": {"docker-manifest-digest": "md5:00"}}},
    ]
    for case in bad:
        with pytest.raises(pl.BadPayload):
            pl.parse(json.dumps(case).encode(), pl.SIMPLE_TYPE)
    duplicated = raw.replace(b'"optional":', b'"optional":{},"optional":')
    with pytest.raises(pl.BadPayload, match="twice"):
        pl.parse(duplicated, pl.SIMPLE_TYPE)
    # cosign writes "optional": null
    assert pl.parse(json.dumps({**doc, "optional": None}).encode(), pl.SIMPLE_TYPE).manifest_digest == DIGEST


# -- references and scopes -----------------------------------------------------------------------
def test_references_normalize_as_containers_image():
    assert str(dockerref.parse("busybox")) == "docker.io/library/busybox"
    assert str(dockerref.parse("team/app:1")) == "docker.io/team/app:1"
    assert str(dockerref.parse("localhost:5000/a@" + DIGEST)) == f"localhost:5000/a@{DIGEST}"
    with pytest.raises(dockerref.BadReference):
        dockerref.parse("busybox", normalize=False)
    assert dockerref.scopes(dockerref.parse("reg.example.com:5000/a/b:1")) == [
        "reg.example.com:5000/a/b:1",
        "reg.example.com:5000/a/b",
        "reg.example.com:5000/a",
        "reg.example.com:5000",
        "*.example.com",
        "*.com",
    ]
    assert dockerref.valid_scope("*.example.com") and dockerref.valid_scope("reg.example.com:5000/a")
    assert not dockerref.valid_scope("busybox")  # never matches: it is docker.io/library/busybox


@pytest.mark.parametrize(
    ("rule", "intended", "claimed", "ok"),
    [
        (IdentityMatch(), "r.io/a/b:1", "r.io/a/b:1", True),
        (IdentityMatch(), "r.io/a/b:1", "r.io/a/b:2", False),
        (IdentityMatch(), f"r.io/a/b@{DIGEST}", "r.io/a/b:2", True),
        (IdentityMatch(), f"r.io/a/b@{DIGEST}", "r.io/a/c:2", False),
        (IdentityMatch(), "r.io/a/b:1", "r.io/a/b", False),
        (IdentityMatch("matchExact"), f"r.io/a/b@{DIGEST}", "r.io/a/b:1", False),
        (IdentityMatch("matchRepository"), "r.io/a/b:1", "r.io/a/b:7", True),
        (IdentityMatch("matchRepository"), "r.io/a/b:1", "r.io/a/bb:1", False),
        (IdentityMatch("exactReference", reference="v.io/p/q:3"), "r.io/a/b:1", "v.io/p/q:3", True),
        (IdentityMatch("exactRepository", repository="v.io/p/q"), "r.io/a/b:1", "v.io/p/q:9", True),
        (
            IdentityMatch("remapIdentity", prefix="m.io/mirror", signed_prefix="v.io"),
            "m.io/mirror/p/q:1",
            "v.io/p/q:1",
            True,
        ),
        (
            IdentityMatch("remapIdentity", prefix="m.io/mirror", signed_prefix="v.io"),
            "m.io/mirrorx/q:1",
            "v.io/x/q:1",
            False,
        ),
        (IdentityMatch(), "r.io/a/b:1", "not a reference!", False),
    ],
)
def test_signed_identity(rule, intended, claimed, ok):
    assert matches(rule, dockerref.parse(intended), claimed) is ok


# -- policy.json ---------------------------------------------------------------------------------
def _policy(doc) -> pc.Policy:
    return pc.parse(json.dumps(doc).encode(), "p.json")


def test_policy_scopes_most_specific_first():
    accept, reject = [{"type": "insecureAcceptAnything"}], [{"type": "reject"}]
    policy = _policy(
        {
            "default": reject,
            "transports": {"docker": {"r.io/a": accept, "r.io/a/b:1": reject, "*.io": reject, "": accept}},
        }
    )
    assert policy.for_docker(dockerref.parse("r.io/a/b:2"))[0] == 'transports.docker["r.io/a"]'
    assert policy.for_docker(dockerref.parse("r.io/a/b:1"))[1][0].kind == "reject"
    assert policy.for_docker(dockerref.parse("q.io/z:1"))[0] == 'transports.docker["*.io"]'
    assert policy.for_docker(dockerref.parse("q.org/z:1"))[0] == 'transports.docker[""]'
    assert _policy({"default": reject}).for_docker(dockerref.parse("q.org/z:1"))[0] == "default"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (
            {"default": [{"type": "reject"}], "transport": {}},
            "unknown key 'transport' (did you mean 'transports'?)",
        ),
        ({"transports": {}}, "'default' is missing"),
        ({"default": []}, "must not be empty"),
        ({"default": [{"type": "reject", "keyPath": "x"}]}, "unknown key 'keyPath'"),
        (
            {"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaht": "/k"}]},
            "unknown key 'keyPaht' (did you mean 'keyPath'?)",
        ),
        ({"default": [{"type": "signedBy", "keyPath": "/k"}]}, "keyType"),
        (
            {"default": [{"type": "signedBy", "keyType": "GPGKeys"}]},
            "exactly one of keyPath, keyPaths and keyData",
        ),
        (
            {"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", "keyData": "AA=="}]},
            "exactly one",
        ),
        (
            {"default": [{"type": "sigstoreSigned", "keyPath": "/k", "rekorPublicKeyPath": "/r"}]},
            "unknown key 'rekorPublicKeyPath'",
        ),
        ({"default": [{"type": "sigstoreSigned", "keyData": "not base64!"}]}, "is not base64"),
        (
            {"default": [{"type": "signedby"}]},
            "unknown requirement type 'signedby' (did you mean 'signedBy'?)",
        ),
        (
            {
                "default": [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": "/k",
                        "signedIdentity": {"type": "matchExact", "x": 1},
                    }
                ]
            },
            "unknown key 'x'",
        ),
        (
            {
                "default": [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": "/k",
                        "signedIdentity": {"type": "exactReference", "dockerReference": "r.io/a"},
                    }
                ]
            },
            "neither a tag nor a digest",
        ),
        (
            {
                "default": [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": "/k",
                        "signedIdentity": {
                            "type": "remapIdentity",
                            "prefix": "busybox",
                            "signedPrefix": "r.io",
                        },
                    }
                ]
            },
            "not a HOST[:PORT]",
        ),
    ],
)
def test_policy_refuses_what_containers_image_refuses(doc, fragment):
    with pytest.raises(pc.PolicyError) as err:
        _policy(doc)
    assert fragment in str(err.value) and str(err.value).startswith("policy p.json: ")
    assert err.value.exit_code == 2


def test_policy_refuses_duplicate_keys_and_non_json():
    with pytest.raises(pc.PolicyError, match="appears twice"):
        pc.parse(b'{"default": [{"type": "reject"}], "default": [{"type": "reject"}]}', "p")
    with pytest.raises(pc.PolicyError, match="not valid JSON"):
        pc.parse(b"{", "p")


def test_policy_default_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(pc, "SYSTEM_POLICY", tmp_path / "etc-policy.json")
    assert pc.default_path() is None and pc.load() is None
    (tmp_path / "etc-policy.json").write_text('{"default": [{"type": "reject"}]}')
    assert pc.default_path() == tmp_path / "etc-policy.json"
    user = tmp_path / ".config" / "containers" / "policy.json"
    user.parent.mkdir(parents=True)
    user.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    assert pc.load().default[0].kind == "insecureAcceptAnything"
    with pytest.raises(pc.PolicyError, match="does not exist"):
        pc.load(tmp_path / "nope.json")


# -- registries.d --------------------------------------------------------------------------------
def test_yaml_subset_reads_mappings_and_refuses_the_rest():
    text = "---\n# c\ndocker:\n  r.io:5000/a:\n    lookaside: 'file:///x y'  # c\n    use-sigstore-attachments: true\ndefault-docker:\n  lookaside: \"http://s/\"\n"
    assert loads(text, "f") == {
        "docker": {"r.io:5000/a": {"lookaside": "file:///x y", "use-sigstore-attachments": "true"}},
        "default-docker": {"lookaside": "http://s/"},
    }
    for bad in (
        "a:\n  - x\n",
        "a: [1]\n",
        "a: 1\na: 2\n",
        "a:\n  b: 1\n c: 2\n",
        "a:\n\tb: 1\n",
        "a: &x 1\n",
    ):
        with pytest.raises(YamlError, match=r"^f:\d+: "):
            loads(bad, "f")


def test_registries_d_merge_and_most_specific_scope(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(
        "docker:\n  r.io/team:\n    lookaside: https://sig/team\n    lookaside-staging: file:///stage/team\n"
        "  r.io:\n    use-sigstore-attachments: true\n"
    )
    (tmp_path / "b.yaml").write_text("default-docker:\n  lookaside: file:///default\n")
    (tmp_path / "ignored.yml").write_text("not: [read]\n")
    config = rd.load(tmp_path)
    team = dockerref.parse("r.io/team/app:1")
    assert config.lookaside(team, write=False) == "https://sig/team/team/app"
    assert config.lookaside(team, write=True) == "file:///stage/team/team/app"
    assert config.lookaside(dockerref.parse("q.io/x:1"), write=False) == "file:///default/x"
    assert config.use_attachments(team) and not config.use_attachments(dockerref.parse("q.io/x:1"))
    assert (
        rd.signature_url("file:///b/team/app", DIGEST, 0)
        == f"file:///b/team/app@sha256={'ab' * 32}/signature-1"
    )
    (tmp_path / "c.yaml").write_text("docker:\n  r.io/team:\n    lookaside: https://again\n")
    with pytest.raises(UsageError, match="defined both in"):
        rd.load(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # nothing configured: podman's built-in store
    builtin = (
        "/var/lib/containers/sigstore"
        if os.geteuid() == 0
        else f"{tmp_path}/home/.local/share/containers/sigstore"
    )
    assert rd.Config(None, {}, "x").lookaside(team, write=True) == f"file://{builtin}/team/app"


# -- DSSE ----------------------------------------------------------------------------------------
def test_dsse_pae_and_envelope():
    # DSSE v1.0's own example: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )

    class Fake:
        keyid = "k1"

        def sign_dsse(self, message):
            return message[::-1]

    env = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, b'{"a":1}', [Fake()])
    payload_type, payload, sigs = dsse.decode(env)
    assert payload_type == dsse.INTOTO_PAYLOAD_TYPE and payload == b'{"a":1}'
    assert sigs == [("k1", dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, b'{"a":1}')[::-1])]
    assert json.loads(env)["payload"] == base64.b64encode(b'{"a":1}').decode()


def test_openpgp_dsse_signature_is_a_detached_signature_gpg_verifies(signing_keys, tmp_path, monkeypatch):
    """The provenance envelope signed with an OpenPGP key: `gpg --verify SIG PAE` accepts it."""
    import subprocess

    from chrootforge.registry.signing.openpgp import OpenPGPSigner
    from tests.helpers.signing import PASSPHRASE, stop_agent

    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    subprocess.run(
        [*gpg, "--passphrase", PASSPHRASE, "--import", str(signing_keys.secret_export)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("GNUPGHOME", str(home))
    try:
        signer = OpenPGPSigner(signing_keys.trusted_fpr, PASSPHRASE)
        signer.check()
        envelope = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, b'{"_type":"x"}', [signer])
        payload_type, payload, sigs = dsse.decode(envelope)
        assert sigs[0][0] == signing_keys.trusted_fpr
        (tmp_path / "pae").write_bytes(dsse.pae(payload_type, payload))
        (tmp_path / "sig").write_bytes(sigs[0][1])
        verify = subprocess.run(
            [*gpg, "--status-fd", "1", "--verify", str(tmp_path / "sig"), str(tmp_path / "pae")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0 and f"VALIDSIG {signing_keys.trusted_fpr}" in verify.stdout, (
            verify.stderr
        )
        (tmp_path / "pae").write_bytes(dsse.pae(payload_type, payload + b" "))
        assert (
            subprocess.run(
                [*gpg, "--verify", str(tmp_path / "sig"), str(tmp_path / "pae")],
                capture_output=True,
                check=False,
            ).returncode
            != 0
        )
    finally:
        stop_agent(home)
