"""A registry that answers one byte per second defeats a silence timeout; the minimum rate ends every
such request attempt after --timeout seconds, so a push or pull ends in bounded time, with one
line, whatever request trickles: the ping, a token, a manifest, a blob (after a fast start), a
HEAD, or an upload the server reads one byte per second. The layout is left untouched."""

from __future__ import annotations

import time

import pytest

from tests.helpers import fakeregistry as fr
from tests.registry.checks import cli, one_error_line
from tests.registry.test_hostile import earlier, fake, snapshot  # noqa: F401 - fixtures

SLOW = {
    "CHROOTFORGE_REGISTRY_RETRIES": "1",
    "CHROOTFORGE_RETRY_BACKOFF": "0.01",
    "CHROOTFORGE_REGISTRY_TIMEOUT": "2",
}
# per attempt: 2 s (+ one window at most); pull and push make a few attempts of each kind
BOUND = 40


def _timed(*args: str, env: dict | None = None) -> tuple[float, object]:
    started = time.monotonic()
    out = cli("-q", *args, env={**SLOW, **(env or {})}, timeout=BOUND + 60)
    return time.monotonic() - started, out


@pytest.mark.parametrize(
    "where, faults",
    [
        ("ping", lambda: [fr.trickle(r"^/v2/?$")]),
        ("token", lambda: [fr.trickle(r"^/token"), fr.bearer_realm()]),
        ("manifest headers", lambda: [fr.trickle(r"/manifests/1$")]),
        ("manifest body", lambda: [fr.trickle(r"/manifests/1$", head=False)]),
        ("blob after a fast start", lambda: [fr.trickle(r"/blobs/sha256:", head=False, fast=200_000)]),
    ],
)
def test_a_trickling_registry_ends_a_pull_in_bounded_time(fake, earlier, where, faults):  # noqa: F811
    fake.faults.extend(faults())
    before = snapshot(earlier)
    elapsed, out = _timed("pull", f"docker://{fake.host}/img/bb:1", f"{earlier}:got:1", "--tls-verify=false")
    assert out.returncode == 1, out.stderr
    assert elapsed < BOUND, (where, elapsed)
    one_error_line(out.stderr, "under the minimum of 1024 bytes/s")
    assert snapshot(earlier) == before


def test_the_floor_follows_the_options(fake, earlier):  # noqa: F811
    """--timeout sets the window; the environment sets the rate (0: no floor, only silence)."""
    fake.faults.append(fr.trickle(r"/manifests/1$", head=False, delay=0.2))  # 5 bytes/s
    elapsed, out = _timed(
        "pull",
        f"docker://{fake.host}/img/bb:1",
        f"{earlier}:got:1",
        "--tls-verify=false",
        "--timeout",
        "1",
        "--retry-times",
        "0",
        env={"CHROOTFORGE_REGISTRY_MIN_RATE": "100"},
    )
    assert out.returncode == 1 and elapsed < 10, (elapsed, out.stderr)
    one_error_line(out.stderr, "under the minimum of 100 bytes/s")
    elapsed, out = _timed(
        "pull",
        f"docker://{fake.host}/img/bb:1",
        f"{earlier}:got:1",
        "--tls-verify=false",
        env={"CHROOTFORGE_REGISTRY_MIN_RATE": "1"},
    )
    assert out.returncode == 0, out.stderr  # a manifest of a few hundred bytes at 5 bytes/s passes


@pytest.mark.parametrize(
    "where, fault, fragment",
    [
        (
            "blob HEAD",
            lambda: fr.trickle(r"/blobs/sha256:", method="HEAD"),
            "under the minimum of 1024 bytes/s",
        ),
        # the kernel's buffers take the body; then the server's silence ends each attempt
        ("upload", lambda: fr.slow_reader(r"/blobs/uploads/", method="PUT"), ": uploading blob "),
    ],
)
def test_a_trickling_registry_ends_a_push_in_bounded_time(registry_images, tmp_path, where, fault, fragment):
    server = fr.FakeRegistry()
    server.faults.append(fault())
    try:
        elapsed, out = _timed(
            "push",
            f"{registry_images.layout}:{registry_images.child}",
            f"docker://{server.host}/slow/bb:2",
            "--tls-verify=false",
            env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
        )
    finally:
        server.stop()
    assert out.returncode == 1, out.stderr
    assert elapsed < BOUND, (where, elapsed)
    one_error_line(out.stderr, fragment)


@pytest.mark.parametrize("head", [True, False])
def test_the_floor_holds_over_tls(registry_images, pki, cert_dirs, tmp_path, head):
    server = fr.FakeRegistry(tls=pki)
    server.seed(registry_images.layout, registry_images.base, "img/bb", "1")
    server.faults.append(fr.trickle(r"/manifests/1$", head=head))
    try:
        elapsed, out = _timed(
            "pull",
            f"docker://{server.host}/img/bb:1",
            f"{tmp_path / 'L'}:got:1",
            "--cert-dir",
            str(cert_dirs["ca"]),
        )
    finally:
        server.stop()
    assert out.returncode == 1 and elapsed < BOUND, (elapsed, out.stderr)
    one_error_line(out.stderr, "under the minimum of 1024 bytes/s")
