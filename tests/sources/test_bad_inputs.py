"""The bad-input corpus: each case is one clear error, nothing extracted, nothing left in the caches."""

from __future__ import annotations

import os

import pytest

from chrootforge.errors import CfError, VerificationError
from chrootforge.sources import fetch
from chrootforge.sources.stage_cache import pristine_root
from tests.helpers.mirror import STAMP, make_tar, member
from tests.sources.conftest import cache_is_empty
from tests.sources.test_extract import HOSTILE

GOOD = make_tar([member("./etc", "dir"), member("./etc/os-release", data=b"ID=gentoo\n")])


def _bad_signature(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    tree.write(rel + ".asc", keys.detach_sign(GOOD + b"tampered", keys.good))


def _unpinned_signer(tree, server, keys):
    tree.publish_stage(GOOD, key=keys.rogue)  # rogue signs both the latest file and the tarball


def _unpinned_signer_known_key(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    tree.write(rel + ".asc", keys.detach_sign(GOOD, keys.rogue))
    os.environ["CHROOTFORGE_GENTOO_KEYRING"] = str(keys.rogue.public_file)  # present, but not pinned


def _no_signature_file(tree, server, keys):
    (tree.root / tree.publish_stage(GOOD)).with_suffix(".xz.asc").unlink()


def _digests_mismatch(tree, server, keys):
    tree.publish_stage(GOOD, digests_for=GOOD + b"x")


def _missing_digests_line(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    lines = (tree.root / (rel + ".DIGESTS")).read_text().splitlines(keepends=True)
    tree.write(
        rel + ".DIGESTS",
        "".join(line for line in lines if "CONTENTS" in line or line.startswith("#")).encode(),
    )


def _no_digests_file(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    (tree.root / (rel + ".DIGESTS")).unlink()


def _conflicting_digests(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    name = rel.rsplit("/", 1)[1]
    text = (tree.root / (rel + ".DIGESTS")).read_text() + f"# SHA512 HASH\n{'0' * 128}  {name}\n"
    tree.write(rel + ".DIGESTS", text.encode())


def _truncated_tarball(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    tree.write(rel, GOOD[: len(GOOD) // 2])


def _html_error_page(tree, server, keys):
    rel = tree.publish_stage(GOOD)
    server.fault(rel, status=200, body=b"<!DOCTYPE html><html><title>Oops</title></html>")


def _latest_covers_other_text(tree, server, keys):
    tree.publish_stage(GOOD)
    signed = keys.clearsign(tree.latest_text(STAMP, len(GOOD)), keys.good).decode()
    forged = signed.replace(f"{STAMP}/stage3", "20991231T000000Z/stage3")
    assert forged != signed
    tree.write_latest(STAMP, 0, raw=forged.encode())


def _latest_text_outside_signature(tree, server, keys):
    tree.publish_stage(GOOD)
    signed = keys.clearsign(tree.latest_text(STAMP, len(GOOD)), keys.good)
    tree.write_latest(
        STAMP, 0, raw=signed + b"20991231T000000Z/stage3-amd64-openrc-20991231T000000Z.tar.xz 1\n"
    )


def _latest_not_clearsigned(tree, server, keys):
    tree.publish_stage(GOOD)
    tree.write_latest(STAMP, 0, raw=tree.latest_text(STAMP, len(GOOD)).encode())


def _latest_signed_by_unpinned(tree, server, keys):
    tree.publish_stage(GOOD)
    tree.write_latest(STAMP, len(GOOD), key=keys.rogue)


def _latest_names_other_variant(tree, server, keys):
    tree.publish_stage(GOOD)
    text = tree.latest_text(STAMP, len(GOOD)).replace("amd64-openrc", "amd64-systemd")
    tree.write_latest(STAMP, 0, raw=keys.clearsign(text, keys.good))


def _empty_tarball(tree, server, keys):
    tree.publish_stage(b"")


def _wrong_compression(tree, server, keys):
    tree.publish_stage(b"PK\x03\x04" + os.urandom(700))  # a zip, validly signed


CASES = {
    "bad-signature": (_bad_signature, VerificationError, "BAD signature"),
    "unpinned-signer": (_unpinned_signer, VerificationError, "unknown key|cannot be checked"),
    "unpinned-signer-with-known-key": (_unpinned_signer_known_key, VerificationError, "not a pinned"),
    "no-signature-file": (_no_signature_file, VerificationError, r"no \.asc or \.DIGESTS"),
    "digests-mismatch": (_digests_mismatch, VerificationError, "SHA512 mismatch"),
    "missing-digests-line": (_missing_digests_line, VerificationError, "no SHA512 or BLAKE2B line"),
    "no-digests-file": (_no_digests_file, VerificationError, r"no \.asc or \.DIGESTS"),
    "conflicting-digests": (_conflicting_digests, VerificationError, "two different SHA512"),
    "truncated-tarball": (_truncated_tarball, VerificationError, "BAD signature"),
    "html-error-page": (_html_error_page, VerificationError, "HTML page"),
    "latest-covers-other-text": (_latest_covers_other_text, VerificationError, "BAD signature"),
    "latest-text-outside-signature": (
        _latest_text_outside_signature,
        VerificationError,
        "outside the signed",
    ),
    "latest-not-clearsigned": (_latest_not_clearsigned, VerificationError, "not a clearsigned"),
    "latest-signed-by-unpinned": (
        _latest_signed_by_unpinned,
        VerificationError,
        "unknown key|cannot be checked",
    ),
    "latest-names-other-variant": (
        _latest_names_other_variant,
        VerificationError,
        "not a stage3-amd64-openrc",
    ),
    "empty-tarball": (_empty_tarball, VerificationError, "is empty"),
    "wrong-compression": (_wrong_compression, VerificationError, "not a tar archive"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fetch_corpus(case, mirror_tree, mirror_server, gpg_keys, cache_dir, monkeypatch):
    setup, error, pattern = CASES[case]
    monkeypatch.setenv("CHROOTFORGE_GENTOO_KEYRING", "")
    setup(mirror_tree, mirror_server, gpg_keys)
    with pytest.raises(error, match=pattern) as caught:
        fetch.fetch_stage3(
            mirrors=[mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
        )
    assert caught.value.hint, "every error says what to do"
    assert cache_is_empty(cache_dir)


def test_unknown_variant_is_404_everywhere(mirror_tree, mirror_server, second_mirror, gpg_keys, cache_dir):
    mirror_tree.publish_stage(GOOD)
    with pytest.raises(CfError, match="could not fetch stage3-amd64-musl-nosuch") as caught:
        fetch.fetch_stage3(
            "amd64",
            "musl-nosuch",
            [mirror_server.url, second_mirror[1].url],
            keyrings=[gpg_keys.good.public_file],
            cache_dir=cache_dir,
        )
    assert "404" in str(caught.value) and cache_is_empty(cache_dir)


def test_snapshot_bad_and_missing_signature(mirror_tree, mirror_server, gpg_keys, cache_dir):
    rel = mirror_tree.publish_snapshot(GOOD, "20240101")
    mirror_tree.write(rel + ".gpgsig", gpg_keys.detach_sign(b"other", gpg_keys.good))
    with pytest.raises(VerificationError, match="BAD signature"):
        fetch.fetch_snapshot("20240101", [mirror_server.url], [gpg_keys.good.public_file], cache_dir)
    (mirror_tree.root / (rel + ".gpgsig")).unlink()
    with pytest.raises(VerificationError, match="no .gpgsig"):
        fetch.fetch_snapshot("20240101", [mirror_server.url], [gpg_keys.good.public_file], cache_dir)
    assert cache_is_empty(cache_dir)


def test_air_gapped_stage_without_signature(mirror_tree, gpg_keys, cache_dir):
    rel = mirror_tree.publish_stage(GOOD)
    (mirror_tree.root / (rel + ".asc")).unlink()
    with pytest.raises(VerificationError, match=r"\.asc is missing"):
        fetch.use_local_stage(mirror_tree.root / rel, [gpg_keys.good.public_file], cache_dir=cache_dir)
    assert cache_is_empty(cache_dir)


def test_bad_keyring_file_is_a_usage_error(tmp_path, cache_dir):
    from chrootforge.errors import UsageError

    (tmp_path / "junk.asc").write_text("not a key")
    with pytest.raises(UsageError, match="no OpenPGP public key"):
        fetch.fetch_stage3(
            mirrors=["http://127.0.0.1:9"], keyrings=[tmp_path / "junk.asc"], cache_dir=cache_dir
        )


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_signed_but_hostile_stage_is_never_extracted(case, mirror_tree, mirror_server, gpg_keys, cache_dir):
    """A valid signature does not make a tarball safe: the extraction refuses it all the same."""
    members, _offender = HOSTILE[case]
    mirror_tree.publish_stage(make_tar(members))
    got = fetch.fetch_stage3(
        mirrors=[mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    stages = cache_dir / "stages"
    with pytest.raises(VerificationError, match="refusing archive member"):
        pristine_root(got, cache_dir=stages)
    assert [p.name for p in stages.iterdir() if not p.name.startswith(".") and p.name != "digests.json"] == []
    assert not any(p.name.startswith(".") and "extract" in p.name for p in stages.iterdir())


def test_cli_bad_signature_is_one_clear_line(identity, mirror_tree, mirror_server, gpg_keys):
    _bad_signature(mirror_tree, mirror_server, gpg_keys)
    cache = identity.mkdtemp("cache.")
    out = identity.cf(
        "fetch",
        "stage3",
        "--mirror",
        mirror_server.url,
        "--keyring",
        str(gpg_keys.good.public_file),
        "--cache-dir",
        str(cache),
    )
    assert out.returncode == 1
    assert "BAD signature" in out.stderr and "hint:" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert cache_is_empty(cache)
