"""Real extraction, as root and as the unprivileged user under the sandbox's uid mapping."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from chrootforge.errors import VerificationError
from chrootforge.sources.extract import extract
from tests.helpers.identity import shared_dir
from tests.helpers.mirror import make_tar, member, stage_members
from tests.helpers.rootfs import TREE_INSPECT

# Runs as the identity: extract, then list the tree from inside the same mapping (TREE_INSPECT),
# the way a build would see it.
DRIVER = textwrap.dedent("""
    import json, os, sys
    from chrootforge.sources.extract import extract
    from chrootforge.sources.mapped_run import run_under_mapping
    tarball, dest, out = sys.argv[1:4]
    result = extract(tarball, dest)
    code = run_under_mapping([sys.executable, sys.argv[4], dest, out])
    print(json.dumps({"members": result.members, "skipped_dev": result.skipped_dev, "code": code}))
""")


@pytest.fixture(scope="module")
def scripts():
    folder = shared_dir("extract-scripts.")
    (folder / "driver.py").write_text(DRIVER)
    (folder / "tree_inspect.py").write_text(TREE_INSPECT)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_owners_modes_xattrs_links_survive(identity, scripts):
    work = identity.mkdtemp("extract.")
    if identity.is_root:  # the namespace's root (root's unprivileged range) writes the report here
        from chrootforge.sandbox import owned_dir

        owned_dir(work)
    tarball = work / "stage.tar.xz"
    tarball.write_bytes(make_tar(stage_members(), "xz"))
    os.chown(tarball, identity.uid, identity.gid) if os.getuid() == 0 else None
    out = work / "inspect.json"
    done = identity.run(
        [
            *identity.python,
            str(scripts / "driver.py"),
            str(tarball),
            str(work / "root"),
            str(out),
            str(scripts / "tree_inspect.py"),
        ]
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["code"] == 0 and summary["skipped_dev"] == 2
    assert "skipped 2 entries under /dev" in done.stderr
    seen = json.loads(out.read_text())
    tree, ls = seen["tree"], seen["ls"]
    if identity.name == "user":  # really inside a mapped namespace
        assert seen["uid_map"].split()[:3] == ["0", str(identity.uid), "1"]
    assert tree["etc/passwd"]["uid"] == 0
    assert (tree["var/cache/distfiles"]["uid"], tree["var/cache/distfiles"]["gid"]) == (250, 250)
    assert tree["var/cache/distfiles"]["mode"] & 0o7777 == 0o2775
    assert (tree["home/user/notes"]["uid"], tree["home/user/notes"]["gid"]) == (1000, 1000)
    assert tree["usr/bin/su"]["mode"] & 0o7777 == 0o4755
    assert tree["usr/bin/newgrp"]["ino"] == tree["usr/bin/su"]["ino"] and tree["usr/bin/su"]["nlink"] == 2
    assert tree["bin"]["link"] == "usr/bin" and tree["etc/localtime"]["link"] == "/usr/share/zoneinfo/UTC"
    assert bytes.fromhex(tree["usr/bin/ping"]["xattrs"]["user.test"]) == b"hello"
    cap = bytes.fromhex(tree["usr/bin/ping"]["xattrs"]["security.capability"])
    assert int.from_bytes(cap[4:8], "little") & (1 << 13)  # cap_net_raw kept
    assert os.path.exists(work / "root/dev") and not any(k.startswith("dev/") for k in tree)
    assert "var/run" in tree  # the fifo
    # the same facts as `ls -ln` prints them inside the namespace
    assert any(line.startswith("-rwsr-xr-x 2 0 0 ") and line.endswith(" su") for line in ls.splitlines())
    assert any(" 250 250 " in line and line.endswith(" distfiles") for line in ls.splitlines())
    assert any(" 1000 1000 " in line and line.endswith(" notes") for line in ls.splitlines())
    if identity.is_root:  # from the host: root's unprivileged range, never host ids 0 or 250
        from chrootforge.sandbox import detect_idmap

        base = detect_idmap().host_uid
        assert base != 0 and os.lstat(work / "root/var/cache/distfiles").st_uid == base + 250
        assert os.lstat(work / "root/etc/passwd").st_uid == base
    if identity.name == "user":  # from the host, the owners are shifted into the subuid range
        assert os.lstat(work / "root/var/cache/distfiles").st_uid not in (0, 250, identity.uid)
        # subuid-owned files can only be deleted from inside the mapping
        gone = identity.run(
            [
                *identity.python,
                "-c",
                f"from chrootforge.sandbox import remove_tree; remove_tree({str(work / 'root')!r})",
            ]
        )
        assert gone.returncode == 0, gone.stderr
        assert not (work / "root").exists()


@pytest.mark.parametrize("compression", ["xz", "zst", "gz", "bz2", ""])
def test_every_compression(tmp_path, compression):
    tarball = tmp_path / f"t.tar.{compression or 'plain'}"
    tarball.write_bytes(make_tar([member("./a", "dir"), member("./a/f", data=b"data" * 1000)], compression))
    result = extract(tarball, tmp_path / "out")
    assert (tmp_path / "out/a/f").read_bytes() == b"data" * 1000 and result.members == 2


def leftovers(parent, name):
    return [p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.extract-")]


HOSTILE = {
    "dotdot": ([member("./ok", data=b"1"), member("../x", data=b"x")], "../x"),
    "absolute": ([member("./ok", data=b"1"), member("/etc/x", data=b"x")], "/etc/x"),
    "symlink-then-write": (
        [member("./l", "symlink", link="/tmp"), member("./l/pwned", data=b"x")],
        "./l/pwned",
    ),
    "hardlink-outside": ([member("./h", "hardlink", link="/etc/passwd")], "./h"),
    "device-outside-dev": ([member("./sda", "block")], "./sda"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_leave_nothing(tmp_path, case):
    members, offender = HOSTILE[case]
    tarball = tmp_path / "evil.tar.xz"
    tarball.write_bytes(make_tar(members))
    with pytest.raises(VerificationError) as caught:
        extract(tarball, tmp_path / "out")
    assert repr(offender) in str(caught.value)  # names the offending member
    assert leftovers(tmp_path, "out") == []
    assert not os.path.exists("/tmp/pwned")


def test_hostile_archive_as_user_leaves_nothing(user_identity):
    work = user_identity.mkdtemp("evil.")
    tarball = work / "evil.tar.xz"
    tarball.write_bytes(
        make_tar(
            [
                member("./a", "dir", uid=250, gid=250),
                member("./a/f", data=b"x", uid=250),
                member("./l", "symlink", link="/tmp"),
                member("./l/pwned", data=b"x"),
            ]
        )
    )
    tarball.chmod(0o644)
    code = (
        "import sys; from chrootforge.errors import CfError; from chrootforge.sources.extract import extract\n"
        f"try: extract({str(tarball)!r}, {str(work / 'out')!r})\n"
        "except CfError as err: print(err.render(), file=sys.stderr); sys.exit(1)\n"
    )
    done = user_identity.run([*user_identity.python, "-c", code])
    assert done.returncode == 1 and "./l/pwned" in done.stderr and "Traceback" not in done.stderr
    assert "writes through symlink" in done.stderr
    assert leftovers(work, "out") == []


def test_truncated_and_corrupt_tarballs(tmp_path):
    good = make_tar([member(f"./f{i}", data=os.urandom(3000)) for i in range(30)])
    (tmp_path / "trunc.tar.xz").write_bytes(good[: len(good) // 2])
    with pytest.raises(VerificationError, match="corrupt or truncated xz"):
        extract(tmp_path / "trunc.tar.xz", tmp_path / "out")
    plain = make_tar([member(f"./f{i}", data=b"x" * 3000) for i in range(5)], "")
    (tmp_path / "trunc.tar").write_bytes(plain[:4096])
    with pytest.raises(VerificationError, match="truncated tar"):
        extract(tmp_path / "trunc.tar", tmp_path / "out")
    (tmp_path / "page.tar.xz").write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    with pytest.raises(VerificationError, match="HTML page"):
        extract(tmp_path / "page.tar.xz", tmp_path / "out")
    (tmp_path / "empty.tar.xz").write_bytes(b"")
    with pytest.raises(VerificationError, match="empty"):
        extract(tmp_path / "empty.tar.xz", tmp_path / "out")
    (tmp_path / "zip.tar.xz").write_bytes(b"PK\x03\x04" + b"\0" * 600)
    with pytest.raises(VerificationError, match="not a tar archive"):
        extract(tmp_path / "zip.tar.xz", tmp_path / "out")
    assert leftovers(tmp_path, "out") == []


def test_existing_destination_is_refused(tmp_path):
    tarball = tmp_path / "t.tar.xz"
    tarball.write_bytes(make_tar([member("./f", data=b"x")]))
    (tmp_path / "out").mkdir()
    from chrootforge.errors import UsageError

    with pytest.raises(UsageError, match="already exists"):
        extract(tarball, tmp_path / "out")


@pytest.mark.skipif(os.getuid() != 0, reason="rootless, the namespace's root is the caller")
def test_root_refuses_a_directory_its_range_cannot_enter():
    """As root the extraction runs as an unprivileged range: a 0700 root-owned parent of the
    destination is one clear error naming it, before anything is created there."""
    import shutil

    from chrootforge.errors import UsageError

    base = shared_dir("reach.")
    try:
        tarball = base / "t.tar.xz"
        tarball.write_bytes(make_tar([member("./f", data=b"x")]))
        closed = base / "closed"
        closed.mkdir(mode=0o700)
        with pytest.raises(UsageError, match=f"{closed} is not searchable"):
            extract(tarball, closed / "out")
        assert list(closed.iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_overlay_control_xattrs_are_not_extracted(tmp_path):
    tarball = tmp_path / "x.tar.xz"
    tarball.write_bytes(
        make_tar([member("./f", data=b"x", xattrs={"user.overlay.opaque": b"y", "user.keep": b"1"})])
    )
    extract(tarball, tmp_path / "out")
    names = os.listxattr(tmp_path / "out/f")
    assert "user.keep" in names and "user.overlay.opaque" not in names


@pytest.mark.parametrize("compression", ["zst", ""])
def test_big_members_stay_in_sync(tmp_path, compression):
    """Large data regions bypass the validator (spliced); the headers after them are still checked."""
    big = os.urandom(3 << 20)
    good = [member("./big", data=big), member("./small", data=b"s"), member("./big2", data=big[::-1])]
    tarball = tmp_path / "good.tar"
    tarball.write_bytes(make_tar(good, compression))
    extract(tarball, tmp_path / "out")
    assert (tmp_path / "out/big").read_bytes() == big and (tmp_path / "out/big2").read_bytes() == big[::-1]
    assert (tmp_path / "out/small").read_bytes() == b"s"
    evil = tmp_path / "evil.tar"
    evil.write_bytes(
        make_tar([*good, member("./l", "symlink", link="/tmp"), member("./l/pwned", data=b"x")], compression)
    )
    with pytest.raises(VerificationError, match="'./l/pwned'"):
        extract(evil, tmp_path / "out2")
    assert leftovers(tmp_path, "out2") == []


def test_plain_user_extract_here_takes_ownership(user_identity):
    """Without a mapping (e.g. a read-only portage snapshot), a user's extraction owns every file."""
    work = user_identity.mkdtemp("plain.")
    tarball = work / "t.tar.xz"
    tarball.write_bytes(make_tar(stage_members()))
    tarball.chmod(0o644)
    code = f"from chrootforge.sources.extract import extract_here; extract_here({str(tarball)!r}, {str(work / 'o')!r})"
    done = user_identity.run([*user_identity.python, "-c", code])
    assert done.returncode == 0, done.stderr
    assert os.lstat(work / "o/var/cache/distfiles").st_uid == user_identity.uid
    assert (work / "o/etc/passwd").read_bytes().startswith(b"root:")


