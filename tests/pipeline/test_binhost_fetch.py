"""The host side of the binhost against small real HTTP servers on 127.0.0.1 (honest and hostile):
what is downloaded, what is refused, and that every failure leaves the mirror without a partial or
unverified file and the build without --getbinpkg (gentoo/binhost.py: a binhost makes builds faster,
never different)."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from chrootforge.gentoo import binhost as bh
from chrootforge.gentoo.binhost_fetch import BinhostError, Mirror, prepare
from chrootforge.registry import RegistryOptions

KEY = "0123456789abcdef01234567"
HELLO = b"hello binary package " * 500
ARGV = ["emerge", "--usepkg", "app-misc/hello"]


def index(*entries: tuple[str, bytes], **override) -> bytes:
    out = "ARCH: amd64\nTIMESTAMP: 1700000000\nVERSION: 0\n\n"
    for path, data in entries:
        fields = {
            "CPV": "app-misc/hello-1.0",
            "PATH": path,
            "SIZE": str(len(data)),
            "SHA1": hashlib.sha1(data).hexdigest(),
            "MD5": hashlib.md5(data).hexdigest(),
            **override,
        }
        out += "".join(f"{k}: {v}\n" for k, v in fields.items()) + "\n"
    return out.encode()


class Binhost:
    """Serves `files` (path -> bytes, or an int status); logs every GET; `hang` never answers."""

    def __init__(self):
        self.files: dict[str, bytes | int] = {}
        self.log: list[str] = []
        self.hang = False
        self.trickle = False  # the body, one byte every 0.3 s
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.log.append(self.path)
                if owner.hang:
                    time.sleep(5)
                    return
                body = owner.files.get(self.path, 404)
                if isinstance(body, int):
                    self.send_response(body)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)) if owner.trickle else ():
                    time.sleep(0.3)
                    try:
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up, as it should
                        return
                self.wfile.write(b"" if owner.trickle else body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/bin"

    def put(self, path: str, body: bytes | int) -> None:
        self.files[f"/bin/{KEY}/{path}"] = body

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Binhost()
    yield s
    s.stop()


OPTIONS = RegistryOptions(timeout=1.0, retries=1)


def _mirror(server, tmp_path) -> Mirror:
    return Mirror(server.url, KEY, OPTIONS, cache=tmp_path / "binhost")


def _view(tmp_path, name: str = "view") -> Path:
    """A build's binrepo directory (empty, as the executor makes it)."""
    path = tmp_path / "work" / name
    path.mkdir(parents=True)
    return path


def _pretend(paths):
    output = "".join(f"\nfile://{bh.MOUNT}/{p}\n" for p in paths)
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, output

    return run, calls


def test_fetches_what_portage_asks_for_verified_once(server, tmp_path):
    path = "app-misc/hello/hello-1.0-1.gpkg.tar"
    server.put("Packages", index((path, HELLO), ("app-misc/other/other-1-1.gpkg.tar", b"other")))
    server.put(path, HELLO)
    mirror = _mirror(server, tmp_path)
    view = _view(tmp_path)
    run, calls = _pretend([path])
    assert prepare(mirror, view, ARGV, run, "hello") == bh.with_getbinpkg(ARGV)
    assert calls == [bh.pretend_argv(ARGV)]
    assert (mirror.dir / path).read_bytes() == HELLO == (view / path).read_bytes()
    assert os.path.samefile(mirror.dir / path, view / path)  # linked, not copied
    assert (view / "Packages").read_bytes() == server.files[f"/bin/{KEY}/Packages"]
    assert not (mirror.dir / "app-misc/other").exists()  # only what portage wanted
    assert sorted(p.name for p in view.rglob("*") if p.is_file()) == ["Packages", "hello-1.0-1.gpkg.tar"]
    assert oct((mirror.dir / path).stat().st_mode & 0o777) == "0o644"
    for d in (mirror.dir, (view / path).parent):
        assert oct(d.stat().st_mode & 0o777) == "0o755"  # root's sandbox range reads it
    server.log.clear()
    again = _view(tmp_path, "view2")
    assert prepare(mirror, again, ARGV, run, "hello") == bh.with_getbinpkg(ARGV)
    assert server.log == [f"/bin/{KEY}/Packages"]  # a verified copy is not fetched again
    assert (again / path).read_bytes() == HELLO


def test_no_directory_for_this_key_builds_without(server, tmp_path, capfd):
    mirror = _mirror(server, tmp_path)
    run, calls = _pretend([])
    assert prepare(mirror, _view(tmp_path), ARGV, run, "hello") == ARGV and calls == []
    assert "no packages for this configuration" in capfd.readouterr().err


