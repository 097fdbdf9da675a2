"""commit / unpack / verify on real trees, as root and as the unprivileged user."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chrootforge import oci
from tests.helpers.oci import EPOCH, chown_tree, manifest_of, snapshot, umoci_comparable, without_devices

pytestmark = pytest.mark.usefixtures("epoch_env")


@pytest.fixture
def epoch_env(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))


def rich_tree(root: Path) -> Path:
    """Files, dirs, symlinks (one dangling), hardlinks, setuid/setgid/sticky, xattrs, a fifo, odd and
    long names, old and new mtimes; a char device and a capability when running as root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir()
    (root / "etc" / "conf").write_text("a=1\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(os.urandom(300000))
    (root / "bin" / "tool").chmod(0o4755)
    (root / "bin" / "grp").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "grp").chmod(0o2711)
    os.link(root / "bin" / "tool", root / "bin" / "tool-link")
    (root / "bin" / "alias").symlink_to("tool")
    (root / "dangling").symlink_to("/nowhere/at/all")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "empty").mkdir()
    odd = root / "odd names"
    odd.mkdir()
    (odd / "spaces and ünïcödé ✓").write_text("x")
    (odd / ("long-" * 40)).write_text("long name")
    os.setxattr(root / "etc" / "conf", "user.note", b"hello \x00\xff binary")
    os.mkfifo(root / "fifo")
    old = root / "old"
    old.write_text("old")
    os.utime(old, (1000, 1000))
    if os.getuid() == 0:
        os.mknod(root / "null", 0o666 | 0o020000, os.makedev(1, 3))
        subprocess.run(["setcap", "cap_net_raw+ep", str(root / "bin" / "grp")], check=True)
        os.lchown(root / "etc" / "conf", 123, 456)
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    """cp -a: keeps owners, modes, xattrs, hardlinks, fifos and devices."""
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    return dst


def test_same_tree_gives_same_manifest_digest(tmp_path):
    tree = rich_tree(tmp_path / "rootfs")
    a = oci.commit(tree, tmp_path / "A", "img:1", quiet=True)
    b = oci.commit(tree, tmp_path / "B", "img:1", quiet=True)
    c = oci.commit(copy_tree(tree, tmp_path / "copy"), tmp_path / "A", "img:2", quiet=True)
    assert a.digest == b.digest == c.digest
    z1 = oci.commit(tree, tmp_path / "A", "img:z", compression="zstd", quiet=True)
    z2 = oci.commit(tree, tmp_path / "B", "img:z", compression="zstd", quiet=True)
    assert z1.digest == z2.digest and z1.diff_id == a.diff_id  # same tar, other compression
    assert oci.verify(tmp_path / "A") == []


def test_layer_tar_is_normalised(tmp_path):
    import tarfile

    tree = rich_tree(tmp_path / "rootfs")
    res = oci.commit(tree, tmp_path / "L", "img", quiet=True)
    blob = tmp_path / "L" / "blobs" / "sha256" / res.layer_digest[7:]
    with tarfile.open(blob, "r:gz") as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    names = list(members)
    assert names[:3] == ["bin", "bin/alias", "bin/grp"]
    assert all(m.uname == "" and m.gname == "" and isinstance(m.mtime, int) for m in members.values())
    assert all(m.mtime <= EPOCH for m in members.values()) and members["old"].mtime == 1000
    assert (
        members["bin/tool-link"].type == tarfile.LNKTYPE and members["bin/tool-link"].linkname == "bin/tool"
    )
    assert members["bin/tool"].mode == 0o4755 and members["bin/grp"].mode == 0o2711
    assert members["tmp"].mode == 0o1777 and members["fifo"].isfifo()
    assert members["dangling"].issym() and members["dangling"].linkname == "/nowhere/at/all"
    assert (
        members["etc/conf"].pax_headers["SCHILY.xattr.user.note"].encode("utf-8", "surrogateescape")
        == b"hello \x00\xff binary"
    )
    if os.getuid() == 0:
        assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)
        assert (members["etc/conf"].uid, members["etc/conf"].gid) == (123, 456)
        cap = (
            members["bin/grp"]
            .pax_headers["SCHILY.xattr.security.capability"]
            .encode("utf-8", "surrogateescape")
        )
        assert int.from_bytes(cap[:4], "little") >> 24 == 2 and len(cap) == 20