def test_truncated_and_corrupt_zstd(tmp_path):
    """zstd is decompressed in-process: a cut or damaged stream still stops with nothing extracted."""
    good = make_tar([member(f"./f{i}", data=os.urandom(3000)) for i in range(300)], "zst")
    (tmp_path / "cut.tar.zst").write_bytes(good[: len(good) // 2])
    with pytest.raises(VerificationError, match="truncated tar archive"):
        extract(tmp_path / "cut.tar.zst", tmp_path / "out")
    import zstandard

    framed = zstandard.ZstdCompressor(write_checksum=True).compress(zstandard.decompress(good))
    bad = bytearray(framed)
    bad[-6] ^= 0xFF  # the content checksum no longer matches
    (tmp_path / "bad.tar.zst").write_bytes(bytes(bad))
    with pytest.raises(VerificationError, match="corrupt zstd stream"):
        extract(tmp_path / "bad.tar.zst", tmp_path / "out")
    assert leftovers(tmp_path, "out") == []


def test_extraction_reports_progress_off_a_terminal(tmp_path, capfd, monkeypatch):
    """A stage extraction takes a minute in the --vm guest, whose stderr is a log: plain lines
    (every PLAIN_EVERY seconds; 0 here) say how far it is, and the last one that it is done."""
    from chrootforge import progress
    from chrootforge.sources.extract import extract_here

    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    tarball = tmp_path / "stage3-amd64-openrc-20240101T170000Z.tar.xz"
    tarball.write_bytes(make_tar([*stage_members(), member("./big", "file", os.urandom(1 << 20))], "xz"))
    extract_here(tarball, tmp_path / "out")
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("extracting ")]
    assert lines and all(line.startswith(f"extracting {tarball.name}:") for line in lines), lines
    assert "done in" in lines[-1] and "\r" not in "".join(lines)


def test_extraction_draws_progress_on_a_terminal(tmp_path):
    import subprocess
    import sys

    tarball = tmp_path / "stage3.tar.zst"
    tarball.write_bytes(make_tar([*stage_members(), member("./big", "file", os.urandom(1 << 20))], "zst"))
    code = (
        "import sys; from chrootforge.sources.extract import extract_here; "
        "extract_here(sys.argv[1], sys.argv[2])"
    )
    leader, follower = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tarball), str(tmp_path / "out")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            check=False,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "extracting stage3.tar.zst:" in screen and "MB/s" in screen


