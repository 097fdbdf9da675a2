"""A small in-memory registry on 127.0.0.1 (plain HTTP) for the faults a real one will not produce.

It speaks enough of the distribution API for pull and push: /v2/ ping, manifests (GET/HEAD/PUT by
tag or digest), blobs (GET with Range, HEAD), uploads (POST, PATCH, GET status, PUT, mount), and
optionally the OCI 1.1 referrers API (`referrers_api=True`: GET /referrers/<digest> and the
OCI-Subject header). Faults are plain functions `fault(handler) -> bool`: they see the request
first and return True when they answered it. Every request is logged as (method, path, headers).

Ready-made faults: `status_first(n, code, path_re)`, `redirect_loop(path_re)`,
`hang(path_re)` (never answers), `malformed_challenge(header)`, `cut_patch(after)` (stores part
of a PATCH body, then drops the connection).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

_NAME = r"(?P<name>[a-z0-9._/-]+?)"
_ROUTES = [
    ("ping", re.compile(r"^/v2/?$")),
    ("manifest", re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[^/]+)$")),
    ("referrers", re.compile(rf"^/v2/{_NAME}/referrers/(?P<ref>[^/]+)$")),
    ("upload_start", re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$")),
    ("upload", re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<upload>[0-9a-f-]+)$")),
    ("blob", re.compile(rf"^/v2/{_NAME}/blobs/(?P<ref>sha256:[0-9a-f]{{64}})$")),
]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:
        pass

    # -- plumbing -----------------------------------------------------------------------------
    def reply(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code: int, err: str, message: str = "") -> None:
        body = json.dumps({"errors": [{"code": err, "message": message or err.lower()}]}).encode()
        self.reply(code, body, {"Content-Type": "application/json"})

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def handle_any(self) -> None:
        fake: FakeRegistry = self.server.fake
        url = urlparse(self.path)
        self.query = parse_qs(url.query)
        with fake.lock:
            fake.log.append((self.command, self.path, dict(self.headers)))
        for fault in list(fake.faults):
            if fault(self):
                return
        for name, pattern in _ROUTES:
            match = pattern.match(url.path)
            if match:
                getattr(self, f"_{name}")(**match.groupdict())
                return
        self.error(404, "NOT_FOUND")

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    # -- routes -------------------------------------------------------------------------------
    def _ping(self) -> None:
        self.reply(200, b"{}", {"Content-Type": "application/json"})

    def _manifest(self, name: str, ref: str) -> None:
        fake: FakeRegistry = self.server.fake
        repo = fake.repo(name)
        if self.command == "PUT":
            data = self.body()
            digest = digest_of(data)
            media_type = self.headers.get("Content-Type", "")
            repo["manifests"][digest] = (data, media_type)
            repo["manifests"][ref] = (data, media_type)
            headers = {"Docker-Content-Digest": digest, "Location": f"/v2/{name}/manifests/{digest}"}
            subject = (json.loads(data).get("subject") or {}).get("digest")
            if subject and fake.referrers_api:
                headers["OCI-Subject"] = subject
            self.reply(201, b"", headers)
            return
        if ref not in repo["manifests"]:
            self.error(404, "MANIFEST_UNKNOWN")
            return
        data, media_type = repo["manifests"][ref]
        self.reply(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest_of(data)})

    def _referrers(self, name: str, ref: str) -> None:
        fake: FakeRegistry = self.server.fake
        if not fake.referrers_api:
            self.error(404, "NOT_FOUND")
            return
        found = []
        for key, (data, media_type) in fake.repo(name)["manifests"].items():
            doc = json.loads(data)
            if key.startswith("sha256:") and (doc.get("subject") or {}).get("digest") == ref:
                desc = {"mediaType": media_type, "digest": key, "size": len(data)}
                if doc.get("artifactType"):
                    desc["artifactType"] = doc["artifactType"]
                found.append(desc)
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": found}
        ).encode()
        self.reply(200, body, {"Content-Type": "application/vnd.oci.image.index.v1+json"})

    def _blob(self, name: str, ref: str) -> None:
        blobs = self.server.fake.repo(name)["blobs"]
        if ref not in blobs:
            self.error(404, "BLOB_UNKNOWN")
            return
        data = blobs[ref]
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if match and self.command == "GET":
            start = int(match.group(1))
            self.reply(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return
        self.reply(200, data, {"Docker-Content-Digest": ref})

    def _upload_start(self, name: str) -> None:
        fake: FakeRegistry = self.server.fake
        mount, source = self.query.get("mount", [None])[0], self.query.get("from", [None])[0]
        if mount and source and mount in fake.repo(source)["blobs"]:
            fake.repo(name)["blobs"][mount] = fake.repo(source)["blobs"][mount]
            self.reply(201, b"", {"Docker-Content-Digest": mount, "Location": f"/v2/{name}/blobs/{mount}"})
            return
        upload = str(uuid.uuid4())
        fake.uploads[upload] = bytearray()
        self.reply(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": "0-0"})

    def _upload(self, name: str, upload: str) -> None:
        fake: FakeRegistry = self.server.fake
        data = fake.uploads.get(upload)
        if data is None:
            self.error(404, "BLOB_UPLOAD_UNKNOWN")
            return
        if self.command == "GET":
            self.reply(204, b"", {"Location": self.path.split("?")[0], "Range": f"0-{max(len(data) - 1, 0)}"})
            return
        if self.command == "PATCH":
            match = re.match(r"^(\d+)-(\d+)$", self.headers.get("Content-Range", ""))
            if match and int(match.group(1)) != len(data):
                self.error(416, "BLOB_UPLOAD_INVALID", "range does not continue the upload")
                return
            chunk = self.body()
            data += chunk
            fake.received += len(chunk)
            self.reply(
                202, b"", {"Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": f"0-{len(data) - 1}"}
            )
            return
        if self.command == "PUT":
            chunk = self.body()
            data += chunk
            fake.received += len(chunk)
            digest = self.query.get("digest", [""])[0]
            if digest_of(bytes(data)) != digest:
                self.error(400, "DIGEST_INVALID")
                return
            fake.repo(name)["blobs"][digest] = bytes(data)
            del fake.uploads[upload]
            self.reply(201, b"", {"Docker-Content-Digest": digest, "Location": f"/v2/{name}/blobs/{digest}"})
            return
        self.error(405, "UNSUPPORTED")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeRegistry

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients that hang up are expected
            super().handle_error(request, client_address)


class FakeRegistry:
    def __init__(self, referrers_api: bool = False, tls=None):
        """`tls`: a tests.helpers.registry.Pki whose server certificate it then serves HTTPS with."""
        self.referrers_api = referrers_api
        self.repos: dict[str, dict] = {}
        self.uploads: dict[str, bytearray] = {}
        self.faults: list = []
        self.log: list[tuple[str, str, dict]] = []
        self.received = 0  # blob bytes received by PATCH/PUT
        self.lock = threading.Lock()
        self.release = threading.Event()  # wakes hung handlers at stop()
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls.server_crt, tls.server_key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.fake = self
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def repo(self, name: str) -> dict:
        with self.lock:
            return self.repos.setdefault(name, {"manifests": {}, "blobs": {}})

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def seed(self, layout: Path, tag: str, name: str, as_tag: str) -> str:
        """Serve the image LAYOUT:TAG (and its blobs) as NAME:AS_TAG; returns the manifest digest."""
        index = json.loads((layout / "index.json").read_text())
        desc = next(
            d
            for d in index["manifests"]
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
        )
        return self.put_manifest(
            name, as_tag, self.read_blob(layout, desc["digest"]), desc["mediaType"], layout
        )

    @staticmethod
    def read_blob(layout: Path, digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest[7:]).read_bytes()

    def put_manifest(
        self, name: str, tag: str, data: bytes, media_type: str, layout: Path | None = None
    ) -> str:
        repo = self.repo(name)
        doc = json.loads(data)
        if layout is not None:
            for d in [doc.get("config"), *doc.get("layers", [])]:
                if d:
                    repo["blobs"][d["digest"]] = self.read_blob(layout, d["digest"])
        digest = digest_of(data)
        repo["manifests"][tag] = repo["manifests"][digest] = (data, media_type)
        return digest

    def requests(self, method: str | None = None, path_re: str = "") -> list[tuple[str, str, dict]]:
        with self.lock:
            return [r for r in self.log if (method is None or r[0] == method) and re.search(path_re, r[1])]


# -- faults ------------------------------------------------------------------------------------
def status_first(times: int, code: int, path_re: str, method: str | None = None):
    """Answer `code` to the first `times` matching requests."""
    left = [times]

    def fault(h: Handler) -> bool:
        if left[0] > 0 and re.search(path_re, h.path) and (method is None or h.command == method):
            left[0] -= 1
            h.body() if h.command in ("PUT", "PATCH", "POST") else None
            h.error(code, "UNAVAILABLE" if code >= 500 else "DENIED", "injected")
            return True
        return False

    return fault


def redirect_loop(path_re: str):
    def fault(h: Handler) -> bool:
        if re.search(path_re, h.path):
            target = "/loop/b" if h.path.endswith("/loop/a") else "/loop/a"
            h.reply(307, b"", {"Location": target})
            return True
        if h.path.startswith("/loop/"):
            h.reply(307, b"", {"Location": "/loop/b" if h.path == "/loop/a" else "/loop/a"})
            return True
        return False

    return fault


def hang(path_re: str):
    """Accept the request and never answer (until the server stops)."""

    def fault(h: Handler) -> bool:
        if re.search(path_re, h.path):
            h.server.fake.release.wait()
            h.close_connection = True
            return True
        return False

    return fault


def malformed_challenge(header: str):
    def fault(h: Handler) -> bool:
        if h.path.startswith("/v2/"):
            h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": header})
            return True
        return False

    return fault


def cut_patch(after: int, times: int = 1):
    """Store the first `after` bytes of a PATCH body, then drop the connection (`times` PATCHes)."""
    left = [times]

    def fault(h: Handler) -> bool:
        if h.command != "PATCH" or left[0] <= 0:
            return False
        left[0] -= 1
        upload = h.path.split("?")[0].rsplit("/", 1)[-1]
        data = h.rfile.read(after)
        fake: FakeRegistry = h.server.fake
        fake.uploads[upload] += data
        fake.received += len(data)
        h.close_connection = True
        import socket

        h.connection.shutdown(socket.SHUT_RDWR)
        return True

    return fault


def stall_blob(after: int):
    """Serve the first `after` bytes of every blob, then go silent (until the server stops)."""

    def fault(h: Handler) -> bool:
        match = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", h.path)
        if h.command != "GET" or not match:
            return False
        fake: FakeRegistry = h.server.fake
        data = fake.repo(match.group(1))["blobs"][match.group(2)]
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:after])
        h.wfile.flush()
        fake.release.wait()
        h.close_connection = True
        return True

    return fault


def _answer(h: Handler) -> tuple[int, dict, bytes]:
    """What the fake would answer to a GET/HEAD of a manifest or blob (else an empty JSON object)."""
    fake: FakeRegistry = h.server.fake
    path = urlparse(h.path).path
    for name, pattern in _ROUTES:
        match = pattern.match(path)
        if match and name in ("manifest", "blob"):
            repo = fake.repo(match["name"])
            ref = match["ref"]
            if name == "blob" and ref in repo["blobs"]:
                return 200, {"Docker-Content-Digest": ref}, repo["blobs"][ref]
            if name == "manifest" and ref in repo["manifests"]:
                data, media_type = repo["manifests"][ref]
                return 200, {"Content-Type": media_type, "Docker-Content-Digest": digest_of(data)}, data
    return 200, {"Content-Type": "application/json"}, b"{}"


def trickle(path_re: str, head: bool = True, fast: int = 0, delay: float = 1.0, method: str | None = None):
    """Answer matching requests one byte every `delay` seconds: the status line and headers too
    when `head`, else the headers at once and then the body (its first `fast` bytes at once).
    The answer is the real one (_answer); it goes on until the client hangs up."""

    def fault(h: Handler) -> bool:
        if not re.search(path_re, h.path) or (method is not None and h.command != method):
            return False
        status, headers, body = _answer(h)
        if h.command in ("PUT", "PATCH", "POST"):
            h.body()
        head_bytes = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(body)}\r\n".encode()
        head_bytes += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
        if h.command == "HEAD":
            body = b""
        slow = head_bytes + body if head else body[fast:]
        h.close_connection = True
        try:
            if not head:
                h.wfile.write(head_bytes + body[:fast])
                h.wfile.flush()
            for i in range(len(slow)):
                if h.server.fake.release.wait(delay):
                    return True
                h.wfile.write(slow[i : i + 1])
                h.wfile.flush()
        except OSError:
            pass  # the client gave up: what this fault is for
        return True

    return fault


def slow_reader(path_re: str, delay: float = 1.0, method: str | None = None):
    """Read the request body of matching requests one byte every `delay` seconds, never answer."""

    def fault(h: Handler) -> bool:
        if not re.search(path_re, h.path) or (method is not None and h.command != method):
            return False
        h.close_connection = True
        try:
            for _ in range(int(h.headers.get("Content-Length") or 0)):
                if h.server.fake.release.wait(delay) or not h.rfile.read(1):
                    return True
        except OSError:
            pass
        return True

    return fault


def bearer_realm(realm_path: str = "/token"):
    """Ask for a Bearer token from this server's `realm_path` (over plain HTTP) and accept any."""

    def fault(h: Handler) -> bool:
        if h.path.startswith(realm_path):
            h.reply(200, json.dumps({"token": "t0ken", "expires_in": 300}).encode())
            return True
        if h.path.startswith("/v2/") and not h.headers.get("Authorization"):
            host = h.headers.get("Host")
            challenge = f'Bearer realm="http://{host}{realm_path}",service="fake"'
            h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return True
        return False

    return fault
