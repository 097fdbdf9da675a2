"""Gentoo's pinned keys from a Web Key Directory: served by a real HTTP server on 127.0.0.1.

The pinned fingerprint is the test key's here (Gentoo's own keys cannot sign test stages), set on
the fetch module and given the release key's WKD address; everything else is the real path: the
HTTP fetch, gpg, the key cache, the signature check.
"""

from __future__ import annotations

import pytest

from chrootforge.errors import UsageError, VerificationError
from chrootforge.sources import fetch, pinned, verify, wkd
from tests.helpers.identity import shared_dir
from tests.helpers.mirror import MirrorServer, MirrorTree

ADDRESS = "releng@gentoo.org"


def test_zbase32_hash_matches_the_draft_example():
    # draft-koch-openpgp-webkey-service, section 3.1: "Joe.Doe@Example.ORG"
    assert wkd.local_hash("Joe.Doe") == "iy9q119eutrkn8s1mk4r39qejnbu3n5q"
    assert wkd.zbase32(b"") == "" and len(wkd.local_hash("x")) == 32


def test_urls_advanced_then_direct_and_the_override():
    h = wkd.local_hash("releng")
    assert wkd.urls(ADDRESS) == [
        f"https://openpgpkey.gentoo.org/.well-known/openpgpkey/gentoo.org/hu/{h}?l=releng",
        f"https://gentoo.org/.well-known/openpgpkey/hu/{h}?l=releng",
    ]
    assert wkd.urls(ADDRESS, "http://127.0.0.1:9/") == [
        f"http://127.0.0.1:9/.well-known/openpgpkey/hu/{h}?l=releng"
    ]


def test_the_address_table_covers_exactly_the_pinned_keys():
    assert set(wkd.ADDRESSES) == {pinned.GENTOO_RELENG, pinned.GENTOO_SNAPSHOT}


@pytest.mark.parametrize("value", ["http://keys.example.org", "ftp://127.0.0.1/", "127.0.0.1:80"])
def test_override_must_be_https_or_loopback_http(monkeypatch, value):
    monkeypatch.setenv(wkd.URL_ENV, value)
    with pytest.raises(UsageError, match="not an https:// URL"):
        wkd.configured_base()


@pytest.fixture
def wkd_server(gpg_keys, monkeypatch, tmp_path):
    """A key directory on 127.0.0.1, the test key pinned as Gentoo's release key, a private cache."""
    root = shared_dir("wkd.")
    server = MirrorServer(root)
    monkeypatch.setenv(wkd.URL_ENV, server.url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fetch, "GENTOO_RELENG", gpg_keys.good.fingerprint)
    monkeypatch.setitem(wkd.ADDRESSES, gpg_keys.good.fingerprint, ADDRESS)
    tree = MirrorTree(root, gpg_keys)
    yield tree, server
    server.stop()
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def _publish(tree: MirrorTree, key_file) -> str:
    """Serve a key (binary, as the draft asks) at the direct-method path of releng@."""
    import subprocess

    binary = subprocess.run(
        ["gpg", "--dearmor"], input=key_file.read_bytes(), capture_output=True, check=True
    ).stdout
    rel = f".well-known/openpgpkey/hu/{wkd.local_hash('releng')}"
    tree.write(rel, binary)
    return rel


def test_first_fetch_gets_the_key_from_wkd_then_the_cache_serves_it(
    wkd_server, mirror_tree, mirror_server, gpg_keys, stage_tarball, cache_dir, capfd
):
    tree, server = wkd_server
    rel = _publish(tree, gpg_keys.good.public_file)
    mirror_tree.publish_stage(stage_tarball)
    got = fetch.fetch_stage3(mirrors=[mirror_server.url], cache_dir=cache_dir)  # no --keyring
    assert got.verified_by == gpg_keys.good.fingerprint
    assert [r[0] for r in server.requests] == [rel]
    err = capfd.readouterr().err
    fetched = [line for line in err.splitlines() if "fetched Gentoo's OpenPGP key" in line]
    assert len(fetched) == 1 and gpg_keys.good.fingerprint in fetched[0]
    cached = wkd.key_file(gpg_keys.good.fingerprint)
    assert cached.is_file() and b"BEGIN PGP PUBLIC KEY BLOCK" in cached.read_bytes()

    server.stop()  # no key directory any more: the cached key is enough
    again = fetch.use_local_stage(got.path, cache_dir=cache_dir)  # verifies again, offline
    assert again.verified_by == gpg_keys.good.fingerprint
    assert "fetched Gentoo's OpenPGP key" not in capfd.readouterr().err


