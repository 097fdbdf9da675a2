"""A real registry for the push/pull tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1.

- `Pki`: a test CA, a server certificate for 127.0.0.1/localhost, a client certificate signed by the
  CA, and a self-signed RSA key + certificate that signs the token server's JWTs. `cert_dir()` gives
  a containers-style certs.d directory (ca.crt, optionally client.cert + client.key).
- `Registry`: one docker-registry process from a config this module writes (TLS always; htpasswd or
  token auth; optional client-certificate requirement), storage in a temp dir, access log in a file.
- `TokenServer`: the Bearer realm. Issues RS256 JWTs (signed with `openssl dgst`, the certificate
  in the `x5c` header, that certificate being the registry's rootcertbundle). Anonymous callers get
  pull on `public/*` only; USER:PASSWORD gets what it asks for. `lifetime` makes tokens short-lived
  (distribution accepts a token for 60 s after its `exp`, so `exp` is set that much earlier).
- `TcpProxy`: forwards 127.0.0.1:port to the registry, counting bytes client->server and optionally
  limiting that direction's rate (a slow network), so tests can measure what a push really sent.

Session fixtures: `pki`, `htpasswd_registry` (TLS + htpasswd), `token_registry` (TLS + token auth +
required client certificate) with `token_server`. Everything is stopped and removed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.helpers.identity import shared_dir

USER = "cfpusher"
PASSWORD = "Tr0ub4dor&3-cf-s3cret"  # tests grep every output for it
SERVICE = "cf-test-service"
ISSUER = "cf-test-issuer"
REGISTRY_BIN = "/usr/bin/docker-registry"
LEEWAY = 60  # distribution 2.8 accepts tokens this long after `exp`


_ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Pki:
    """Keys and certificates in a world-readable directory (the unprivileged test user reads them)."""

    def __init__(self, root: Path):
        self.root = root
        ca, server, client, token = root / "ca", root / "server", root / "client", root / "token"
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cf test CA",
        )
        self._issue(
            server,
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        self._issue(client, "/CN=cf test client", "extendedKeyUsage=clientAuth\n")
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{token}.key",
            "-out",
            f"{token}.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cf test token signer",
        )
        self.ca_crt = Path(f"{ca}.crt")
        self.server_crt, self.server_key = Path(f"{server}.crt"), Path(f"{server}.key")
        self.client_crt, self.client_key = Path(f"{client}.crt"), Path(f"{client}.key")
        self.token_crt, self.token_key = Path(f"{token}.crt"), Path(f"{token}.key")
        der = _openssl("x509", "-in", str(self.token_crt), "-outform", "DER")
        self.token_x5c = base64.b64encode(der).decode()
        for path in root.iterdir():
            path.chmod(0o644)

    def _issue(self, base: Path, subject: str, extensions: str) -> None:
        ext = Path(f"{base}.ext")
        ext.write_text(extensions)
        _openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            f"{base}.key",
            "-out",
            f"{base}.csr",
            "-subj",
            subject,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{base}.csr",
            "-CA",
            str(self.root / "ca.crt"),
            "-CAkey",
            str(self.root / "ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            f"{base}.crt",
        )

    def cert_dir(self, dest: Path, client: bool = False) -> Path:
        """A certs.d-style directory: ca.crt, and client.cert/client.key when `client`."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca_crt, dest / "ca.crt")
        if client:
            shutil.copy(self.client_crt, dest / "client.cert")
            shutil.copy(self.client_key, dest / "client.key")
        for path in [dest, *dest.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return dest

    def sign_jwt(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.token_x5c]}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = _openssl("dgst", "-sha256", "-sign", str(self.token_key), stdin=signing_input.encode())
        return f"{signing_input}.{b64url(sig)}"


