"""The provenance document (pure): valid in-toto Statement v1 / SLSA provenance v1, content only
(the same bytes from the same inputs, no path or credential), and the schema checks themselves
refuse what the specifications forbid. Plus the --plan --json graph of a small namespace."""

from __future__ import annotations

import copy
import json
import re

import pytest

from chrootforge.gentoo import provenance as pv
from chrootforge.sources.fetched import FetchedFile
from tests.pipeline import provenance_schema as schema

DIGEST = "sha256:" + "ab" * 32


def _facts(**over) -> pv.BuildFacts:
    stage = FetchedFile(
        path=__import__("pathlib").Path("/somewhere/private/stage3-amd64-x.tar.xz"),
        sha512="c" * 128,
        blake2b="d" * 128,
        verified_by="A183D90A80C213D70ADB71F1D73D21D992B7E62B",
        source_url="https://mirror.example.com/releases/stage3-amd64-x.tar.xz",
    )
    base = dict(
        image_ref="localhost/ns/hello:latest",
        manifest_digest=DIGEST,
        namespace="ns",
        image="hello",
        tags=("latest", "1.0"),
        key="sha256:" + "ef" * 32,
        epoch=1700000000,
        version="0.1.0",
        inputs=(
            pv.file_input("chrootforge.toml", b"name = 'ns'\n"),
            pv.file_input("hello/image.toml", b"parent = 's6'\n"),
            pv.fetched_input("stage3", stage),
            pv.tree_input("sha256:" + "12" * 32),
            pv.image_input("localhost/ns/s6:latest", "sha256:" + "34" * 32),
        ),
        binhost="https://user:secret@binhost.example.com:8443/cf",
        remote_cache="docker://registry.example.com/ci/cache",
    )
    base.update(over)
    return pv.BuildFacts(**base)


def test_statement_is_valid_in_toto_and_slsa():
    doc = pv.statement(_facts())
    schema.slsa_provenance_v1(doc)
    assert doc["subject"] == [{"name": "localhost/ns/hello:latest", "digest": {"sha256": "ab" * 32}}]
    deps = {d["name"]: d for d in doc["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["stage3-amd64-x.tar.xz"]["digest"] == {"sha512": "c" * 128}
    assert (
        deps["stage3-amd64-x.tar.xz"]["annotations"]["verifiedBy"]
        == "A183D90A80C213D70ADB71F1D73D21D992B7E62B"
    )
    assert deps["localhost/ns/s6:latest"]["digest"] == {"sha256": "34" * 32}
    assert doc["predicate"]["buildDefinition"]["internalParameters"] == {
        "buildEpoch": 1700000000,
        "buildKey": "sha256:" + "ef" * 32,
    }
    assert doc["predicate"]["runDetails"]["builder"]["version"] == {"chrootforge": "0.1.0"}


def test_statement_holds_content_only():
    data = pv.encode(pv.statement(_facts()))
    text = data.decode()
    assert "/somewhere" not in text and "mirror.example.com" not in text  # where the stage lay or came from
    assert "secret" not in text and "user:" not in text  # credentials of a URL never travel
    assert json.loads(data)["predicate"]["buildDefinition"]["externalParameters"]["binhost"] == (
        "https://binhost.example.com:8443/cf"
    )
    # the same facts in another order (or from another machine) are the same bytes
    shuffled = _facts(inputs=tuple(reversed(_facts().inputs)))
    assert pv.encode(pv.statement(shuffled)) == data
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), "_type"),
        (lambda d: d.update(subject=[]), "subject"),
        (lambda d: d["subject"][0].pop("digest"), "'digest' is required"),
        (lambda d: d["subject"][0]["digest"].update(sha256="AB" * 32), "lowercase hex"),
        (lambda d: d.update(predicateType="not a uri"), "predicateType"),
        (lambda d: d["predicate"].pop("runDetails"), "'runDetails' is required"),
        (
            lambda d: d["predicate"]["buildDefinition"].pop("externalParameters"),
            "'externalParameters' is required",
        ),
        (
            lambda d: d["predicate"]["buildDefinition"].update(buildType="HTTPS://Example.com/x"),
            "lowercase scheme",
        ),
        (
            lambda d: d["predicate"]["runDetails"]["builder"].update(version={"chrootforge": 1}),
            "must be a string",
        ),
        (
            lambda d: d["predicate"]["runDetails"].update(metadata={"startedOn": "2024-01-01 00:00"}),
            "RFC 3339",
        ),
        (
            lambda d: d["predicate"]["buildDefinition"]["resolvedDependencies"].append({"name": "x"}),
            "one of uri, digest or content",
        ),
        (lambda d: d["predicate"]["buildDefinition"].update(extra=1), "unexpected field 'extra'"),
    ],
)
def test_the_schema_checks_can_fail(mutate, fragment):
    doc = copy.deepcopy(pv.statement(_facts()))
    mutate(doc)
    with pytest.raises(schema.SchemaError, match=re.escape(fragment)):
        schema.slsa_provenance_v1(doc)