def test_unpack_reproduces_the_tree_but_no_device_node(tmp_path, capfd):
    tree = rich_tree(tmp_path / "rootfs")
    oci.commit(tree, tmp_path / "L", "img", quiet=True)
    oci.unpack(tmp_path / "L", "img", tmp_path / "out")
    expected = snapshot(tree)
    if "null" in expected:  # only root could make it; a layer may never make one on unpack
        assert "not creating device node /null" in capfd.readouterr().err
    assert snapshot(tmp_path / "out") == without_devices(expected)


def test_socket_is_skipped_with_a_notice(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "f").write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "chrootforge",
                "commit",
                str(root),
                "--layout",
                str(tmp_path / "L"),
                "--tag",
                "s",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
    finally:
        sock.close()
    assert out.returncode == 0, out.stderr
    assert "skipping sock" in out.stderr
    oci.unpack(tmp_path / "L", "s", tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == ["f"]


def child_of(parent: Path, child: Path) -> Path:
    copy_tree(parent, child)
    (child / "etc" / "conf").write_text("a=2\n")  # changed content, same size
    os.unlink(child / "bin" / "alias")  # deleted
    shutil.rmtree(child / "odd names")  # deleted dir
    os.unlink(child / "fifo")
    (child / "fifo").mkdir()  # fifo -> dir
    (child / "fifo" / "inside").write_text("i")
    shutil.rmtree(child / "empty")
    (child / "empty").write_text("now a file")  # dir -> file
    for name in os.listdir(child / "etc"):
        os.unlink(child / "etc" / name)
    (child / "etc" / "fresh").write_text("fresh")  # etc replaced wholesale -> opaque
    (child / "new").write_text("new")
    return child


def test_child_layer_holds_only_the_difference(tmp_path):
    import tarfile

    parent = rich_tree(tmp_path / "parent")
    child = child_of(parent, tmp_path / "child")
    layout = tmp_path / "L"
    base = oci.commit(parent, layout, "base", quiet=True)
    res = oci.commit(
        child, layout, "child", parent="base", quiet=True, config={"Env": ["X=1"]}, labels={"k": "v"}
    )
    base_m, child_m = manifest_of(layout, "base"), manifest_of(layout, "child")
    assert child_m["layers"][:-1] == base_m["layers"] and res.layers == 2
    with tarfile.open(layout / "blobs" / "sha256" / res.layer_digest[7:], "r:gz") as tar:
        names = [m.name.rstrip("/") for m in tar.getmembers()]
    assert names == [
        ".wh.empty",
        ".wh.fifo",
        ".wh.odd names",
        "bin/.wh.alias",
        "empty",
        "etc/.wh..wh..opq",
        "etc/fresh",
        "fifo",
        "fifo/inside",
        "new",
    ]
    assert "bin/tool" not in names  # unchanged files are not repeated
    oci.unpack(layout, "child", tmp_path / "out")
    assert snapshot(tmp_path / "out") == without_devices(snapshot(child))
    assert oci.verify(layout) == []
    cfg = oci.resolve(layout, "child").config
    assert cfg["config"]["Env"] == ["X=1"] and cfg["config"]["Labels"] == {"k": "v"}
    assert len(cfg["history"]) == 2 and base.digest != res.digest
    # an unchanged child gives an empty layer: the parent's blobs plus one empty tar
    same = oci.commit(parent, layout, "same", parent="base", quiet=True)
    assert same.entries == 0


def test_child_without_source_date_epoch_takes_the_parents_time_not_its_name(tmp_path, monkeypatch):
    """Unset SOURCE_DATE_EPOCH used to mean 1970 for the child: every mtime clamped to 0, so an
    unchanged tree repeated the whole parent in its layer. The parent's `created` is the default,
    and the labels that name the parent (ref.name, title, build key...) are not inherited."""
    import tarfile

    parent_tree = rich_tree(tmp_path / "parent")
    layout = tmp_path / "L"
    identity_labels = {
        "org.opencontainers.image.ref.name": "localhost/ns/base:1",
        "org.opencontainers.image.title": "base",
        "org.opencontainers.image.version": "1",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.chrootforge.build.engine-key": "f" * 64,
    }
    oci.commit(parent_tree, layout, "base", quiet=True, labels={**identity_labels, "keep": "me"})
    unpacked = tmp_path / "unpacked"
    oci.unpack(layout, "base", unpacked)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    out = cf("commit", str(unpacked), "--layout", str(layout), "--tag", "child", "--parent", "base")
    assert out.returncode == 0, out.stderr
    child = oci.resolve(layout, "child")
    assert child.config["created"] == oci.resolve(layout, "base").config["created"]
    with tarfile.open(layout / "blobs" / "sha256" / child.manifest["layers"][-1]["digest"][7:]) as tar:
        assert tar.getnames() == []  # nothing changed: nothing of the parent is repeated
    assert child.config["config"]["Labels"] == {"keep": "me"}
    # SOURCE_DATE_EPOCH, when set, still wins
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH + 100))
    later = oci.commit(unpacked, layout, "later", parent="base", quiet=True)
    assert oci.resolve(layout, "later").config["created"] == "2023-11-14T22:15:00Z"
    assert later.entries == 0


