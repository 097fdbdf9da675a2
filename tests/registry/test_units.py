"""The registry client's pure parts: references, challenges, auth files, TLS plans, the blob location
cache, manifest checks and the referrers index merge. No network, no privileges."""

from __future__ import annotations

import argparse
import base64
import json
import os
from pathlib import Path

import pytest

from chrootforge.errors import CfError, UsageError, VerificationError
from chrootforge.imageref import parse_ref
from chrootforge.oci import mediatypes as mt
from chrootforge.registry import authfile, blobcache, manifests, referrers, tls
from chrootforge.registry.challenge import ChallengeError, parse_challenges, select_challenge
from chrootforge.registry.options import ENV_CERTS_D, RegistryOptions, add_registry_options, options_from_args

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


# -- references ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, registry, repo, tag, digest",
    [
        ("docker://127.0.0.1:5000/ns/img:1.0", "127.0.0.1:5000", "ns/img", "1.0", None),
        ("docker://registry.example.com/a/b/c", "registry.example.com", "a/b/c", "latest", None),
        ("docker://localhost/x", "localhost", "x", "latest", None),
        (f"docker://[::1]:5000/x@{D1}", "[::1]:5000", "x", None, D1),
        ("docker://h.io/my-img_2/sub__x:v1_2-3", "h.io", "my-img_2/sub__x", "v1_2-3", None),
    ],
)
def test_parse_ref(text, registry, repo, tag, digest):
    ref = parse_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("127.0.0.1:5000/x:1", "not a registry reference"),
        ("docker://alpine", "names no registry host"),
        ("docker://library/alpine:3", "names no registry host"),
        ("docker://registry.example.com", "names no repository on registry.example.com"),
        ("docker://localhost:5000/", "names no repository on localhost:5000"),
        ("docker://user:pw@host.io/x", "not a registry HOST"),
        ("docker://host.io/UPPER:1", "invalid repository"),
        ("docker://host.io/x:bad/tag", "invalid repository"),
        ("docker://host.io/x:" + "t" * 129, "invalid tag"),
        ("docker://host.io/x@sha256:abc", "not a sha256 digest"),
        (f"docker://host.io/x:1@{D1}", "both a tag and a digest"),
    ],
)
def test_parse_ref_refuses(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_ref(text)


@pytest.mark.parametrize(
    "text, image, hub",
    [
        ("docker://alpine", "alpine", "library/alpine"),
        ("docker://alpine:3.19", "alpine:3.19", "library/alpine:3.19"),
        (f"docker://alpine@{D1}", f"alpine@{D1}", f"library/alpine@{D1}"),
        ("docker://library/alpine", "library/alpine", "library/alpine"),
        ("docker://someone/app:1", "someone/app:1", "someone/app:1"),
    ],
)
def test_a_reference_without_a_host_says_the_host_is_missing(text, image, hub):
    with pytest.raises(UsageError) as caught:
        parse_ref(text)
    assert str(caught.value) == f"{text!r} names no registry host: {image!r} is only an image name"
    assert caught.value.hint == (
        f"write docker://HOST[:PORT]/{image} for the registry that holds it, "
        f"or docker://docker.io/{hub} for Docker Hub"
    )


@pytest.mark.parametrize(
    "text", ["cache", "docker://cache", "docker://reg.example.com", "docker://reg.example.com/"]
)
def test_a_remote_cache_hint_offers_no_tag(text):
    from chrootforge.build.remotecache import parse_cache_ref

    with pytest.raises(UsageError) as caught:
        parse_cache_ref(text)
    assert "TAG" not in (caught.value.hint or "") and "@sha256" not in (caught.value.hint or "")
    assert "docker://" in caught.value.hint
    with pytest.raises(UsageError, match="names a tag or digest") as caught:
        parse_cache_ref("docker://reg.example.com/ci/cache:1")
    assert "TAG" not in caught.value.hint


def test_docker_hub_is_reached_at_its_api_host_with_docker_logins_credentials(tmp_path):
    from chrootforge.registry.transport import api_host

    assert api_host("docker.io") == api_host("index.docker.io") == "registry-1.docker.io"
    assert api_host("registry.example.com:5000") == "registry.example.com:5000"
    path = tmp_path / "config.json"  # what `docker login` writes for Docker Hub
    path.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": _auth("hubuser", "pw")}}))
    for registry in ("docker.io", "index.docker.io"):
        assert authfile.find_credentials(registry, "library/alpine", authfile=str(path)).username == "hubuser"


# -- challenges ------------------------------------------------------------------------------
def test_challenge_bearer_and_basic():
    found = parse_challenges(
        'Bearer realm="https://auth.io/token",service="reg.io",'
        'scope="repository:a/b:pull,push repository:c:pull", Basic realm="x\\"y"'
    )
    assert [c.scheme for c in found] == ["bearer", "basic"]
    assert found[0].params["service"] == "reg.io"
    assert found[0].scopes == ("repository:a/b:pull,push", "repository:c:pull")
    assert found[1].params["realm"] == 'x"y'
    assert select_challenge('Basic realm="r"', "h").scheme == "basic"
    assert select_challenge('Basic realm="r", Bearer realm="https://t/x"', "h").scheme == "bearer"
    assert select_challenge('bearer realm="https://t/x" ,service=s', "h").params["service"] == "s"


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="https://auth.io/token',  # unterminated
        'Bearer realm="https://a" service="b"',  # missing comma
        "Bearer realm=",
        'Bearer realm="a", realm="b"',
        "=x",
        ',,, Bearer realm="a" junk',
    ],
)
def test_malformed_challenges_are_one_clear_error(header):
    with pytest.raises(ChallengeError, match="malformed WWW-Authenticate") as err:
        select_challenge(header, "reg.io:5000")
    assert "\n" not in str(err.value)