# -- single-id mode: only id 0 exists, the archive's other owners are recorded --------------------
SINGLE_DRIVER = textwrap.dedent("""
    import json, sys
    from chrootforge.sandbox.idmap import detect_idmap
    from chrootforge.sources.extract import extract
    from chrootforge.sources.mapped_run import run_under_mapping
    tarball, dest, out, inspect = sys.argv[1:5]
    idmap = detect_idmap(single_id=True)
    result = extract(tarball, dest, idmap)
    code = run_under_mapping([sys.executable, inspect, dest, out], idmap)
    print(json.dumps({"recorded": result.recorded, "unrecorded": list(result.unrecorded),
                      "code": code, "uid_map": idmap.uid_lines()}))
""")


def single_id_members() -> list:
    from chrootforge import ownerxattr

    return [
        *stage_members(),
        member("./home/user/link", "symlink", link="notes", uid=1000, gid=1000),
        member("./var/mail", "dir", uid=0, gid=8, mode=0o2775),
        member("./usr/bin/wall", "file", b"wall", uid=0, gid=5, mode=0o2755),
        # a record that comes with the archive claims nothing: only extraction writes records
        member("./etc/claims", "file", b"x", xattrs={ownerxattr.XATTR: ownerxattr.encode(250, 250)}),
        member("./etc/claims2", "file", b"x", uid=7, gid=7, xattrs={ownerxattr.XATTR: b""}),
    ]