# -- the graph for CI ------------------------------------------------------------------------------
def test_plan_graph_levels_and_keys(ns, tmp_path, monkeypatch):
    from chrootforge.build import plangraph as buildplan

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (ns.root / "stage3.tar.zst").write_bytes(b"not really a stage, but hashed like one")
    ns.image("base", 'parent = "scratch"\npackages = ["sys-apps/busybox"]\n')
    ns.image("mid", 'parent = "base"\n')
    ns.image("leaf1", 'parent = "mid"\ntags = ["1.0", "latest"]\n')
    ns.image("leaf2", 'parent = "mid"\n')
    doc = buildplan.graph([str(ns.root)])
    assert doc["version"] == 1 and doc["namespace"] == "t"
    assert doc["levels"] == [["base"], ["mid"], ["leaf1", "leaf2"]]
    images = {i["name"]: i for i in doc["images"]}
    assert [i["name"] for i in doc["images"]] == ["base", "mid", "leaf1", "leaf2"]
    assert images["leaf1"]["parent"] == "mid" and images["base"]["parent"] is None
    assert images["leaf1"]["refs"] == ["localhost/t/leaf1:1.0", "localhost/t/leaf1:latest"]
    assert images["base"]["platform"] == doc["platform"] and doc["platform"].startswith("linux/")
    # the root's key is known offline (a local stage, a tree folder); the others hang on digests
    assert images["base"]["key"].startswith("sha256:") and images["mid"]["key"] is None
    assert doc["keys"] == "partial" and "parent" in doc["keys_note"]
    # spec_key: every image, and a change in a parent's spec changes its children's
    before = {n: i["spec_key"] for n, i in images.items()}
    ns.image("mid", 'parent = "base"\ndescription = "changed"\n')
    after = {i["name"]: i["spec_key"] for i in buildplan.graph([str(ns.root)])["images"]}
    assert after["base"] == before["base"]
    assert all(after[n] != before[n] for n in ("mid", "leaf1", "leaf2"))
    # only the targets' chain
    assert buildplan.graph([str(ns.root / "leaf2")])["levels"] == [["base"], ["mid"], ["leaf2"]]
    # nothing in it depends on where the namespace lies
    assert str(ns.root) not in buildplan.render(doc) and str(tmp_path) not in buildplan.render(doc)


def test_plan_graph_without_offline_inputs_has_no_keys(ns, tmp_path, monkeypatch):
    from chrootforge.build import plangraph as buildplan

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ns.write("chrootforge.toml", 'name = "t"\n[stage3]\narch = "amd64"\n[tree]\npath = "repo"\n')
    ns.image("base", 'parent = "scratch"\n')
    doc = buildplan.graph([str(ns.root)])
    assert doc["keys"] == "unavailable" and "lock" in doc["keys_note"]
    assert doc["images"][0]["key"] is None and doc["images"][0]["spec_key"].startswith("sha256:")


# -- in a layout: the statement, its envelope, and an envelope that no longer fits ----------------
def test_statement_and_envelope_in_a_layout(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import ec

    from chrootforge import oci
    from chrootforge.registry.signing import dsse, keys

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "motd").write_text("hi\n")
    layout = tmp_path / "layout"
    oci.commit(rootfs, layout, "img:1", quiet=True)
    first = pv.encode(pv.statement(_facts()))
    pv.attach(layout, "img:1", first)
    assert pv.read(layout, "img:1") == first
    signer = keys.SigstoreSigner(ec.generate_private_key(ec.SECP256R1()), "test")
    assert pv.sign_in_layout(layout, "img:1", [signer]) == "provenance signed"
    envelope = pv.read(layout, "img:1", pv.ENVELOPE_TYPE)
    payload_type, payload, sigs = dsse.decode(envelope)
    assert payload == first and sigs[0][0] == signer.keyid
    assert keys.verify(signer.key.public_key(), sigs[0][1], dsse.pae(payload_type, payload))
    # up to date: not signed again
    assert pv.sign_in_layout(layout, "img:1", [signer]) == "provenance already signed"
    assert pv.read(layout, "img:1", pv.ENVELOPE_TYPE) == envelope
    # a new statement for the same image (a rebuild elsewhere): the old envelope goes with it
    pv.attach(layout, "img:1", pv.encode(pv.statement(_facts(binhost=None))))
    assert pv.read(layout, "img:1", pv.ENVELOPE_TYPE) is None