@pytest.mark.parametrize(
    "case",
    [
        "sha1",
        "md5",
        "longer",
        "shorter",
        "traversal",
        "unlisted",
        "no-digest",
        "index-html",
        "index-500",
        "package-404",
        "hang",
        "trickle",
        "refused",
    ],
)
def test_a_bad_binhost_is_refused_and_the_build_goes_on(server, tmp_path, capfd, case):
    path = "app-misc/hello/hello-1.0-1.gpkg.tar"
    served, listed, wanted = HELLO, HELLO, path
    override = {}
    if case == "sha1":
        served = HELLO[:-1] + b"X"
        override = {"MD5": hashlib.md5(served).hexdigest()}  # only the SHA1 disagrees
    elif case == "md5":
        served = HELLO[:-1] + b"X"
        override = {"SHA1": hashlib.sha1(served).hexdigest()}
    elif case == "longer":
        served = HELLO + b"more"
    elif case == "shorter":
        served = HELLO[:100]
    elif case == "traversal":
        wanted = path = "../../../../etc/passwd"
    elif case == "unlisted":
        wanted = "app-misc/evil/evil-1-1.gpkg.tar"
    elif case == "no-digest":
        override = {"SHA1": "", "MD5": ""}
    server.put(
        "Packages", index((path, listed), **override).replace(b"SHA1: \n", b"").replace(b"MD5: \n", b"")
    )
    server.put(path, served)
    if case == "index-html":
        server.put("Packages", b"<html><body>It works!</body></html>")
    elif case == "index-500":
        server.put("Packages", 500)
    elif case == "package-404":
        server.put(path, 404)
    elif case == "hang":
        server.hang = True
    elif case == "trickle":  # never silent for a second, yet hopeless
        server.trickle = True
    mirror = Mirror(
        "http://127.0.0.1:1/bin" if case == "refused" else server.url,
        KEY,
        OPTIONS,
        cache=tmp_path / "binhost",
    )
    run, _ = _pretend([wanted])
    started = time.monotonic()
    view = _view(tmp_path)
    assert prepare(mirror, view, ARGV, run, "hello") == ARGV  # no --getbinpkg
    assert time.monotonic() - started < 20
    err = capfd.readouterr().err
    assert "chrootforge: notice: hello: binhost" in err and "building without it" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # one line
    leftovers = [
        p
        for p in [*(tmp_path / "binhost").rglob("*"), *view.rglob("*")]
        if p.is_file() and p.name != "Packages" and not p.name.endswith((".lock", ".hold"))
    ]
    assert leftovers == []  # nothing partial, nothing unverified
    if case == "traversal":
        assert all("passwd" not in line for line in server.log)  # refused before any request


def test_pretend_failure_builds_without(server, tmp_path, capfd):
    server.put("Packages", index(("a/b/b-1-1.gpkg.tar", b"x")))
    mirror = _mirror(server, tmp_path)
    assert (
        prepare(
            mirror,
            _view(tmp_path),
            ARGV,
            lambda argv: (1, "emerge: there are no ebuilds to satisfy"),
            "hello",
        )
        == ARGV
    )
    assert "could not say what to take from the binhost (exit status 1)" in capfd.readouterr().err


def test_file_binhost_and_size_limits(tmp_path):
    root = tmp_path / "srv"
    (root / KEY / "app-misc/hello").mkdir(parents=True)
    path = "app-misc/hello/hello-1.0-1.gpkg.tar"
    (root / KEY / path).write_bytes(HELLO)
    (root / KEY / "Packages").write_bytes(index((path, HELLO)))
    mirror = Mirror(f"file://{root}", KEY, cache=tmp_path / "binhost")
    view = _view(tmp_path)
    entries = mirror.refresh_index(view)
    stale = mirror.dir / "app-misc/hello/.hello-1.0-1.gpkg.tar.99999.tmp"  # left by a killed download
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    assert mirror.fetch([path], entries, view) == len(HELLO)
    assert (mirror.dir / path).read_bytes() == HELLO
    assert not stale.exists()
    assert Mirror(f"file://{tmp_path}/none", KEY, cache=tmp_path / "b2").refresh_index(view) is None
    big = dict(entries)
    big[path] = bh.Entry(path, bh.MAX_PACKAGE + 1, entries[path].digests)
    with pytest.raises(BinhostError, match="more than a binary package may have"):
        mirror.fetch([path], big, view)
