"""Inputs identified by content, the lock file, the build's one epoch (no sandbox needed)."""

from __future__ import annotations

import calendar
import shutil
import time
from pathlib import Path

import pytest

from chrootforge import lockfile
from chrootforge.errors import UsageError, VerificationError
from chrootforge.gentoo import inputs as inp
from chrootforge.sources.fetched import FetchedFile
from chrootforge.spec.namespace import load_namespace


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def _with_stage(ns, data: bytes = b"stage bytes") -> None:
    (ns.root / "stage3.tar.zst").write_bytes(data)


def test_identity_is_content_not_location(ns, tmp_path, cache):
    _with_stage(ns)
    first = inp.identify(load_namespace(ns.root))
    moved = tmp_path / "elsewhere" / "deeper" / "ns"
    shutil.copytree(ns.root, moved)
    second = inp.identify(load_namespace(moved))
    assert (first.stage_id, first.tree_id) == (second.stage_id, second.tree_id)
    assert "stage3.tar.zst:" in first.stage_id and str(ns.root) not in first.stage_id + first.tree_id
    ns_moved = load_namespace(moved)
    assert inp.binpkg_key(load_namespace(ns.root), first) == inp.binpkg_key(ns_moved, second)
    _with_stage(ns, b"other stage bytes")
    assert inp.identify(load_namespace(ns.root)).stage_id != first.stage_id


def test_binpkg_key_follows_what_makes_binaries_compatible(ns, cache):
    _with_stage(ns)
    base_ns = load_namespace(ns.root)
    inputs = inp.identify(base_ns)
    base = inp.binpkg_key(base_ns, inputs)
    assert inp.binpkg_key(base_ns, inputs, (("app-misc/hello", "CFLAGS=-O3"),)) != base
    ns.write(
        "chrootforge.toml",
        ns.root.joinpath("chrootforge.toml").read_text() + '[make_conf]\nCFLAGS = "-O3 -pipe"\n',
    )
    assert inp.binpkg_key(load_namespace(ns.root), inputs) != base
    ns.image("img", 'parent = "scratch"\n[package."app-misc/hello"]\nenv = { CFLAGS = "-O1" }\n')
    from chrootforge.spec.image import load_image

    assert inp.package_env_of(load_image(load_namespace(ns.root), "img")) == (
        ("app-misc/hello", "CFLAGS=-O1"),
    )


def test_lock_round_trip_and_refusals(ns, tmp_path, cache):
    lock = lockfile.Lock(
        lockfile.LockedStage("stage3.tar.zst", "ab" * 64, "F" * 40),
        lockfile.LockedTree(id="sha256:" + "1" * 64),
        {"extra": "sha256:" + "2" * 64},
    )
    path = lockfile.write(ns.root, lock, "t")
    text = path.read_text()
    assert lockfile.load(ns.root) == lock
    assert text.index("[stage3]") < text.index("[tree]") < text.index("[repos]")
    assert text.splitlines()[3:7] == ["", "[stage3]", 'name = "stage3.tar.zst"', f'sha512 = "{"ab" * 64}"']
    _with_stage(ns)
    with pytest.raises(VerificationError, match="pins"):  # the stage is not what the lock says
        inp.identify(load_namespace(ns.root))
    for broken, message in (
        ("version = 7\n", "version"),
        ("version = 1\n[tree]\nid='x'\n", r"\[stage3\]"),
        (
            "version = 1\n[stage3]\nname='x'\nsha512='"
            + "a" * 128
            + "'\nsigner='"
            + "F" * 40
            + "'\n[tree]\n",
            "needs an id",
        ),
        ("[[[", "not a valid lock"),
    ):
        path.write_text(broken)
        with pytest.raises(UsageError, match=message):
            lockfile.load(ns.root)


def test_locked_tree_that_changed_is_refused(ns, cache):
    _with_stage(ns)
    ns_value = load_namespace(ns.root)
    current = inp.identify(ns_value)
    sha512 = current.stage_id.split(":", 1)[1]
    lockfile.write(
        ns.root,
        lockfile.Lock(
            lockfile.LockedStage("stage3.tar.zst", sha512, "F" * 40), lockfile.LockedTree(id=current.tree_id)
        ),
        "t",
    )
    assert inp.identify(ns_value).lock is not None
    (ns.root / "repo" / "profiles" / "new-file").write_text("changed\n")
    with pytest.raises(VerificationError, match="the tree .* pins"):
        inp.identify(load_namespace(ns.root))


def _record(name: str, kind: str = "stage3") -> FetchedFile:
    return FetchedFile(Path("/x") / name, "0" * 128, "0" * 128, "F" * 40, "https://mirror.invalid/x", kind)


def test_epoch_comes_from_content():
    stamp = calendar.timegm(time.strptime("20240108T170000Z", "%Y%m%dT%H%M%SZ"))
    stage = _record("stage3-amd64-openrc-20240108T170000Z.tar.xz")
    assert inp.derived_epoch(stage, 12345, None, None) == stamp  # the release stamp wins over mtimes
    bare = _record("stage3-amd64-cfworld-abc.tar.zst")
    assert inp.derived_epoch(bare, 1700000000, None, None) == 1700000000  # no stamp: newest inside
    snap = _record("gentoo-20250101.tar.xz", "snapshot")
    assert inp.derived_epoch(stage, None, None, snap) == calendar.timegm(time.strptime("20250101", "%Y%m%d"))
    assert inp.derived_epoch(bare, None, None, None) == 0


def test_latest_snapshot_dates_itself(tmp_path):
    tree = tmp_path / "gentoo"
    (tree / "metadata").mkdir(parents=True)
    (tree / "metadata" / "timestamp.chk").write_text("Sat, 30 Nov 2024 00:45:01 +0000\n")
    stamp = calendar.timegm(time.strptime("20241130004501", "%Y%m%d%H%M%S"))
    assert inp.derived_epoch(None, None, tree, _record("gentoo-latest.tar.xz", "snapshot")) == stamp
