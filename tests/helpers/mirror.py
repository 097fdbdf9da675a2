"""A signed Gentoo-like mirror, served by a real HTTP server on 127.0.0.1 that can inject faults.

- `gpg_keys` (session): two throw-away OpenPGP keys made in a private GNUPGHOME: `good` (a
  certify-only primary with an ed25519 signing subkey, like Gentoo's releng key) and `rogue`.
  Their public keys are exported to world-readable files (the unprivileged test user reads them).
- `MirrorTree`: writes releases/<arch>/autobuilds/... and snapshots/... with clearsigned latest
  files, detached .asc/.gpgsig signatures and catalyst-style .DIGESTS.
- `MirrorServer` (fixture `mirror_server`): ThreadingHTTPServer with Range support (206/416) and
  per-path faults: {"status": 404|500|200, "body": b"..."} (an HTML page by default), {"cut_after": N} (drop the connection after N bytes), each
  with "times" (how many requests it applies to; default all). Every request is logged with its
  Range header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import re
import shutil
import socket
import struct
import tarfile
import threading
from pathlib import Path

import pytest

from tests.helpers.identity import shared_dir

ARCH, VARIANT = "amd64", "openrc"
STAMP = "20240101T170000Z"
STAMP2 = "20240108T170000Z"


# -- keys ------------------------------------------------------------------------------------
@dataclasses.dataclass
class TestKey:
    fingerprint: str
    public_file: Path


class Keys:
    def __init__(self, root: Path):
        import gnupg

        self.home = root / "gnupg"
        self.home.mkdir(mode=0o700)
        self.gpg = gnupg.GPG(gnupghome=str(self.home))
        self.good = self._make(
            "Test Release Engineering <releng@test.invalid>", root / "good.asc", subkey=True
        )
        self.rogue = self._make("Rogue <rogue@test.invalid>", root / "rogue.asc", subkey=False)

    def _make(self, uid: str, out: Path, subkey: bool) -> TestKey:
        name, email = uid.split(" <")
        params = {
            "name_real": name,
            "name_email": email.rstrip(">"),
            "key_type": "EDDSA",
            "key_curve": "ed25519",
            "expire_date": 0,
            "no_protection": True,
        }
        if subkey:
            params.update(key_usage="cert", subkey_type="EDDSA", subkey_curve="ed25519", subkey_usage="sign")
        else:
            params.update(key_usage="sign,cert")
        key = self.gpg.gen_key(self.gpg.gen_key_input(**params))
        assert key.fingerprint, key.stderr
        out.write_text(self.gpg.export_keys(key.fingerprint))
        out.chmod(0o644)
        return TestKey(key.fingerprint, out)

    def detach_sign(self, data: bytes, key: TestKey) -> bytes:
        sig = self.gpg.sign(data, keyid=key.fingerprint, detach=True, clearsign=False)
        assert sig.data, sig.stderr
        return sig.data

    def clearsign(self, text: str, key: TestKey) -> bytes:
        sig = self.gpg.sign(text.encode(), keyid=key.fingerprint, clearsign=True)
        assert sig.data, sig.stderr
        return sig.data


@pytest.fixture(scope="session")
def gpg_keys() -> Keys:
    root = shared_dir("gpgkeys.")
    keys = Keys(root)
    yield keys
    # signing started a gpg-agent for this GNUPGHOME: stop it before removing the home
    import subprocess

    subprocess.run(
        ["gpgconf", "--homedir", str(keys.home), "--kill", "gpg-agent"], check=False, capture_output=True
    )
    shutil.rmtree(root, ignore_errors=True)


# -- tarballs --------------------------------------------------------------------------------
def cap_net_raw_v2() -> bytes:
    """security.capability v2 value granting cap_net_raw (13), effective."""
    return struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def member(
    name: str,
    kind: str = "file",
    data: bytes = b"",
    *,
    uid: int = 0,
    gid: int = 0,
    mode: int | None = None,
    link: str = "",
    xattrs: dict[str, bytes] | None = None,
    devmajor: int = 1,
    devminor: int = 3,
):
    info = tarfile.TarInfo(name)
    info.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "char": tarfile.CHRTYPE,
        "block": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    info.uid, info.gid = uid, gid
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.linkname = link
    info.mtime = 1700000000
    info.devmajor, info.devminor = devmajor, devminor
    if xattrs:
        info.pax_headers = {
            f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
        }
    if kind == "file":
        info.size = len(data)
        return info, data
    return info, None


def make_tar(members, compression: str = "xz") -> bytes:
    """A tarball from member() tuples; compression: xz, zst, gz, bz2 or '' (plain)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if compression == "xz":
        import lzma

        return lzma.compress(raw, preset=0)
    if compression == "zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(raw)
    if compression == "gz":
        import gzip

        return gzip.compress(raw, mtime=0)
    if compression == "bz2":
        import bz2

        return bz2.compress(raw)
    return raw