def test_umoci_applies_the_child_like_we_do(tmp_path):
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed")
    parent = rich_tree(tmp_path / "parent")
    child = child_of(parent, tmp_path / "child")
    oci.commit(parent, tmp_path / "L", "base", quiet=True)
    oci.commit(child, tmp_path / "L", "child", parent="base", quiet=True)
    args = [] if os.getuid() == 0 else ["--rootless"]
    out = subprocess.run(
        ["umoci", "unpack", *args, "--image", f"{tmp_path / 'L'}:child", str(tmp_path / "bundle")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    got = snapshot(tmp_path / "bundle" / "rootfs", owners=os.getuid() == 0)
    assert umoci_comparable(got) == umoci_comparable(snapshot(child, owners=os.getuid() == 0))


def test_retag_replaces_and_extra_tags(tmp_path):
    tree = rich_tree(tmp_path / "rootfs")
    layout = tmp_path / "L"
    first = oci.commit(tree, layout, "img:1", quiet=True)
    (tree / "new").write_text("x")
    second = oci.commit(tree, layout, "img:1", quiet=True)
    oci.tag(layout, "img:1", "img:latest")
    index = json.loads((layout / "index.json").read_text())
    tags = {d["annotations"]["org.opencontainers.image.ref.name"]: d for d in index["manifests"]}
    assert set(tags) == {"img:1", "img:latest"} and first.digest != second.digest
    assert tags["img:1"]["digest"] == tags["img:latest"]["digest"] == second.digest
    assert tags["img:latest"]["annotations"]["io.containerd.image.name"] == "localhost/img:latest"


def _commit_argv(tree: Path, layout: Path, tag: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "chrootforge",
        "commit",
        str(tree),
        "--layout",
        str(layout),
        "--tag",
        tag,
        "--quiet",
        *extra,
    ]


def test_concurrent_commits_all_land(tmp_path):
    tree = rich_tree(tmp_path / "rootfs")
    layout = tmp_path / "L"
    procs = [
        subprocess.Popen(
            _commit_argv(tree, layout, f"img:{i}", "--label", f"n={i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    index = json.loads((layout / "index.json").read_text())
    assert sorted(
        d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]
    ) == sorted(f"img:{i}" for i in range(8))
    assert oci.verify(layout) == []


def test_sigkill_at_random_points_leaves_earlier_tags_valid(tmp_path):
    tree = tmp_path / "rootfs"
    tree.mkdir()
    for i in range(12):  # 12 MiB: the kill points below follow how long a commit takes here
        (tree / f"f{i}").write_bytes(os.urandom(1 << 20))
    layout = tmp_path / "L"
    good = oci.commit(tree, layout, "good", quiet=True)
    # Kill points are spread over how long a whole commit takes on this machine right now (a
    # fixed window was flaky: a fast machine finished before it).
    durations = {}
    for compression in ("gzip", "zstd"):
        start = time.monotonic()
        subprocess.run(
            _commit_argv(tree, layout, f"timed-{compression}", "--compression", compression),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        durations[compression] = time.monotonic() - start
    rng = random.Random(1234)
    killed = 0
    for round_no in range(20):
        compression = rng.choice(["gzip", "zstd"])
        proc = subprocess.Popen(
            _commit_argv(tree, layout, f"victim{round_no}", "--compression", compression),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 0.9) * durations[compression])
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        assert oci.verify(layout) == [], f"round {round_no}"
        assert oci.resolve(layout, "good").descriptor["digest"] == good.digest
    assert killed >= 10  # most rounds were really interrupted mid-way
    # the next commit cleans the dead commits' temp files
    oci.commit(tree, layout, "after", quiet=True)
    assert list((layout / ".tmp").iterdir()) == []


def cf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args], check=False, capture_output=True, text=True
    )


def _layer_path(layout: Path, tag: str, n: int = 0) -> Path:
    return layout / "blobs" / "sha256" / manifest_of(layout, tag)["layers"][n]["digest"][7:]


@pytest.fixture
def good_layout(tmp_path):
    tree = rich_tree(tmp_path / "rootfs")
    oci.commit(tree, tmp_path / "L", "img:1", quiet=True)
    return tmp_path / "L"


def test_short_tag_names_resolve_in_the_cli(good_layout):
    from chrootforge.oci.writer import tag as add_tag

    add_tag(good_layout, "img:1", "localhost/ns/web:latest")
    add_tag(good_layout, "img:1", "localhost/other/web:latest")
    out = cf("inspect", f"{good_layout}:img:1", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["images"][0]["tag"] == "img:1"
    out = cf("inspect", f"{good_layout}:ns/web", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["images"][0]["tag"] == "localhost/ns/web:latest"
    out = cf("inspect", f"{good_layout}:web")
    assert out.returncode == 2 and "ambiguous" in out.stderr and "localhost/other/web:latest" in out.stderr
    out = cf("inspect", f"{good_layout}:nope")
    assert out.returncode == 1 and "tags in the layout" in out.stderr


def test_verify_ok_then_corrupted_blob(good_layout):
    assert cf("verify", str(good_layout)).returncode == 0
    layer = _layer_path(good_layout, "img:1")
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    out = cf("verify", str(good_layout))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    digest = "sha256:" + layer.name
    assert f"tag img:1 layer 0: blob {digest} digest: expected {digest}, got sha256:" in out.stderr


def test_verify_truncated_blob(good_layout):
    layer = _layer_path(good_layout, "img:1")
    size = layer.stat().st_size
    with open(layer, "r+b") as handle:
        handle.truncate(size - 100)
    out = cf("verify", str(good_layout))
    assert out.returncode == 1
    assert f"blob sha256:{layer.name} size: expected {size}, got {size - 100}" in out.stderr


def test_verify_wrong_diff_id(good_layout):
    from chrootforge.oci import layout as lo

    manifest = manifest_of(good_layout, "img:1")
    cfg = json.loads((good_layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    real = cfg["rootfs"]["diff_ids"][0]
    cfg["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64
    digest, size = lo.write_blob(good_layout, lo.canonical_json(cfg))
    manifest["config"].update(digest=digest, size=size)
    mdigest, msize = lo.write_blob(good_layout, lo.canonical_json(manifest))
    from chrootforge.oci.writer import set_tag

    set_tag(good_layout, "img:1", mdigest, msize)
    out = cf("verify", str(good_layout))
    assert out.returncode == 1
    assert f"diff_id: expected sha256:{'0' * 64}, got {real}" in out.stderr


def test_verify_dangling_reference(good_layout):
    config = manifest_of(good_layout, "img:1")["config"]["digest"]
    (good_layout / "blobs" / "sha256" / config[7:]).unlink()
    out = cf("verify", str(good_layout))
    assert out.returncode == 1
    assert f"tag img:1 config: blob {config} is missing (dangling reference)" in out.stderr


def test_bad_input_is_one_clear_line(tmp_path):
    tree = rich_tree(tmp_path / "rootfs")
    cases = [
        (
            ("commit", str(tmp_path / "missing"), "--layout", str(tmp_path / "L1"), "--tag", "x"),
            2,
            "does not exist",
        ),
        (("commit", str(tree), "--layout", str(tmp_path / "L2"), "--tag", "Bad Tag!"), 2, "invalid tag"),
        (("verify", str(tree)), 2, "is not an OCI layout"),
        (("inspect", str(tree)), 2, "is not an OCI layout"),
        (("commit", str(tree), "--layout", str(tree), "--tag", "x"), 2, "the image would hold itself"),
        (("commit", str(tree), "--layout", "/proc/cf-nope/L", "--tag", "x"), 1, "cannot create"),
        (
            ("commit", str(tree), "--layout", str(tmp_path / "L3"), "--tag", "x", "--parent", "nope"),
            2,
            "L3 does not exist",
        ),
    ]
    for argv, code, message in cases:
        out = cf(*argv)
        assert out.returncode == code, (argv, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr, (argv, out.stderr)
    for name in ("L1", "L2", "L3"):
        assert not (tmp_path / name).exists()  # nothing half-written


def test_unwritable_layout_leaves_nothing(identity):
    base = identity.mkdtemp("unwritable.")
    tree = rich_tree(base / "rootfs") if identity.is_root else None
    if tree is None:
        tree = base / "rootfs"
        tree.mkdir()
        (tree / "f").write_text("x")
        chown_tree(tree, identity.uid, identity.gid)
    locked = base / "locked"
    locked.mkdir(mode=0o555)
    os.chown(locked, identity.uid, identity.gid) if os.getuid() == 0 else None
    # root may write anywhere, so for root the destination sits below a regular file
    blocked = locked if not identity.is_root else base / "a-file"
    (base / "a-file").write_text("x")
    out = identity.cf("commit", str(tree), "--layout", str(blocked / "L"), "--tag", "x")
    assert out.returncode == 1 and "cannot create" in out.stderr and "Traceback" not in out.stderr
    assert not (locked / "L").exists()
    shutil.rmtree(base, ignore_errors=True)


def test_commit_and_verify_as_each_identity(identity):
    base = identity.mkdtemp("commit.")
    tree = base / "rootfs"
    tree.mkdir()
    (tree / "bin").mkdir()
    (tree / "bin" / "prog").write_bytes(b"\x7fELF" + os.urandom(5000))
    (tree / "bin" / "prog").chmod(0o755)
    (tree / "link").symlink_to("bin/prog")
    chown_tree(tree, identity.uid, identity.gid)
    for comp in ("gzip", "zstd"):
        out = identity.cf(
            "commit",
            str(tree),
            "--layout",
            str(base / "L"),
            "--tag",
            f"me:{comp}",
            "--compression",
            comp,
            "--label",
            "who=me",
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().startswith("sha256:")
    out = identity.cf("verify", str(base / "L"))
    assert out.returncode == 0, out.stderr
    out = identity.cf("inspect", f"{base / 'L'}:me:gzip", "--json")
    info = json.loads(out.stdout)["images"][0]
    assert info["config"]["Labels"] == {"who": "me"} and len(info["layers"]) == 1
    import tarfile

    with tarfile.open(_layer_path(base / "L", "me:gzip"), "r:gz") as tar:
        owners = {(m.uid, m.gid) for m in tar.getmembers()}
    assert owners == {(identity.uid, identity.gid)}  # the ids it stats are the image's
    shutil.rmtree(base, ignore_errors=True)


MAPPED_SCRIPT = r"""
import os, subprocess, sys
from chrootforge.sandbox import run_mapped
base, py = sys.argv[1], sys.executable
script = f'''
set -e
mkdir -p {base}/rootfs/bin
cp /bin/busybox {base}/rootfs/bin/busybox
echo data > {base}/rootfs/owned
chown 1000:2000 {base}/rootfs/owned
setcap cap_net_raw+ep {base}/rootfs/bin/busybox
{py} -m chrootforge commit {base}/rootfs --layout {base}/L --tag mapped --quiet
{py} -c "from chrootforge import oci; oci.unpack('{base}/L', 'mapped', '{base}/out')"
stat -c %u:%g {base}/out/owned > {base}/owner.txt
getcap {base}/out/bin/busybox > {base}/cap.txt
'''
sys.exit(run_mapped(["sh", "-c", script]))
"""


def test_commit_and_unpack_inside_the_mapped_user_namespace(identity):
    """The pipeline runs commit/unpack under run_mapped: ids are the image's, caps are stored as v2."""
    import tarfile

    if not shutil.which("setcap"):
        pytest.skip("setcap (libcap2-bin) is not installed")
    base = identity.mkdtemp("mapped.")
    if identity.is_root:  # where the namespace's root (root's unprivileged range) writes
        from chrootforge.sandbox import owned_dir

        owned_dir(base)
    out = identity.run(
        [*identity.python, "-c", MAPPED_SCRIPT, str(base)], env={"SOURCE_DATE_EPOCH": str(EPOCH)}
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (base / "owner.txt").read_text().strip() == "1000:2000"
    assert "cap_net_raw=ep" in (base / "cap.txt").read_text()
    with tarfile.open(_layer_path(base / "L", "mapped"), "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert (members["owned"].uid, members["owned"].gid) == (1000, 2000)
    assert (members["bin/busybox"].uid, members["bin/busybox"].gid) == (0, 0)
    cap = (
        members["bin/busybox"]
        .pax_headers["SCHILY.xattr.security.capability"]
        .encode("utf-8", "surrogateescape")
    )
    assert len(cap) == 20 and int.from_bytes(cap[:4], "little") >> 24 == 2  # v2, no namespace root id
    shutil.rmtree(base, ignore_errors=True)
