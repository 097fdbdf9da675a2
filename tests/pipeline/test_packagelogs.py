"""gentoo/packagelogs.py: what the host keeps of the logs that a build sandbox wrote."""

from __future__ import annotations

import os

from chrootforge.gentoo import packagelogs

NAME = "app-misc:hello-1.0:20261206-083224.log"


def _logs(tmp_path):
    cf = tmp_path / "cf"
    (cf / "package-logs").mkdir(parents=True)
    return cf, cf / "package-logs"


def test_new_and_grown_logs_are_read_once(tmp_path):
    cf, logs = _logs(tmp_path)
    (logs / NAME).write_text("compiling\n")
    (logs / "not-a-package-log.txt").write_text("x")
    seen: dict[str, int] = {}
    names = packagelogs.pending(cf, seen)
    assert names == [NAME]
    assert packagelogs.read(str(cf), names) == [(NAME, b"compiling\n")]
    seen[NAME] = len(b"compiling\n")
    assert packagelogs.pending(cf, seen) == []
    with open(logs / NAME, "a") as handle:
        handle.write("error\n")
    assert packagelogs.pending(cf, seen) == [NAME]


def test_a_log_that_leads_out_or_blocks_is_refused(tmp_path):
    cf, logs = _logs(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    os.symlink(secret, logs / NAME)
    fifo = "app-misc:fifo-1:20261206-000000.log"
    os.mkfifo(logs / fifo)
    got = dict(packagelogs.read(str(cf), packagelogs.pending(cf, {})))
    # the link resolves inside the work dir, where nothing has that name: not read at all
    assert set(got) == {fifo}
    assert isinstance(got[fifo], str) and "FIFO" in got[fifo], got  # a refusal, never a hang
    os.unlink(logs / NAME)
    os.symlink("../../secret", logs / NAME)  # a relative way out stays inside the root too
    assert NAME not in dict(packagelogs.read(str(cf), [NAME]))


def test_a_logdir_that_is_a_symlink_is_not_followed(tmp_path):
    cf = tmp_path / "cf"
    cf.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / NAME).write_text("not the sandbox's")
    os.symlink(elsewhere, cf / "package-logs")
    assert packagelogs.pending(cf, {}) == []


def test_the_failed_package_log_is_found_in_emerges_report():
    text = (
        f" * The complete build log is located at '/cf/package-logs/{NAME}'.\n"
        ">>> Failed to emerge app-misc/hello-1.0, Log file:\n"
        f">>>  '/cf/package-logs/{NAME}'\n"
    )
    assert packagelogs.named_in(text) == NAME
    assert packagelogs.named_in("no log named here; /cf/package-logs/../../etc/passwd") is None