def stage_members() -> list:
    """A tiny stage-like tree exercising owners 0/250/1000, setuid, xattrs, links and /dev."""
    return [
        member("./", "dir"),
        member("./bin", "symlink", link="usr/bin"),
        member("./dev", "dir"),
        member("./dev/null", "char", mode=0o666),
        member("./dev/console", "char", mode=0o600, devmajor=5, devminor=1),
        member("./etc", "dir"),
        member(
            "./etc/passwd",
            "file",
            b"root:x:0:0::/root:/bin/sh\nportage:x:250:250::/var/lib/portage/home:/bin/false\n",
        ),
        member("./etc/localtime", "symlink", link="/usr/share/zoneinfo/UTC"),
        member("./home", "dir"),
        member("./home/user", "dir", uid=1000, gid=1000, mode=0o700),
        member("./home/user/notes", "file", b"hi\n", uid=1000, gid=1000, mode=0o600),
        member("./usr", "dir"),
        member("./usr/bin", "dir"),
        member("./usr/bin/su", "file", b"\x7fELF-not-really" * 10, mode=0o4755),
        member("./usr/bin/newgrp", "hardlink", link="./usr/bin/su"),
        member(
            "./usr/bin/ping",
            "file",
            b"ping",
            mode=0o755,
            xattrs={"security.capability": cap_net_raw_v2(), "user.test": b"hello"},
        ),
        member("./var", "dir"),
        member("./var/cache", "dir"),
        member("./var/cache/distfiles", "dir", uid=250, gid=250, mode=0o2775),
        member("./var/cache/distfiles/.keep", "file", b"", uid=250, gid=250),
        member("./var/run", "fifo", mode=0o644),  # a fifo outside /dev is allowed (harmless)
    ]


