"""The hold protocol: shared holds for users, a non-blocking exclusive claim for prune."""

from __future__ import annotations

import os
import threading
import time

from chrootforge.holds import Holds, claim, hold_path, last_used


def test_a_hold_blocks_a_claim_until_released(tmp_path):
    entry = tmp_path / "stage"
    entry.mkdir()
    with Holds() as holds:
        holds.hold(entry)
        assert holds.held() == [entry]
        with claim(entry) as free:
            assert not free
    with claim(entry) as free:
        assert free


def test_two_holders_share(tmp_path):
    entry = tmp_path / "tree"
    with Holds() as a, Holds() as b:
        a.hold(entry)
        b.hold(entry)  # would deadlock here if holds were exclusive
        with claim(entry) as free:
            assert not free


def test_hold_stamps_last_use(tmp_path):
    entry = tmp_path / "old"
    entry.mkdir()
    assert last_used(entry) is None
    before = time.time()
    with Holds() as holds:
        holds.hold(entry)
        os.utime(hold_path(entry), (1, 1))
    assert last_used(entry) >= before - 1  # dropping the hold stamps again


def test_a_hold_waits_for_a_running_removal_and_then_locks_the_new_file(tmp_path):
    """prune removes the entry and its lock file while claiming: the waiting holder must not end
    up locking the unlinked inode (a later claim would then not see it)."""
    entry = tmp_path / "stage"
    entry.mkdir()
    got = threading.Event()
    holds = Holds()

    def user():
        holds.hold(entry)
        got.set()

    with claim(entry) as free:
        assert free
        thread = threading.Thread(target=user)
        thread.start()
        time.sleep(0.3)
        assert not got.is_set(), "the hold waited for the claim"
        entry.rmdir()  # the removal; leaving the claim unlinks the lock file
    thread.join(5)
    assert got.is_set()
    assert hold_path(entry).exists()  # the holder made a new lock file ...
    with claim(entry) as free:
        assert not free  # ... and a later prune sees its hold
    holds.close()
    with claim(entry) as free:
        assert free
    assert not hold_path(entry).exists()  # no entry: its lock file goes with the claim