def test_a_wrong_key_at_the_wkd_path_is_refused(
    wkd_server, mirror_tree, mirror_server, gpg_keys, stage_tarball, cache_dir
):
    tree, _server = wkd_server
    _publish(tree, gpg_keys.rogue.public_file)
    mirror_tree.publish_stage(stage_tarball, key=gpg_keys.rogue)
    with pytest.raises(VerificationError) as info:
        fetch.fetch_stage3(mirrors=[mirror_server.url], cache_dir=cache_dir)
    text = info.value.render()
    assert (
        f"served {gpg_keys.rogue.fingerprint} for {ADDRESS}, not the pinned key "
        f"{gpg_keys.good.fingerprint}" in text
    )
    assert text.count("\n") == 1 and "hint:" in text  # one line and its hint
    assert not wkd.key_file(gpg_keys.good.fingerprint).exists(), "nothing was cached"
    assert mirror_server.requests == [], "refused before the mirror was asked for anything"


def test_a_key_bundle_is_cut_down_to_the_pinned_key(wkd_server, gpg_keys, tmp_path):
    tree, _server = wkd_server
    bundle = tmp_path / "bundle.asc"
    bundle.write_bytes(gpg_keys.rogue.public_file.read_bytes() + gpg_keys.good.public_file.read_bytes())
    _publish(tree, bundle)
    with verify.Verifier((gpg_keys.good.fingerprint,)) as verifier:
        assert verifier.accepted == {gpg_keys.good.fingerprint}
    import gnupg

    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    listed = gnupg.GPG(gnupghome=str(home)).scan_keys(str(wkd.key_file(gpg_keys.good.fingerprint)))
    assert [k["fingerprint"] for k in listed] == [gpg_keys.good.fingerprint]


def test_keyring_still_wins_over_wkd(
    wkd_server, mirror_tree, mirror_server, gpg_keys, stage_tarball, cache_dir
):
    tree, server = wkd_server
    _publish(tree, gpg_keys.rogue.public_file)  # a hostile directory that must not even be asked
    mirror_tree.publish_stage(stage_tarball)
    got = fetch.fetch_stage3(
        mirrors=[mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    assert got.verified_by == gpg_keys.good.fingerprint
    assert server.requests == []


def test_unreachable_directory_is_one_clear_error(
    wkd_server, mirror_tree, mirror_server, stage_tarball, cache_dir
):
    _tree, server = wkd_server
    server.stop()
    mirror_tree.publish_stage(stage_tarball)
    with pytest.raises(VerificationError, match="could not be reached") as info:
        fetch.fetch_stage3(mirrors=[mirror_server.url], cache_dir=cache_dir)
    assert "--keyring" in info.value.hint


def test_an_expired_cached_key_is_fetched_again(wkd_server, monkeypatch, tmp_path, capfd):
    """Gentoo extends its keys' expiry now and then: a cached copy that has expired is refreshed."""
    import subprocess

    import gnupg

    home = tmp_path / "renew"
    home.mkdir(mode=0o700)
    old_gpg = gnupg.GPG(gnupghome=str(home), options=["--faked-system-time", "20200101T000000!"])
    key = old_gpg.gen_key(
        old_gpg.gen_key_input(
            name_real="Renewed",
            name_email="releng@test.invalid",
            key_type="EDDSA",
            key_curve="ed25519",
            expire_date="1y",
            no_protection=True,
        )
    )
    fpr = key.fingerprint
    expired = tmp_path / "expired.asc"
    expired.write_text(old_gpg.export_keys(fpr))
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--quick-set-expire", fpr, "0"],
        check=True,
        capture_output=True,
    )
    renewed = tmp_path / "renewed.asc"
    renewed.write_text(gnupg.GPG(gnupghome=str(home)).export_keys(fpr))
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True
    )
    monkeypatch.setitem(wkd.ADDRESSES, fpr, ADDRESS)
    cached = wkd.key_file(fpr)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(expired.read_bytes())
    tree, server = wkd_server
    _publish(tree, renewed)
    with verify.Verifier((fpr,)) as verifier:
        assert verifier.accepted == {fpr}
    assert len(server.requests) == 1 and "fetched Gentoo's OpenPGP key" in capfd.readouterr().err
    assert cached.read_bytes() != expired.read_bytes()
    with verify.Verifier((fpr,)):  # the renewed copy is reused
        pass
    assert len(server.requests) == 1
    cached.write_bytes(expired.read_bytes())
    server.stop()  # expired, and no way to refresh it: the old copy is used (gpg judges it), said once
    with verify.Verifier((fpr,)) as verifier:
        assert verifier.accepted == {fpr}
    assert capfd.readouterr().err.count("has expired and Gentoo's key directory could not be reached") == 1
