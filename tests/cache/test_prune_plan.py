"""The prune policy and the cache scan, as values (no privileges, no other process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chrootforge.cache.kinds import KINDS, Entry, scan, usage
from chrootforge.cache.prune import Policy, parse_age, plan
from chrootforge.errors import UsageError

DAY = 86400.0
NOW = 1_700_000_000.0


def _e(kind: str, name: str, age_days: float, stale: bool = False, size: int = 10) -> Entry:
    path = Path("/c") / kind / name
    return Entry(kind, f"{kind}/{name}", path, size, NOW - age_days * DAY, path, None, stale)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * DAY),
        ("12h", 43200),
        ("90m", 5400),
        ("2w", 14 * DAY),
        ("45s", 45),
        ("0", 0),
        ("1.5d", 1.5 * DAY),
    ],
)
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "3y", "1d2h"])
def test_parse_age_refuses(text):
    with pytest.raises(UsageError, match="bad age"):
        parse_age(text)


def test_older_than_removes_only_old_entries():
    entries = [_e("stages", "new", 1), _e("stages", "old", 40), _e("distfiles", "a.tar", 31)]
    doomed = plan(entries, Policy(older_than=30 * DAY), NOW)
    assert [e.name for e in doomed] == ["stages/old", "distfiles/a.tar"]


def test_keep_counts_per_kind_most_recent_first():
    entries = [_e("stages", n, age) for n, age in (("a", 5), ("b", 1), ("c", 3))] + [_e("trees", "t", 9)]
    doomed = plan(entries, Policy(keep=1), NOW)
    assert [e.name for e in doomed] == ["stages/a", "stages/c"]  # trees keeps its only entry


def test_keep_and_age_together_must_both_agree():
    entries = [_e("binpkgs", n, age) for n, age in (("a", 50), ("b", 40), ("c", 2))]
    doomed = plan(entries, Policy(older_than=30 * DAY, keep=1), NOW)
    assert [e.name for e in doomed] == ["binpkgs/a", "binpkgs/b"]
    assert plan(entries, Policy(older_than=45 * DAY, keep=1), NOW)[0].name == "binpkgs/a"
    assert plan(entries, Policy(older_than=30 * DAY, keep=3), NOW) == []


def test_leftovers_of_interrupted_runs_go_whatever_their_age():
    entries = [_e("stages", ".k.extract-1", 0, stale=True), _e("stages", "k", 0)]
    doomed = plan(entries, Policy(older_than=30 * DAY, keep=5), NOW)
    assert [e.name for e in doomed] == ["stages/.k.extract-1"]


def test_negative_keep_is_a_usage_error():
    with pytest.raises(UsageError):
        Policy(keep=-1)


def test_scan_finds_each_kind_and_skips_locks(tmp_path):
    root = tmp_path
    (root / "sources/blobs/abc").mkdir(parents=True)
    (root / "sources/blobs/abc/stage3.tar.xz").write_bytes(b"x" * 100)
    (root / "sources/partial").mkdir()
    (root / "sources/partial/123-file").write_bytes(b"y" * 7)
    (root / "sources/partial/123-file.lock").write_bytes(b"")
    (root / "stages/k1-map").mkdir(parents=True)
    (root / "stages/k1-map/etc").mkdir()
    (root / "stages/k1-map/etc/a").write_bytes(b"z" * 50)
    os.link(root / "stages/k1-map/etc/a", root / "stages/k1-map/etc/b")  # counted once
    (root / "stages/.k1-map.lock").write_bytes(b"")
    (root / "stages/.k2-map.extract-xyz").mkdir()
    (root / "trees").mkdir()
    (root / "trees/.t9.tmp").mkdir()
    (root / "trees/..t9.tmp.extract-abc").mkdir()
    (root / "distfiles").mkdir()
    (root / "distfiles/pkg.tar.gz").write_bytes(b"d" * 30)
    (root / "binpkgs/ns-1").mkdir(parents=True)
    (root / "vm/.0e89.tmp-4242/work").mkdir(parents=True)  # a guest build killed part-way
    (root / "stage-digests.json").write_text("{}")
    found = {k.name: scan(k, root) for k in KINDS}
    assert sorted(e.name for e in found["sources"]) == ["sources/blobs/abc", "sources/partial/123-file"]
    partial = next(e for e in found["sources"] if "partial" in e.name)
    assert partial.busy_lock == root / "sources/partial/123-file.lock"
    stages = {e.name: e for e in found["stages"]}
    assert set(stages) == {"stages/k1-map", "stages/.k2-map.extract-xyz"}
    assert stages["stages/k1-map"].size == 50 + (root / "stages/k1-map/etc").lstat().st_size
    assert stages["stages/.k2-map.extract-xyz"].stale
    assert stages["stages/.k2-map.extract-xyz"].busy_lock == root / "stages/.k2-map.lock"
    distfile = found["distfiles"][0]
    assert distfile.hold == root / "distfiles", "a build holds the distfiles directory as a whole"
    assert [e.name for e in found["binpkgs"]] == ["binpkgs/ns-1"]
    assert {e.name: e.busy_lock for e in found["trees"]} == {
        "trees/.t9.tmp": root / "trees/.t9.lock",
        "trees/..t9.tmp.extract-abc": root / "trees/.t9.lock",
    }
    assert all(e.stale for e in found["trees"])
    assert [(e.name, e.stale, e.busy_lock) for e in found["vm"]] == [
        ("vm/.0e89.tmp-4242", True, root / "vm/.0e89.lock")  # the lock vm.artifacts builds under
    ]
    rows, other = usage(root)
    by = {r.kind: r for r in rows}
    assert by["sources"].entries == 2 and by["sources"].size >= 107
    assert by["distfiles"].size == 30 and other == 2


def test_kind_table_agrees_with_the_modules_that_fill_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from chrootforge.cache.kinds import kind_root
    from chrootforge.sources import cache, stage_cache

    assert kind_root("sources") == cache.default_root()
    assert kind_root("stages") == stage_cache.default_root()


def test_a_leftover_is_kept_while_its_creation_lock_is_held(tmp_path):
    """A half-extracted stage is only a leftover once nobody extracts it any more."""
    from chrootforge.cache.prune import prune
    from chrootforge.fsutil import file_lock

    stages = tmp_path / "stages"
    (stages / ".k1-m.extract-a").mkdir(parents=True)
    with file_lock(stages / ".k1-m.lock"):  # an extraction in progress
        busy = prune(Policy(older_than=30 * DAY), ["stages"], cache_root=tmp_path)
    assert [e.name for e in busy.held] == ["stages/.k1-m.extract-a"] and busy.removed == []
    done = prune(Policy(older_than=30 * DAY), ["stages"], cache_root=tmp_path)
    assert [e.name for e in done.removed] == ["stages/.k1-m.extract-a"]
    assert not (stages / ".k1-m.extract-a").exists()