@pytest.mark.parametrize("who", ["single", "root"])
def test_single_id_extraction_records_the_owners(who, scripts):
    """A user without /etc/subuid (and root with --single-id) extracts a stage: chown to 250 is
    impossible there (EINVAL), so every file becomes id 0's and the archive's owners are recorded
    in user.rootlesscontainers; setuid/setgid bits and capabilities stay; a symlink's owner, which
    no xattr can hold, is reported."""
    from chrootforge import ownerxattr
    from tests.helpers.identity import get_identity

    identity = get_identity(who)
    work = identity.mkdtemp("single-extract.")
    if identity.is_root:
        from chrootforge.sandbox import owned_dir
        from chrootforge.sandbox.idmap import detect_idmap

        owned_dir(work, detect_idmap(single_id=True))
    (work / "driver.py").write_text(SINGLE_DRIVER)
    tarball = work / "stage.tar.xz"
    tarball.write_bytes(make_tar(single_id_members(), "xz"))
    for path in (tarball, work / "driver.py"):
        path.chmod(0o644)
    out = work / "inspect.json"
    argv = [
        str(work / "driver.py"),
        str(tarball),
        str(work / "root"),
        str(out),
        str(scripts / "tree_inspect.py"),
    ]
    done = identity.run([*identity.python, *argv])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["code"] == 0 and summary["uid_map"].split()[0::2] == ["0", "1"]
    assert "single-id mode" in done.stderr
    tree = json.loads(out.read_text())["tree"]
    assert {(e["uid"], e["gid"]) for e in tree.values()} == {(0, 0)}  # inside: only id 0

    def recorded(path):
        value = tree[path]["xattrs"].get(ownerxattr.XATTR)
        return ownerxattr.decode(bytes.fromhex(value)) if value is not None else None

    assert recorded("var/cache/distfiles") == (250, 250) and recorded("var/cache/distfiles/.keep") == (
        250,
        250,
    )
    assert recorded("home/user") == (1000, 1000) and recorded("home/user/notes") == (1000, 1000)
    assert recorded("var/mail") == (0, 8) and tree["var/mail"]["mode"] & 0o7777 == 0o2775
    assert recorded("usr/bin/wall") == (0, 5) and tree["usr/bin/wall"]["mode"] & 0o7777 == 0o2755
    assert recorded("usr/bin/su") is None and tree["usr/bin/su"]["mode"] & 0o7777 == 0o4755
    assert recorded("etc/claims") is None and recorded("etc/claims2") == (7, 7)
    cap = bytes.fromhex(tree["usr/bin/ping"]["xattrs"]["security.capability"])
    assert int.from_bytes(cap[4:8], "little") & (1 << 13)
    assert summary["recorded"] == 7
    assert summary["unrecorded"] == ["/home/user/link (1000:1000)"]
    assert "owners of 1 symlinks" in done.stderr and "/home/user/link (1000:1000)" in done.stderr
