"""Files written by name (export -o, lock, new, a layout's index): only a new or a regular file is
ever written or replaced; devices, FIFOs, sockets, directories and symlinks are refused, also when
they appear between the check and the rename. `-o -` streams to stdout, never to a terminal."""

from __future__ import annotations

import errno
import os
import pty
import socket
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_write, atomic_writer
from tests.helpers.oci import EPOCH


def _layout(base: Path) -> Path:
    tree = base / "rootfs"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "motd").write_text("hello\n")
    os.environ["SOURCE_DATE_EPOCH"] = str(EPOCH)
    try:
        oci.commit(tree, base / "L", "img:1", quiet=True)
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)
    for dirpath, _dirs, files in os.walk(base):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return base / "L"


def _cf(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *argv], capture_output=True, text=True, check=False, timeout=60
    )


def _identity_of(path: Path) -> tuple:
    st = os.lstat(path)
    return (st.st_ino, stat.S_IFMT(st.st_mode), st.st_rdev)


def _hostile_outputs(base: Path, is_root: bool) -> dict[str, Path]:
    """Every kind of name an export must not replace, in `base` (which the identity owns)."""
    out = base / "out"
    out.mkdir()
    targets = {"fifo": out / "fifo", "socket": out / "sock", "directory": out / "dir"}
    os.mkfifo(targets["fifo"])
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(targets["socket"]))
    sock.close()
    targets["directory"].mkdir()
    (out / "regular").write_text("keep me\n")
    targets["symlink to a file"] = out / "link-file"
    targets["symlink to a file"].symlink_to(out / "regular")
    targets["symlink to a fifo"] = out / "link-fifo"
    targets["symlink to a fifo"].symlink_to(targets["fifo"])
    if is_root:
        # The node /dev/full is (char 1,7): its twin here, so a failure cannot hurt the host.
        targets["char device"] = out / "full"
        os.mknod(targets["char device"], 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        targets["symlink to a device"] = out / "link-dev"
        targets["symlink to a device"].symlink_to(targets["char device"])
    return targets


def test_export_refuses_every_non_regular_output(identity):
    base = identity.mkdtemp("outputs.")
    layout = _layout(base)
    targets = _hostile_outputs(base, identity.is_root)
    for path in base.rglob("*"):
        os.lchown(path, identity.uid, identity.gid) if os.getuid() == 0 else None
    before = {kind: _identity_of(path) for kind, path in targets.items()}
    for kind, path in targets.items():
        out = identity.cf("export", f"{layout}:img:1", "-o", str(path), timeout=60)
        assert out.returncode == 2, (kind, out.stderr)
        assert f"cannot write {path}" in out.stderr and "Traceback" not in out.stderr, (kind, out.stderr)
        assert _identity_of(path) == before[kind], kind
    assert (base / "out" / "regular").read_text() == "keep me\n"
    assert not [p for p in (base / "out").iterdir() if p.name.endswith(".tmp")]  # no temp left


def test_export_writes_a_new_file_or_replaces_a_regular_one(identity):
    base = identity.mkdtemp("outputs.")
    layout = _layout(base)
    target = base / "image.tar"
    for _ in range(2):  # new, then over the regular file of the first run
        out = identity.cf("export", f"{layout}:img:1", "-o", str(target))
        assert out.returncode == 0, out.stderr
        with tarfile.open(target) as tar:
            assert "index.json" in tar.getnames()
    assert [p.name for p in base.iterdir() if p.name.startswith(".")] == []


def test_export_to_stdout_and_never_to_a_terminal(tmp_path):
    layout = _layout(tmp_path)
    oci.export(layout, "img:1", "oci-archive", tmp_path / "file.tar")
    out = subprocess.run(
        [sys.executable, "-m", "chrootforge", "export", f"{layout}:img:1", "-o", "-"],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == (tmp_path / "file.tar").read_bytes()
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "chrootforge", "export", f"{layout}:img:1", "-o", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            check=False,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
    os.set_blocking(leader, False)
    try:
        written = os.read(leader, 1 << 16)
    except OSError:
        written = b""
    os.close(leader)
    assert proc.returncode == 2 and "terminal" in proc.stderr, proc.stderr
    assert written == b""


@pytest.mark.parametrize("appears", ["fifo", "directory", "symlink"])
def test_the_rename_never_replaces_what_appears_after_the_check(tmp_path, appears):
    """The check happens before writing; a non-regular file put there meanwhile stays."""
    for existed in (False, True):
        target = tmp_path / f"{appears}-{existed}"
        if existed:
            target.write_text("old")
        with pytest.raises(UsageError, match=f"cannot write {target}"):
            with atomic_writer(target) as handle:
                handle.write(b"new")
                if existed:
                    target.unlink()
                {"fifo": os.mkfifo, "directory": os.mkdir}.get(appears, lambda p: p.symlink_to("/etc"))(
                    target
                )
        assert os.path.islink(target) if appears == "symlink" else not os.path.isfile(target)
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_without_renameat2_flags_the_check_still_holds(tmp_path, monkeypatch):
    """9p and NFS have no RENAME_NOREPLACE/EXCHANGE: the fallback checks, then renames."""
    from chrootforge.sandbox import syscalls

    def unsupported(src, dst, flags):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(syscalls, "renameat2", unsupported)
    target = tmp_path / "f"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"
    with pytest.raises(FileExistsError):
        atomic_write(target, "three", replace=False)
    assert target.read_text() == "two"
    fifo = tmp_path / "fifo"
    with pytest.raises(UsageError, match="FIFO"):
        with atomic_writer(fifo) as handle:
            handle.write(b"x")
            os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_every_named_writer_shares_the_rule(tmp_path):
    """lock, new and a layout's own files go through the same helper."""
    from chrootforge import lockfile
    from chrootforge.spec.new import new_namespace

    ns = tmp_path / "ns"
    new_namespace(ns)
    os.mkfifo(ns / lockfile.FILENAME)
    with pytest.raises(UsageError, match="FIFO"):
        atomic_write(ns / lockfile.FILENAME, "x")
    assert stat.S_ISFIFO(os.lstat(ns / lockfile.FILENAME).st_mode)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "chrootforge.toml").symlink_to(tmp_path / "elsewhere.toml")
    out = _cf("new", str(fresh))
    assert out.returncode == 2 and "does not overwrite" in out.stderr
    assert not (tmp_path / "elsewhere.toml").exists()


def test_a_hostile_layout_neither_hangs_nor_writes_elsewhere(tmp_path):
    """index.json or a blob that is a FIFO, or a lock that is a symlink: one error, no hang,
    nothing created through the link."""
    layout = _layout(tmp_path)
    tree = tmp_path / "rootfs"
    index = (layout / "index.json").read_bytes()
    (layout / "index.json").unlink()
    os.mkfifo(layout / "index.json")
    for argv in (("inspect", str(layout)), ("commit", str(tree), "--layout", str(layout), "--tag", "x")):
        out = _cf(*argv)
        assert out.returncode != 0 and "FIFO" in out.stderr and "Traceback" not in out.stderr, out.stderr
    (layout / "index.json").unlink()
    (layout / "index.json").write_bytes(index)
    config = oci.resolve(layout, "img:1").manifest["config"]["digest"][7:]
    (layout / "blobs" / "sha256" / config).unlink()
    os.mkfifo(layout / "blobs" / "sha256" / config)
    for argv in (("inspect", f"{layout}:img:1"), ("verify", str(layout))):
        out = _cf(*argv)
        assert out.returncode == 1 and "not a regular file" in out.stderr, out.stderr
    (layout / ".index.lock").unlink(missing_ok=True)
    (layout / ".index.lock").symlink_to(tmp_path / "created-through-link")
    with pytest.raises(CfError, match="symlink"):
        oci.commit(tree, layout, "y", quiet=True)
    assert not (tmp_path / "created-through-link").exists()


def test_a_layout_path_that_is_no_directory_is_refused_before_anything_is_made(tmp_path):
    """build --layout, commit --layout and pull's LAYOUT write a directory, and build writes
    LAYOUT.build beside it: a FIFO (or a device) there is refused before either is made."""
    ns = tmp_path / "ns"
    assert _cf("new", str(ns)).returncode == 0
    assert _cf("new", str(ns / "img"), "--package", "app-misc/hello").returncode == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tree = tmp_path / "rootfs"
    tree.mkdir()
    for argv in (
        ("build", str(ns / "img"), "--layout", str(fifo), "--vm", "off"),
        ("commit", str(tree), "--layout", str(fifo), "--tag", "x"),
    ):
        out = _cf(*argv)
        assert out.returncode == 2 and f"{fifo} exists and is not a directory" in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "ns", "rootfs"]