class Registry:
    """A docker-registry process serving TLS on 127.0.0.1:port."""

    def __init__(self, root: Path, pki: Pki, auth: dict | None, client_certs: bool = False):
        self.root = root
        self.pki = pki
        self.storage = root / "storage"
        self.storage.mkdir(parents=True)
        self.log = root / "registry.log"
        tls = {"certificate": str(pki.server_crt), "key": str(pki.server_key)}
        if client_certs:
            tls["clientcas"] = [str(pki.ca_crt)]
        self.config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": "", "secret": secrets.token_hex(16), "tls": tls},
        }
        if auth:
            self.config["auth"] = auth
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        for _ in range(5):
            self.port = free_port()
            self.config["http"]["addr"] = self.host
            (self.root / "config.yml").write_text(json.dumps(self.config))  # JSON is YAML
            with open(self.log, "ab") as log:
                # its own session (a Ctrl-C reaches pytest, whose teardown stops it), and it dies
                # with the test process even when that is killed
                self.proc = subprocess.Popen(
                    ["setpriv", "--pdeathsig", "TERM", REGISTRY_BIN, "serve", str(self.root / "config.yml")],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"docker-registry did not start; log:\n{self.log.read_text()[-3000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def access_log(self, method: str | None = None, path_re: str = "") -> list[tuple[str, str, int]]:
        """(method, path with query, status) of the requests the registry logged so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = _ACCESS_RE.search(line)
            if match and (method is None or match["method"] == method) and re.search(path_re, match["path"]):
                out.append((match["method"], match["path"], int(match["status"])))
        return out


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server: _TokenHTTPServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        owner: TokenServer = self.server.owner
        query = parse_qs(urlparse(self.path).query)
        user = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                name, password = "", ""
            if (name, password) != (USER, PASSWORD):
                self._reply(401, {"details": "bad credentials"})
                return
            user = name
        access = []
        for scope in " ".join(query.get("scope", [])).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": query.get("service", [""])[0],
            "exp": now + owner.lifetime - LEEWAY,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        token = owner.pki.sign_jwt(claims)
        with owner.lock:
            owner.issued.append({"user": user, "scopes": query.get("scope", []), "token": token})
        self._reply(
            200,
            {
                "token": token,
                "expires_in": owner.lifetime,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            },
        )

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _TokenHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: TokenServer


class TokenServer:
    """The realm of `auth: token`, over TLS with the test CA's server certificate."""

    def __init__(self, pki: Pki, lifetime: int = 300):
        self.pki = pki
        self.lifetime = lifetime
        self.issued: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = _TokenHTTPServer(("127.0.0.1", 0), _TokenHandler)
        self.httpd.owner = self
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki.server_crt, pki.server_key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/token"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TcpProxy:
    """127.0.0.1:port -> target, counting client->server bytes; `rate` (bytes/s) throttles that way."""

    def __init__(self, target_port: int, rate: float | None = None):
        self.target_port = target_port
        self.rate = rate
        self.sent = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        try:
            while data := src.recv(16384):
                if upload:
                    with self.lock:
                        self.sent += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def stop(self) -> None:
        self.closed = True
        self.listener.close()


def _htpasswd(path: Path) -> None:
    subprocess.run(["htpasswd", "-B", "-b", "-c", str(path), USER, PASSWORD], check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki():
    root = shared_dir("pki.")
    yield Pki(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def htpasswd_registry(pki, tmp_path_factory):
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("registry-htpasswd")
    _htpasswd(root / "htpasswd")
    registry = Registry(root, pki, {"htpasswd": {"realm": "cf-test", "path": str(root / "htpasswd")}})
    yield registry.start()
    registry.stop()


@pytest.fixture(scope="session")
def token_server(pki):
    server = TokenServer(pki)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(pki, token_server, tmp_path_factory):
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("registry-token")
    auth = {
        "token": {
            "realm": token_server.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(pki.token_crt),
        }
    }
    registry = Registry(root, pki, auth, client_certs=True)
    yield registry.start()
    registry.stop()


@dataclasses.dataclass(frozen=True)
class Images:
    """A world-readable layout: BASE (busybox, runnable), CHILD (BASE + a 3 MB incompressible file,
    so a small chunk size splits its layer) and an SBOM referrer attached to BASE."""

    layout: Path
    base: str = "bb:1"
    child: str = "bb:2"
    sbom_type: str = "application/spdx+json"

    def digest(self, tag: str) -> str:
        from chrootforge.oci.resolved import resolve

        return resolve(self.layout, tag).descriptor["digest"]

    def manifest(self, tag: str) -> dict:
        from chrootforge.oci.resolved import resolve

        return resolve(self.layout, tag).manifest

    def sbom_digest(self) -> str:
        from chrootforge.oci.layout import read_index
        from chrootforge.oci.referrer import referrers

        return referrers(read_index(self.layout), self.digest(self.base))[0]["digest"]


def make_images(root: Path) -> Images:
    import random

    from chrootforge import oci
    from tests.helpers.oci import EPOCH, make_busybox_rootfs

    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(EPOCH)
    try:
        images = Images(root / "layout")
        rootfs = make_busybox_rootfs(root / "rootfs")
        oci.commit(
            rootfs, images.layout, images.base, quiet=True, config={"Cmd": ["/bin/sh", "-c", "cat /etc/motd"]}
        )
        (rootfs / "big").write_bytes(random.Random(7).randbytes(3_000_000))
        oci.commit(rootfs, images.layout, images.child, parent=images.base, quiet=True)
        oci.attach_referrer(
            images.layout,
            images.base,
            b'{"spdxVersion": "SPDX-2.3", "name": "bb"}',
            images.sbom_type,
            annotations={"org.opencontainers.image.title": "sbom"},
        )
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    for dirpath, _dirs, files in os.walk(images.layout):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return images


@pytest.fixture(scope="session")
def registry_images() -> Images:
    root = shared_dir("regimages.")
    yield make_images(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cert_dirs(pki) -> dict[str, Path]:
    """World-readable certs.d-style directories: "ca" (ca.crt) and "client" (ca.crt + client pair)."""
    root = shared_dir("certdirs.")
    yield {"ca": pki.cert_dir(root / "ca"), "client": pki.cert_dir(root / "client", client=True)}
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def identity_tmp(identity) -> Path:
    """A directory the identity owns (its layouts and auth files go there), removed afterwards."""
    path = identity.mkdtemp("reg.")
    yield path
    shutil.rmtree(path, ignore_errors=True)