def test_challenge_without_usable_realm_or_scheme():
    with pytest.raises(ChallengeError, match="not an http"):
        select_challenge('Bearer service="x"', "h")
    with pytest.raises(ChallengeError, match="unsupported authentication"):
        select_challenge('Negotiate realm="x"', "h")
    with pytest.raises(ChallengeError, match="without a WWW-Authenticate"):
        select_challenge(None, "h")


# -- auth files ------------------------------------------------------------------------------
def _auth(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_authfile_order(tmp_path):
    env_file, runtime, home = tmp_path / "env.json", tmp_path / "run", tmp_path / "home"
    (runtime / "containers").mkdir(parents=True)
    (home / ".docker").mkdir(parents=True)
    env = {"REGISTRY_AUTH_FILE": str(env_file), "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home)}
    assert authfile.candidate_files(None, env) == [
        env_file,
        runtime / "containers" / "auth.json",
        home / ".docker" / "config.json",
    ]
    assert authfile.candidate_files("/x/a.json", env) == [Path("/x/a.json")]
    (home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"https://r.io/v1/": _auth("d", "1")}})
    )
    assert authfile.find_credentials("r.io", "a", env=env).username == "d"
    (runtime / "containers" / "auth.json").write_text(json.dumps({"auths": {"r.io": _auth("x", "2")}}))
    assert authfile.find_credentials("r.io", "a", env=env).username == "x"
    env_file.write_text(json.dumps({"auths": {"other.io": _auth("o", "3")}}))
    # the env file has no entry for r.io: the next file answers
    assert authfile.find_credentials("r.io", "a", env=env).username == "x"
    # --creds wins over everything; an explicit --authfile is the only file read
    assert authfile.find_credentials("r.io", "a", "c:p:w", env=env).password == "p:w"
    assert authfile.find_credentials("r.io", "a", authfile=str(env_file), env=env) is None
    with pytest.raises(UsageError, match="does not exist"):
        authfile.find_credentials("r.io", "a", authfile=str(tmp_path / "missing.json"), env=env)


def test_authfile_namespaces_and_secrets_stay_out_of_messages(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "r.io:5000": _auth("host", "h"),
                    "r.io:5000/team": _auth("team", "t"),
                    "r.io:5000/team/app": {"username": "app", "password": "a"},
                }
            }
        )
    )

    def find(repo):
        return authfile.from_file(path, "r.io:5000", repo)

    assert find("team/app").username == "app"
    assert find("team/other").username == "team"
    assert find("solo").username == "host"
    assert "password" not in repr(find("solo")) and "'h'" not in repr(find("solo"))
    secret = "S3cr3t-never-shown"
    for content in (
        '{"auths": {"r.io": {"auth": "' + secret + '"}}}',
        '{"auths": ' + secret,
        json.dumps({"auths": {"r.io": {"auth": base64.b64encode(secret.encode()).decode()}}}),
    ):
        path.write_text(content)
        with pytest.raises(CfError) as err:
            authfile.from_file(path, "r.io", "x")
        assert secret not in err.value.render()
        assert base64.b64encode(secret.encode()).decode() not in err.value.render()


