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


def test_a_session_collects_what_modules_hold_and_releases_it_at_its_end(tmp_path):
    """build opens one session: what its modules take in holds.current() is held until it ends."""
    from chrootforge import holds

    a, b = tmp_path / "binpkgs-key", tmp_path / "stage-key"
    with holds.session() as outer:
        assert holds.current() is outer
        holds.current().hold(a)
        with holds.session() as inner:  # (a nested run has its own)
            holds.current().hold(b)
            assert holds.current() is inner
        with claim(b) as free:
            assert free, "the inner session released its holds"
        with claim(a) as free:
            assert not free
        assert outer.held() == [a]
    with claim(a) as free:
        assert free
    assert holds.current() is holds.process_holds()  # outside a session: until the process exits


def test_release_of_a_gone_temp_entry_leaves_no_lock_file(tmp_path):
    """A fetch's scratch dir and a guest's run dir are held by their maker from before they exist;
    once removed, dropping the hold removes the lock file too, so none pile up."""
    scratch = tmp_path / "fetch-0123"
    mine = Holds()
    mine.hold(scratch)
    scratch.mkdir()
    with claim(scratch) as free:
        assert not free  # prune sees it in use: not a leftover
    scratch.rmdir()
    mine.release(scratch)
    assert not hold_path(scratch).exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    mine.hold(kept)
    mine.release(kept)
    assert hold_path(kept).exists()  # an entry that is still there keeps its last-use stamp


def test_another_users_hold_file_is_held_read_only(user_identity):
    """VM artifacts may be shared by users: root's hold file in the user's folder (or the other way
    round) is still a hold, taken through a read-only fd; a folder nobody lets us write is no error."""
    import shutil
    import subprocess

    from tests.helpers.identity import shared_dir

    folder = shared_dir("sharedholds.")
    try:
        entry = folder / "artifacts"
        entry.mkdir()
        os.chown(folder, user_identity.uid, user_identity.gid)
        with Holds() as mine:  # root makes the hold file: 0644, root's
            mine.hold(entry)
        assert hold_path(entry).stat().st_uid == os.getuid()
        code = (
            "import sys; from chrootforge.holds import Holds; h = Holds(); h.hold(sys.argv[1]); "
            "print('held', len(h.held()), flush=True); sys.stdin.read()"
        )
        argv = [*user_identity.python, "-c", code]
        holder = user_identity.popen(
            [*argv, str(entry)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout.readline().split() == ["held", "1"]
            with claim(entry) as free:
                assert not free, "the user's read-only hold counts"
        finally:
            holder.stdin.close()
            holder.wait(30)
        closed = folder / "closed"
        closed.mkdir(mode=0o555)  # root's, not writable by the user: no hold file can be made
        probe = user_identity.run([*argv, str(closed / "x")], input="")
        assert probe.returncode == 0 and probe.stdout.split() == ["held", "0"], probe.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
