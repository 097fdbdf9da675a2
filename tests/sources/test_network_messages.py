"""A failed download is one short line naming the host and the cause, with a hint that is true for
the command in use (issue 18, item 13). The first offline build of examples/gentoo used to end in
~600 characters of urllib3's text and a hint naming `--keyring`, a flag `build` does not have."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
RAW = ("HTTPSConnectionPool", "HTTPConnectionPool", "Max retries", "Caused by", "urllib3", "object at 0x")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _failure(url: str, timeout=(3, 3)) -> Exception:
    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException as err:
        return err
    raise AssertionError(f"{url} answered")


def test_cause_of_each_kind_of_failure(mirror_server):
    from chrootforge import neterror

    assert neterror.cause(_failure("http://mirror.invalid/x")) == "cannot resolve the host name (DNS)"
    assert neterror.cause(_failure(f"http://127.0.0.1:{_closed_port()}/x")) == "connection refused"
    # TLS spoken to a plain HTTP server
    tls = neterror.cause(_failure(f"https://127.0.0.1:{mirror_server.url.rsplit(':', 1)[1]}/x"))
    assert tls.startswith("TLS failed (") and len(tls) < 80, tls
    # a server that accepts the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        err = _failure(f"http://127.0.0.1:{port}/x", timeout=(3, 0.3))
    assert neterror.cause(err) == "timed out waiting for data"
    assert (
        neterror.describe("https://user@h.example:8443/a/b", err)
        == "h.example:8443: timed out waiting for data"
    )


def test_a_reset_connection_is_named(tmp_path):
    from chrootforge import neterror

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def reset_one():
        conn, _ = server.accept()
        conn.recv(1024)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST on close
        conn.close()

    thread = threading.Thread(target=reset_one, daemon=True)
    thread.start()
    try:
        cause = neterror.cause(_failure(f"http://127.0.0.1:{server.getsockname()[1]}/x"))
    finally:
        thread.join(5)
        server.close()
    assert cause in ("connection reset by the server", "the connection broke off"), cause


def _namespace(tmp_path: Path, stage3: str) -> Path:
    """examples/gentoo with another [stage3] table."""
    ns = tmp_path / "gentoo"
    shutil.copytree(REPO / "examples" / "gentoo", ns)
    text = (ns / "chrootforge.toml").read_text()
    head, rest = text.split("[stage3]", 1)
    rest = rest.split("[tree]", 1)[1]
    (ns / "chrootforge.toml").write_text(f"{head}[stage3]\n{stage3}\n[tree]{rest}")
    return ns


def _cf(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("GENTOO_MIRRORS", "CHROOTFORGE_GENTOO_KEYRING")}
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**base, "CHROOTFORGE_RETRY_BACKOFF": "0", **env},
        cwd=cwd,
        timeout=300,
    )


def _short(proc) -> tuple[str, str]:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("chrootforge: error:")]
    hints = [line for line in lines if line.startswith("  hint:")]
    assert len(errors) == 1 and len(hints) == 1, proc.stderr
    assert len(errors[0]) <= 300, errors[0]
    assert not any(raw in proc.stderr for raw in RAW), proc.stderr
    return errors[0], hints[0]


def test_offline_build_of_examples_gentoo(tmp_path):
    """No key cached and Gentoo's key directory out of reach: one line naming the hosts and DNS, and
    the build's own ways out (a lock made on a connected machine, local files, [stage3] keyring)."""
    ns = _namespace(tmp_path, 'mirror = "https://mirror.invalid"')
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "CHROOTFORGE_WKD_URL": "https://wkd.invalid"}
    error, hint = _short(_cf("build", str(ns / "busybox"), env=env, cwd=tmp_path))
    assert "wkd.invalid: cannot resolve the host name (DNS)" in error
    assert f"chrootforge lock {ns.name}" in hint and "[stage3] path" in hint and "[stage3] keyring" in hint
    assert "--keyring" not in hint and "--mirror" not in hint
    # `fetch` has those flags: its hint names them
    error, hint = _short(_cf("fetch", "stage3", "--mirror", "https://mirror.invalid", env=env, cwd=tmp_path))
    assert "wkd.invalid: cannot resolve the host name (DNS)" in error
    assert "--keyring" in hint and "[stage3]" not in hint


@pytest.mark.parametrize(
    "mirror,cause", [("refused", "connection refused"), ("dns", "cannot resolve the host name (DNS)")]
)
def test_unreachable_mirror_in_a_build(tmp_path, gpg_keys, mirror, cause):
    url = f"http://127.0.0.1:{_closed_port()}" if mirror == "refused" else "https://mirror.invalid"
    ns = _namespace(tmp_path, f'mirror = "{url}"\nkeyring = "{gpg_keys.good.public_file}"')
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    error, hint = _short(_cf("build", str(ns / "busybox"), env=env, cwd=tmp_path))
    host = url.split("//", 1)[1]
    assert "cannot resolve the latest stage3-amd64-openrc from any mirror" in error
    assert f"{host}: {cause}" in error, error
    assert "[stage3] mirror or GENTOO_MIRRORS" in hint and "chrootforge lock" in hint
    assert "--mirror" not in hint and "--keyring" not in hint