# -- options ---------------------------------------------------------------------------------
def test_options_from_args(monkeypatch):
    parser = argparse.ArgumentParser()
    add_registry_options(parser)
    opts = options_from_args(
        parser.parse_args(["--tls-verify=false", "--creds", "u:p", "--retry-times", "0", "--timeout", "2.5"])
    )
    assert (opts.tls_verify, opts.retries, opts.timeout) == (False, 0, 2.5)
    assert "u:p" not in repr(opts)
    assert options_from_args(parser.parse_args(["--tls-verify"])).tls_verify is True
    with pytest.raises(UsageError, match="USER:PASS"):
        options_from_args(parser.parse_args(["--creds", "justuser"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--tls-verify=maybe"])
    monkeypatch.setenv("CHROOTFORGE_REGISTRY_TIMEOUT", "0.5")
    monkeypatch.setenv("CHROOTFORGE_REGISTRY_CHUNK_SIZE", str(1 << 20))
    assert (RegistryOptions().timeout, RegistryOptions().chunk_size) == (0.5, 1 << 20)
    monkeypatch.setenv("CHROOTFORGE_REGISTRY_RETRIES", "many")
    with pytest.raises(UsageError, match="not a number"):
        RegistryOptions()


# -- TLS plans -------------------------------------------------------------------------------
def test_certs_d_lookup(tmp_path, monkeypatch):
    assert tls.certs_d_bases({}, uid=0) == [Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d")]
    assert tls.certs_d_bases({"HOME": "/home/u"}, uid=1000)[0] == Path("/home/u/.config/containers/certs.d")
    assert tls.certs_d_bases({ENV_CERTS_D: f"/a{os.pathsep}/b"}) == [Path("/a"), Path("/b")]
    (tmp_path / "b" / "r.io:5000").mkdir(parents=True)
    bases = [tmp_path / "a", tmp_path / "b"]
    assert tls.find_cert_dir("r.io:5000", None, bases) == tmp_path / "b" / "r.io:5000"
    assert tls.find_cert_dir("r.io", None, bases) is None
    with pytest.raises(UsageError, match="not a directory"):
        tls.find_cert_dir("r.io", str(tmp_path / "nope"), bases)


def test_cert_dir_plan():
    d = Path("/certs")
    plan = tls.plan_from_files(True, d, ["ca.crt", "extra.crt", "client.cert", "client.key", "README"])
    assert plan.ca_files == (d / "ca.crt", d / "extra.crt")
    assert plan.client_cert == (d / "client.cert", d / "client.key")
    with pytest.raises(CfError, match="no matching client.key"):
        tls.plan_from_files(True, d, ["client.cert"])
    with pytest.raises(CfError, match="no matching lone.cert"):
        tls.plan_from_files(True, d, ["lone.key"])


def test_bad_ca_file_is_one_clear_error(tmp_path):
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    with pytest.raises(CfError, match="cannot load the CA certificate"):
        tls.ssl_context(tls.plan_from_files(True, tmp_path, ["ca.crt"]))


# -- blob location cache ---------------------------------------------------------------------
def test_blobcache_merge_bounds_and_order():
    data = blobcache.merge({}, [("r", D1, "a"), ("r", D1, "b"), ("r", D1, "a"), ("s", D1, "z")])
    assert data["registries"]["r"][D1] == ["a", "b"]
    data = blobcache.merge(data, [("r", D1, f"n{i}") for i in range(6)], max_repos=3)
    assert data["registries"]["r"][D1] == ["n5", "n4", "n3"]
    data = blobcache.merge(data, [("r", D2, "x")], max_digests=1)
    assert list(data["registries"]["r"]) == [D2]


def test_blobcache_file_round_trip_survives_damage(tmp_path):
    path = tmp_path / "c" / "blob-locations.json"
    cache = blobcache.BlobLocations(path)
    cache.record("r", D1, "a")
    assert cache.sources("r", D1, exclude="b") == ["a"]
    cache.save()
    other = blobcache.BlobLocations(path)
    other.record("r", D1, "b")
    other.save()
    assert blobcache.BlobLocations(path).sources("r", D1, exclude="x") == ["b", "a"]
    path.write_text("{ damaged")
    assert blobcache.BlobLocations(path).sources("r", D1, exclude="x") == []
    # What a crash can leave of it, since a save does not fsync this hint file: none, and the next
    # save writes a whole one again.
    path.write_bytes(b"")
    again = blobcache.BlobLocations(path)
    assert again.sources("r", D1, exclude="x") == []
    again.record("r", D1, "c")
    again.save()
    assert blobcache.BlobLocations(path).sources("r", D1, exclude="x") == ["c"]


# -- manifest checks -------------------------------------------------------------------------
def _manifest(**overrides) -> dict:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.MANIFEST,
        "config": {"mediaType": mt.CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": mt.LAYER_GZIP, "digest": D2, "size": 20}],
    }
    doc.update(overrides)
    return doc


def test_manifest_checks_accept_images_and_artifacts():
    raw = json.dumps(_manifest()).encode()
    assert manifests.parse_manifest(raw, mt.MANIFEST, "w")[0] == mt.MANIFEST
    assert [d["digest"] for d in manifests.image_blobs(_manifest(), "w")] == [D1, D2]
    art = _manifest(
        config={"mediaType": mt.EMPTY, "digest": D1, "size": 2},
        layers=[{"mediaType": "application/spdx+json", "digest": D2, "size": 5}],
    )
    assert len(manifests.image_blobs(art, "w", artifact=True)) == 2
    with pytest.raises(VerificationError, match="unknown media type"):
        manifests.image_blobs(art, "w")


@pytest.mark.parametrize(
    "doc, content_type, fragment",
    [
        (
            _manifest(mediaType="application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None,
            "a Docker schema 1 manifest",
        ),
        (_manifest(mediaType=None), "text/html", "unknown manifest"),
        (_manifest(schemaVersion=1), None, "schemaVersion"),
        (_manifest(), mt.INDEX, "served as"),
    ],
)
def test_manifest_checks_refuse(doc, content_type, fragment):
    if doc.get("mediaType") is None:
        doc.pop("mediaType")
    with pytest.raises(VerificationError, match=fragment):
        manifests.parse_manifest(json.dumps(doc).encode(), content_type, "w")


@pytest.mark.parametrize(
    "layer, fragment",
    [
        ({"mediaType": "application/x-evil", "digest": D2, "size": 1}, "unknown media type"),
        ({"mediaType": mt.LAYER_GZIP, "digest": "sha512:" + "a" * 128, "size": 1}, "malformed digest"),
        ({"mediaType": mt.LAYER_GZIP, "digest": "sha256:../../etc", "size": 1}, "malformed digest"),
        ({"mediaType": mt.LAYER_GZIP, "digest": D2, "size": -1}, "invalid size"),
        ({"mediaType": mt.LAYER_GZIP, "digest": D2, "size": True}, "invalid size"),
        ({"mediaType": mt.LAYER_GZIP, "digest": D2, "size": 1, "urls": ["http://x"]}, "foreign"),
    ],
)
def test_descriptor_checks(layer, fragment):
    with pytest.raises(VerificationError, match=fragment):
        manifests.image_blobs(_manifest(layers=[layer]), "w")


def test_oversized_manifest_and_platform_choice():
    with pytest.raises(VerificationError, match="more than"):
        manifests.parse_manifest(b" " * (manifests.MAX_MANIFEST + 1), mt.MANIFEST, "w")
    index = {
        "manifests": [
            {
                "mediaType": mt.MANIFEST,
                "digest": D1,
                "size": 1,
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            {
                "mediaType": mt.MANIFEST,
                "digest": D2,
                "size": 1,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
        ]
    }
    assert manifests.choose_platform(index, "w", ("linux", "amd64"))["digest"] == D2
    with pytest.raises(VerificationError, match="no image for linux/s390x"):
        manifests.choose_platform(index, "w", ("linux", "s390x"))


# -- referrers index -------------------------------------------------------------------------
def test_referrers_fallback_merge_keeps_others():
    art = {
        "mediaType": mt.MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": mt.EMPTY, "digest": D1, "size": 2},
        "layers": [],
        "subject": {"mediaType": mt.MANIFEST, "digest": D2, "size": 3},
        "annotations": {"k": "v"},
    }
    raw = json.dumps(art).encode()
    desc = referrers.descriptor_of(raw, art)
    assert desc["artifactType"] == "application/spdx+json" and desc["annotations"] == {"k": "v"}
    assert desc["digest"] == manifests.sha256_digest(raw) and desc["size"] == len(raw)
    foreign = {"mediaType": mt.MANIFEST, "digest": D1, "size": 9, "artifactType": "application/x-sig"}
    merged = referrers.merge_index({"manifests": [foreign, dict(desc, size=1)]}, [desc])
    assert merged["manifests"] == [foreign, desc] and merged["mediaType"] == mt.INDEX
    assert referrers.fallback_tag(D2) == "sha256-" + "b" * 64


def test_system_trust_is_read_lazily_from_a_hashed_directory(tmp_path, monkeypatch, pki):
    import ssl

    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "0123abcd.0").write_text(pki.ca_crt.read_text())
    plain = tmp_path / "plain"
    plain.mkdir()
    default = tmp_path / "default.pem"
    default.write_text(pki.ca_crt.read_text())

    def paths(cafile, capath):
        return ssl.DefaultVerifyPaths(cafile, capath, "SSL_CERT_FILE", str(default), "SSL_CERT_DIR", capath)

    monkeypatch.setattr(tls.ssl, "get_default_verify_paths", lambda: paths(str(default), str(hashed)))
    assert tls.ssl_context(tls.TLSConfig(True, None)).get_ca_certs() == []  # nothing parsed up front
    custom = tmp_path / "custom.pem"
    custom.write_text(pki.token_crt.read_text())
    monkeypatch.setattr(tls.ssl, "get_default_verify_paths", lambda: paths(str(custom), str(hashed)))
    subjects = [
        dict(x[0] for x in c["subject"])["commonName"]
        for c in tls.ssl_context(tls.TLSConfig(True, None)).get_ca_certs()
    ]
    assert subjects == ["cf test token signer"]  # an explicit $SSL_CERT_FILE bundle is honoured


def test_build_with_a_remote_cache_without_a_repository_is_one_line_without_tag(tmp_path):
    from tests.registry.checks import cli, one_error_line

    assert cli("new", str(tmp_path / "ns")).returncode == 0
    assert cli("new", str(tmp_path / "ns" / "img")).returncode == 0
    for value, fragment in (
        ("docker://reg.example.com", "names no repository on reg.example.com"),
        ("docker://cache", "names no registry host"),
    ):
        out = cli("build", str(tmp_path / "ns" / "img"), "--remote-cache", value)
        assert out.returncode == 2, out.stderr
        one_error_line(out.stderr, fragment)
        assert "TAG" not in out.stderr and "docker://" in out.stderr.splitlines()[1]


@pytest.mark.parametrize(
    "served, declared, config, layer",
    [
        (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_GZIP),
        (mt.DOCKER_MANIFEST, None, mt.CONFIG, mt.LAYER_GZIP),  # only the Content-Type says Docker
        (mt.MANIFEST, mt.MANIFEST, mt.CONFIG, mt.DOCKER_LAYER_TAR),  # an OCI manifest, a Docker layer
        (mt.MANIFEST, mt.MANIFEST, mt.DOCKER_CONFIG, mt.LAYER_ZSTD),
    ],
)
def test_the_oci_form_renames_docker_types_and_keeps_every_blob(served, declared, config, layer):
    doc = _manifest(
        config={"mediaType": config, "digest": D1, "size": 2},
        layers=[{"mediaType": layer, "digest": D2, "size": 5}],
    )
    if declared is None:
        doc.pop("mediaType")
    else:
        doc["mediaType"] = declared
    raw = manifests.oci_form(served, doc)
    assert raw is not None
    got = json.loads(raw)
    assert got["mediaType"] == mt.MANIFEST and got["schemaVersion"] == 2
    assert got["config"] == {"mediaType": mt.CONFIG, "digest": D1, "size": 2}
    assert got["layers"] == [{"mediaType": mt.OCI_NAME.get(layer, layer), "digest": D2, "size": 5}]
    assert manifests.oci_form(mt.MANIFEST, got) is None  # OCI throughout: kept byte for byte