# -- the mirror tree -------------------------------------------------------------------------
class MirrorTree:
    def __init__(self, root: Path, keys: Keys):
        self.root = root
        self.keys = keys

    def write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o644)
        for parent in path.relative_to(self.root).parents:
            (self.root / parent).chmod(0o755)
        return path

    def autobuilds(self, arch: str = ARCH) -> str:
        return f"releases/{arch}/autobuilds"

    def stage_rel(self, stamp: str = STAMP, arch: str = ARCH, variant: str = VARIANT) -> str:
        return f"{self.autobuilds(arch)}/{stamp}/stage3-{arch}-{variant}-{stamp}.tar.xz"

    def publish_stage(
        self,
        tarball: bytes,
        stamp: str = STAMP,
        *,
        arch: str = ARCH,
        variant: str = VARIANT,
        key: TestKey | None = None,
        latest: bool = True,
        digests_for: bytes | None = None,
    ) -> str:
        key = key or self.keys.good
        rel = self.stage_rel(stamp, arch, variant)
        name = rel.rsplit("/", 1)[1]
        self.write(rel, tarball)
        self.write(rel + ".asc", self.keys.detach_sign(tarball, key))
        self.write(
            rel + ".DIGESTS", digests_text(name, digests_for if digests_for is not None else tarball).encode()
        )
        self.write(
            rel + ".sha256", f"# SHA256 HASH\n{hashlib.sha256(tarball).hexdigest()}  {name}\n".encode()
        )
        if latest:
            self.write_latest(stamp, len(tarball), arch=arch, variant=variant, key=key)
        return rel

    def latest_text(self, stamp: str, size: int, arch: str = ARCH, variant: str = VARIANT) -> str:
        return (
            f"# Latest as of Mon, 01 Jan 2024 17:00:00 +0000\n# ts=1704128400\n"
            f"{stamp}/stage3-{arch}-{variant}-{stamp}.tar.xz {size}\n"
        )

    def write_latest(
        self,
        stamp: str,
        size: int,
        *,
        arch: str = ARCH,
        variant: str = VARIANT,
        key: TestKey | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = (
            raw
            if raw is not None
            else self.keys.clearsign(self.latest_text(stamp, size, arch, variant), key or self.keys.good)
        )
        self.write(f"{self.autobuilds(arch)}/latest-stage3-{arch}-{variant}.txt", data)

    def publish_snapshot(self, tarball: bytes, date: str = "latest", key: TestKey | None = None) -> str:
        rel = f"snapshots/gentoo-{date}.tar.xz"
        self.write(rel, tarball)
        self.write(rel + ".gpgsig", self.keys.detach_sign(tarball, key or self.keys.good))
        self.write(rel + ".md5sum", f"{hashlib.md5(tarball).hexdigest()}  gentoo-{date}.tar.xz\n".encode())
        return rel


def digests_text(name: str, data: bytes) -> str:
    """The catalyst .DIGESTS layout (catalyst/base/genbase.py gen_digest_file): for the tarball and
    then its .CONTENTS.gz, one '# <ALGO> HASH' line and one '<hex>  <file>' line per algorithm."""
    out = []
    for filename, content in ((name, data), (f"{name}.CONTENTS.gz", b"contents")):
        for algo in ("blake2b", "sha512"):
            out.append(f"# {algo.upper()} HASH\n{hashlib.new(algo, content).hexdigest()}  {filename}\n")
    return "".join(out)


# -- the server ------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        rel = self.path.split("?", 1)[0].lstrip("/")
        owner.requests.append((rel, self.headers.get("Range")))
        fault = owner._take_fault(rel)
        if fault and "status" in fault:
            body = fault.get("body") or f"<html><body>error {fault['status']}</body></html>".encode()
            self.send_response(fault["status"])
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        path = (owner.root / rel).resolve()
        if owner.root.resolve() not in path.parents or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end, status = 0, len(data), 200
        rng = self.headers.get("Range")
        if rng and owner.ranges:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if match:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
                status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        body = data[start:end]
        if fault and "cut_after" in fault:
            self.wfile.write(body[: fault["cut_after"]])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: MirrorServer


class MirrorServer:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.faults: dict[str, dict] = {}
        self.ranges = True
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _take_fault(self, rel: str) -> dict | None:
        with self._lock:
            fault = self.faults.get(rel) or self.faults.get("*")
            if not fault:
                return None
            if "times" in fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.faults = {k: v for k, v in self.faults.items() if v is not fault}
            return fault

    def fault(self, rel: str, **spec) -> None:
        self.faults[rel] = spec

    def requested(self, suffix: str) -> list[tuple[str, str | None]]:
        return [r for r in self.requests if r[0].endswith(suffix)]

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


@pytest.fixture
def mirror_tree(gpg_keys) -> MirrorTree:
    root = shared_dir("mirror.")
    yield MirrorTree(root, gpg_keys)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mirror_server(mirror_tree) -> MirrorServer:
    server = MirrorServer(mirror_tree.root)
    yield server
    server.stop()


@pytest.fixture
def second_mirror(gpg_keys):
    """Another tree + server, for fallback tests: (MirrorTree, MirrorServer)."""
    root = shared_dir("mirror2.")
    tree = MirrorTree(root, gpg_keys)
    server = MirrorServer(root)
    yield tree, server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
