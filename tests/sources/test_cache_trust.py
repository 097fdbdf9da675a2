"""The source cache remembers whom it trusted: a cached verification counts only for a run that
trusts the same signer (the pinned key or one of its own --keyring keys); otherwise the kept
signature is checked again with this run's keys, or the file is refused."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers.mirror import STAMP


def _local_files(identity, mirror_tree, stage_tarball, key) -> tuple:
    """A stage3 with .asc/.DIGESTS signed by `key`, and a snapshot with .gpgsig, in a directory
    the identity owns."""
    base = identity.mkdtemp("local.")
    rel = mirror_tree.publish_stage(stage_tarball, key=key, latest=False)
    name = rel.rsplit("/", 1)[1]
    for suffix in ("", ".asc", ".DIGESTS"):
        shutil.copy(mirror_tree.root / (rel + suffix), base / (name + suffix))
    snap_rel = mirror_tree.publish_snapshot(stage_tarball, date="20240101", key=key)
    snap = snap_rel.rsplit("/", 1)[1]
    for suffix in ("", ".gpgsig"):
        shutil.copy(mirror_tree.root / (snap_rel + suffix), base / (snap + suffix))
    if os.getuid() == 0:
        for path in [base, *base.iterdir()]:
            os.chown(path, identity.uid, identity.gid)
    return base / name, base / snap


@pytest.mark.parametrize("kind", ["stage3", "snapshot"])
def test_a_cached_verification_is_only_trusted_by_runs_that_trust_its_signer(
    identity, gpg_keys, mirror_tree, stage_tarball, kind
):
    stage, snapshot = _local_files(identity, mirror_tree, stage_tarball, gpg_keys.good)
    cache = identity.mkdtemp("cache.")
    path, flag = (stage, "--stage3") if kind == "stage3" else (snapshot, "--snapshot")
    good, rogue = str(gpg_keys.good.public_file), str(gpg_keys.rogue.public_file)

    def fetch(*keys):
        args = ["fetch", kind, flag, str(path), "--cache-dir", str(cache)]
        for key in keys:
            args += ["--keyring", key]
        return identity.cf(*args)

    first = fetch(good)  # signed by A, A trusted: ok, and cached
    assert first.returncode == 0, first.stderr
    other = fetch(rogue)  # a run that trusts only B must not take the cached "verified" as its own
    assert other.returncode == 1, other.stderr
    assert "does not trust" in other.stderr and gpg_keys.good.fingerprint in other.stderr
    none = fetch()  # no key at all: refused too, never "unchanged since it was verified"
    assert none.returncode == 1, none.stderr
    assert "unchanged since it was verified" not in none.stderr
    both = fetch(rogue, good)  # A among the trusted keys again: the cache serves it
    assert both.returncode == 0, both.stderr
    assert "unchanged since it was verified" in both.stderr
    assert "Traceback" not in other.stderr + none.stderr


def test_a_dated_mirror_stage_in_the_cache_needs_a_trusted_signer(
    gpg_keys, mirror_tree, mirror_server, stage_tarball, cache_dir
):
    from chrootforge.errors import VerificationError
    from chrootforge.sources.fetch import fetch_stage3

    mirror_tree.publish_stage(stage_tarball)
    first = fetch_stage3(
        mirrors=[mirror_server.url], date=STAMP, keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    assert first.verified_by == gpg_keys.good.fingerprint
    with pytest.raises(VerificationError, match="does not trust"):
        fetch_stage3(
            mirrors=[mirror_server.url],
            date=STAMP,
            keyrings=[gpg_keys.rogue.public_file],
            cache_dir=cache_dir,
        )
    with pytest.raises(VerificationError):
        fetch_stage3(mirrors=[mirror_server.url], offline=True, cache_dir=cache_dir)
