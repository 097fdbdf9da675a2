"""What the host reads after a build step, written by a hostile build (a hook, a package).

The image root (/emerge-root) and the status directory (/cf/status) are writable inside the build
sandbox. The host then reads them, as root for a root build: the package database for the SBOM and
the children's package.provided, the status files of runtime_libs, slim, single-id and the hooks. A
symlink there must not make the host read one of its own files into an image, a message or a
referrer; a FIFO must not hang the build, a huge file not fill the memory, a damaged line not end
in a traceback. Each case builds the tree as the sandbox would leave it and calls the host's reader.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from chrootforge.errors import CfError
from chrootforge.gentoo import provided, records, runtimelibs, singleid, slim, uninstall
from chrootforge.gentoo.status import read_status

SECRET = "HOST-SECRET-c0ffee"


@pytest.fixture
def host_secret(tmp_path) -> Path:
    path = tmp_path / "host" / "secret"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks (a FIFO) fails the test instead of hanging it."""

    def alarm(*_):
        raise TimeoutError("the host's reader blocked")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _package(root: Path, cpv: str) -> Path:
    entry = root / "var/db/pkg" / cpv
    entry.mkdir(parents=True)
    for name, value in (("SLOT", "0"), ("LICENSE", "MIT"), ("IUSE", ""), ("USE", ""), ("CONTENTS", "")):
        (entry / name).write_text(value + "\n")
    return entry


def _everything(got) -> str:
    return repr(got)


def _links_out(host_secret: Path, depth: int) -> list[str]:
    return [str(host_secret), "../" * depth + str(host_secret).lstrip("/")]


@pytest.mark.parametrize("field", ["LICENSE", "DESCRIPTION", "HOMEPAGE", "SLOT", "CONTENTS", "RDEPEND"])
@pytest.mark.parametrize("how", [0, 1])
def test_package_records_never_read_host_files(tmp_path, host_secret, field, how):
    root = tmp_path / "root"
    entry = _package(root, "app-misc/evil-1")
    (entry / field).unlink(missing_ok=True)
    os.symlink(_links_out(host_secret, 12)[how], entry / field)
    got = (records.read_vdb(root), uninstall.read_installed(root))
    assert SECRET not in _everything(got)


@pytest.mark.parametrize("made", ["", "var", "var/db"])
def test_an_image_without_a_package_database_has_no_records(tmp_path, made):
    """An image that emerged nothing (hooks only, from scratch) has no /var at all: no records,
    never "No such file or directory" (the CI failure of the redteam merge)."""
    root = tmp_path / "root"
    (root / made).mkdir(parents=True, exist_ok=True)
    assert records.vdb_entries(root) == []


@pytest.mark.parametrize("link", ["var", "var/db", "var/db/pkg", "var/db/pkg/app-misc"])
def test_package_database_through_a_symlink_is_not_followed(tmp_path, host_secret, link):
    """A database (or a category) that is a symlink to the host's: never read through."""
    outside = tmp_path / "elsewhere"
    (_package(outside, "app-misc/evil-1") / "DESCRIPTION").symlink_to(host_secret)
    root = tmp_path / "root"
    target = outside / link
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / link)
    try:
        got = records.read_vdb(root)
    except CfError:
        return
    assert SECRET not in _everything(got) and got == []


def test_package_record_that_is_a_fifo_or_huge_is_one_error(tmp_path):
    root = tmp_path / "root"
    entry = _package(root, "app-misc/evil-1")
    os.mkfifo(entry / "DESCRIPTION")
    with pytest.raises(CfError, match="FIFO"):
        records.read_vdb(root)
    os.unlink(entry / "DESCRIPTION")
    with open(entry / "DESCRIPTION", "wb") as handle:
        handle.truncate(records.MAX_FIELD + 1)  # sparse: no disk used
    with pytest.raises(CfError, match="larger"):
        records.read_vdb(root)


@pytest.mark.parametrize("name", ["evil", "evil-", "-1", "evil-1\nfoo", "evil-1-2"])
def test_package_entry_with_a_bad_name_is_one_error(tmp_path, name):
    root = tmp_path / "root"
    _package(root, "app-misc/ok-1")
    (root / "var/db/pkg/app-misc" / name).mkdir()
    with pytest.raises(CfError, match="no package record"):
        records.read_vdb(root)
    with pytest.raises(CfError, match="no package record"):
        uninstall.read_installed(root)


READERS = [
    (provided.RESOLVED_FILE, lambda status, root: provided.read_resolved(status)),
    (slim.UNMATCHED_FILE, lambda status, root: slim.warn_unmatched(status, "img")),
    (singleid.LOG_NAME, lambda status, root: singleid.unrecorded(status)),
    (runtimelibs.STATUS_FILE, lambda status, root: runtimelibs.read_copied(status, root, "img")),
    ("failed-hook", lambda status, root: read_status(status, "failed-hook")),
]


@pytest.mark.parametrize(("name", "reader"), READERS, ids=[r[0] for r in READERS])
@pytest.mark.parametrize("how", [0, 1])
def test_status_files_never_read_host_files(tmp_path, host_secret, capsys, name, reader, how):
    status, root = tmp_path / "status", tmp_path / "root"
    status.mkdir()
    root.mkdir()
    os.symlink(_links_out(host_secret, 12)[how], status / name)
    try:
        got = reader(status, root)
    except CfError as err:
        got = str(err)
    assert SECRET not in _everything(got) + capsys.readouterr().err


@pytest.mark.parametrize(("name", "reader"), READERS, ids=[r[0] for r in READERS])
def test_status_file_that_is_a_fifo_is_one_error(tmp_path, name, reader):
    status, root = tmp_path / "status", tmp_path / "root"
    status.mkdir()
    root.mkdir()
    os.mkfifo(status / name)
    with pytest.raises(CfError, match="FIFO"):
        reader(status, root)


@pytest.mark.parametrize(
    "line",
    [
        "only\tthree\tfields",
        "/lib/x\t/src\tcat/pkg-1\tMIT\textra",
        "/etc\t/src\tcat/pkg-1\tMIT",  # a directory
        "/missing\t/src\tcat/pkg-1\tMIT",
        "HOSTLINK\t/src\tcat/pkg-1\tMIT",  # a path through the root's symlink to the host
    ],
)
def test_runtime_libs_status_lines_are_checked(tmp_path, host_secret, line):
    """The copied file is hashed in the image root: never a host file, never a traceback."""
    status, root = tmp_path / "status", tmp_path / "root"
    status.mkdir()
    (root / "etc").mkdir(parents=True)
    os.symlink(host_secret.parent, root / "hostdir")
    (status / runtimelibs.STATUS_FILE).write_text(line.replace("HOSTLINK", "/hostdir/secret") + "\n")
    with pytest.raises(CfError):
        runtimelibs.read_copied(status, root, "img")
    (status / runtimelibs.STATUS_FILE).write_text(f"../../../..{host_secret}\t/s\tcat/pkg-1\tMIT\n")
    with pytest.raises(CfError):
        runtimelibs.read_copied(status, root, "img")
