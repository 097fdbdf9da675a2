"""The Bearer token flow against a real registry (`auth: token`, client certificates required) and a
token server the tests run: scopes, refusals, and a push that outlives its token."""

from __future__ import annotations

import json
import time

import pytest
import requests

from chrootforge.registry import RegistryOptions, pull, push
from tests.helpers.registry import PASSWORD, USER, Registry, TcpProxy, TokenServer
from tests.registry.checks import cli, no_secrets, one_error_line


def _no_tokens(server: TokenServer, *outputs: str) -> None:
    for issued in server.issued:
        for text in outputs:
            assert issued["token"] not in text


def test_token_auth_push_pull_with_client_certificate(
    identity, identity_tmp, token_registry, token_server, registry_images, cert_dirs
):
    images = registry_images
    dest = f"docker://{token_registry.host}/{identity.name}/tok:1"
    creds = ["--creds", f"{USER}:{PASSWORD}"]
    out = identity.cf(
        "push",
        f"{images.layout}:{images.base}",
        dest,
        "--cert-dir",
        str(cert_dirs["ca"]),
        *creds,
        env={"CHROOTFORGE_REGISTRY_RETRIES": "0"},
    )
    assert out.returncode == 1
    one_error_line(out.stderr, f"TLS with {token_registry.host} failed")
    assert "client" in out.stderr  # the hint names the missing client certificate

    before = len(token_server.issued)
    out = identity.cf(
        "push",
        f"{images.layout}:{images.base}",
        dest,
        "--cert-dir",
        str(cert_dirs["client"]),
        *creds,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["digest"] == images.digest(images.base)
    assert len(token_server.issued) > before
    assert all(i["user"] == USER for i in token_server.issued[before:])
    target = identity_tmp / "layout"
    pulled = identity.cf("pull", dest, str(target), "--cert-dir", str(cert_dirs["client"]), *creds)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == images.digest(images.base)
    no_secrets(out.stdout, out.stderr, pulled.stdout, pulled.stderr)
    _no_tokens(token_server, out.stdout, out.stderr, pulled.stdout, pulled.stderr)


def test_token_refusals_are_one_clear_line(
    token_registry, token_server, registry_images, cert_dirs, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = registry_images
    host = token_registry.host
    base = [f"{images.layout}:{images.base}", "--cert-dir", str(cert_dirs["client"])]
    out = cli(
        "push", base[0], f"docker://{host}/refused/bb:1", *base[1:], "--creds", f"{USER}:wrong-{PASSWORD}"
    )
    assert out.returncode == 1
    one_error_line(
        out.stderr,
        f"the token server 127.0.0.1:{token_server.httpd.server_address[1]} refused "
        "the credentials from --creds",
    )
    no_secrets(out.stdout, out.stderr)

    out = cli("push", base[0], f"docker://{host}/refused/bb:1", *base[1:])  # anonymous: pull-only tokens
    assert out.returncode == 1
    one_error_line(out.stderr, "the registry requires authentication")

    # anonymous pulls of public/* are allowed by the token server
    options = RegistryOptions(cert_dir=str(cert_dirs["client"]), creds=f"{USER}:{PASSWORD}", quiet=True)
    push(images.layout, images.base, f"docker://{host}/public/bb:1", options)
    anonymous = RegistryOptions(cert_dir=str(cert_dirs["client"]), quiet=True)
    assert pull(f"docker://{host}/public/bb:1", tmp_path / "anon", None, anonymous) == images.digest(
        images.base
    )
    assert token_server.issued[-1]["user"] is None


def test_push_that_outlives_its_token(pki, registry_images, cert_dirs, tmp_path, monkeypatch):
    """Tokens live 2 s; a throttled network makes the push take longer; the client refreshes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = registry_images
    server = TokenServer(pki, lifetime=2)
    (tmp_path / "reg").mkdir()
    registry = Registry(
        tmp_path / "reg",
        pki,
        {
            "token": {
                "realm": server.realm,
                "service": "cf-test-service",
                "issuer": "cf-test-issuer",
                "rootcertbundle": str(pki.token_crt),
            }
        },
    ).start()
    proxy = TcpProxy(registry.port, rate=1_000_000)
    try:
        options = RegistryOptions(cert_dir=str(cert_dirs["ca"]), creds=f"{USER}:{PASSWORD}", quiet=True)
        started = time.monotonic()
        result = push(images.layout, images.child, f"docker://{proxy.host}/slow/bb:2", options)
        elapsed = time.monotonic() - started
        assert elapsed > 3, "the throttle did not make the push outlive its token"
        assert result.digest == images.digest(images.child)
        push_tokens = [i for i in server.issued if any("push" in s for s in i["scopes"])]
        assert len(push_tokens) >= 2
        # the registry really refuses the first token by now: without the refresh the push had failed
        resp = requests.head(
            f"https://{registry.host}/v2/slow/bb/manifests/2",
            timeout=10,
            verify=str(cert_dirs["ca"] / "ca.crt"),
            headers={
                "Authorization": f"Bearer {push_tokens[0]['token']}",
                "Accept": "application/vnd.oci.image.manifest.v1+json",
            },
        )
        assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        fresh = requests.head(
            f"https://{registry.host}/v2/slow/bb/manifests/2",
            timeout=10,
            verify=str(cert_dirs["ca"] / "ca.crt"),
            headers={
                "Authorization": f"Bearer {server.issued[-1]['token']}",
                "Accept": "application/vnd.oci.image.manifest.v1+json",
            },
        )
        assert fresh.status_code == 200 and fresh.headers["Docker-Content-Digest"] == result.digest
    finally:
        proxy.stop()
        registry.stop()
        server.stop()


@pytest.fixture(autouse=True)
def _quiet_retries(monkeypatch):
    monkeypatch.setenv("CHROOTFORGE_RETRY_BACKOFF", "0.05")
