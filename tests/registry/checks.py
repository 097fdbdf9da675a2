"""Assertions shared by the registry tests: one clear error line, no secret in any output."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

from tests.helpers.registry import PASSWORD, USER

SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


def no_secrets(*outputs: str) -> None:
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text


def one_error_line(stderr: str, fragment: str) -> None:
    """Exactly one `chrootforge: error:` line containing `fragment`, at most a hint besides."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("chrootforge: error: ")]
    assert len(errors) == 1, stderr
    assert fragment in errors[0], stderr
    assert "Traceback" not in stderr
    assert all(line.startswith(("chrootforge: error: ", "  hint: ")) for line in lines), stderr


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`chrootforge ARGS` as the current user (the environment plus `env`)."""
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=timeout,
    )


def cli_on_tty(*args: str, env: dict | None = None) -> tuple[int, str]:
    """`chrootforge ARGS` with stderr on a pseudo-terminal: (exit code, what the terminal showed)."""
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chrootforge", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, **(env or {})},
    )
    os.close(follower)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the process is gone and the terminal drained
                break
            if not data:
                break
            shown += data
    finally:
        os.close(leader)
        code = proc.wait(timeout=60)
    return code, shown.decode(errors="replace")
