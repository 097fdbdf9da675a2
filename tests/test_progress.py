"""Long work shows progress (bytes, MB/s) on a terminal, and stays quiet otherwise or with --quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chrootforge.progress import ByteProgress


def test_progress_draws_bytes_and_rate(capsys):
    progress = ByteProgress("layer", total=4_000_000, enabled=True)
    progress.update(2_000_000)
    progress.update(2_000_000)
    progress.close()
    err = capsys.readouterr().err
    assert "layer:" in err and "MB/s" in err and "100.0%" in err and err.endswith("\n")


def test_progress_is_silent_when_disabled(capsys):
    progress = ByteProgress("layer", enabled=False)
    progress.update(10_000_000)
    progress.close()
    assert capsys.readouterr().err == ""


def _commit(tmp_path: Path, name: str, *extra: str, tty: bool) -> str:
    root = tmp_path / f"root-{name}"
    (root / "data").mkdir(parents=True)
    (root / "data" / "blob").write_bytes(os.urandom(3 << 20))
    argv = [
        sys.executable,
        "-m",
        "chrootforge",
        "commit",
        str(root),
        "--layout",
        str(tmp_path / "layout"),
        "--tag",
        name,
        *extra,
    ]
    if not tty:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    leader, follower = os.openpty()
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, check=True
        )
        assert proc.returncode == 0
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_commit_shows_progress_on_a_terminal_only(tmp_path):
    assert "MB/s" in _commit(tmp_path, "tty", tty=True)
    assert "MB/s" not in _commit(tmp_path, "quiet", "--quiet", tty=True)
    assert "MB/s" not in _commit(tmp_path, "pipe", tty=False)


def test_long_work_writes_a_plain_line_now_and_then_when_not_on_a_terminal(capsys, monkeypatch):
    """A CI log or the --vm guest's streamed stderr: no carriage returns, but never long silence."""
    from chrootforge import progress as progress_mod

    monkeypatch.setattr(progress_mod, "PLAIN_EVERY", 0.0)  # (the real interval is 10 s)
    progress = ByteProgress("extracting stage3.tar.xz", total=None)
    assert not progress.enabled and progress.plain  # capsys: stderr is not a terminal
    progress.update(5_000_000)
    progress.update(5_000_000)
    progress.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("extracting stage3.tar.xz:") for line in lines)
    assert "10.0 MB" in lines[-1] and "done in" in lines[-1]


def test_short_work_off_a_terminal_and_quiet_mode_write_nothing(capsys, monkeypatch):
    from chrootforge import log
    from chrootforge import progress as progress_mod

    short = ByteProgress("quick")  # shorter than PLAIN_EVERY: no line at all
    short.update(1000)
    short.close()
    monkeypatch.setattr(progress_mod, "PLAIN_EVERY", 0.0)
    log.set_quiet(True)
    try:
        quiet = ByteProgress("quiet")
        quiet.update(10)
        quiet.close()
    finally:
        log.set_quiet(False)
    assert capsys.readouterr().err == ""
