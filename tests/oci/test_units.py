"""Pure parts of the writer: tags, capabilities, config, compression framing, the child-layer plan."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import zlib

import pytest

from chrootforge.errors import UsageError
from chrootforge.oci import compress, diff, imageconfig, refs, tree
from chrootforge.oci.parentindex import Node, ParentTree
from chrootforge.oci.tarwrite import WHITEOUT


@pytest.mark.parametrize(
    "tag,full",
    [
        ("busybox", "localhost/busybox:latest"),
        ("busybox:1.36", "localhost/busybox:1.36"),
        ("ns/img:v1", "localhost/ns/img:v1"),
        ("localhost/ns/img:v1", "localhost/ns/img:v1"),
        ("registry.example:5000/a/b:c", "registry.example:5000/a/b:c"),
        ("quay.io/x/y", "quay.io/x/y:latest"),
    ],
)
def test_full_name(tag, full):
    assert refs.check_tag(tag) == tag
    assert refs.full_name(tag) == full


@pytest.mark.parametrize(
    "bad", ["", "Upper", "a b", "a:", "a:b c", "a//b", "-a", "a:" + "x" * 129, "a/b:c:d"]
)
def test_bad_tags_are_usage_errors(bad):
    with pytest.raises(UsageError, match="invalid tag"):
        refs.check_tag(bad)


def test_split_layout_ref():
    assert refs.split_layout_ref("out/layout:img:1") == ("out/layout", "img:1")
    assert refs.split_layout_ref("out/layout") == ("out/layout", None)


def test_capability_v3_becomes_v2():
    body = (0x1).to_bytes(4, "little") + bytes(range(16))  # effective flag + 2 x (perm, inh)
    v3 = (tree.VFS_CAP_REVISION_3 | 1).to_bytes(4, "little") + body[4:20] + (100000).to_bytes(4, "little")
    v2 = tree.normalise_capability(v3)
    assert len(v2) == 20
    assert int.from_bytes(v2[:4], "little") == tree.VFS_CAP_REVISION_2 | 1
    assert v2[4:] == body[4:20]
    assert tree.normalise_capability(v2) == v2


def test_config_normalise_and_merge():
    cfg = imageconfig.normalise(
        {"Env": {"A": "1"}, "Cmd": ["echo", "hi"], "ExposedPorts": ["80/tcp"], "Labels": {"x": "y"}}
    )
    assert cfg == {
        "Env": ["A=1"],
        "Cmd": ["echo", "hi"],
        "ExposedPorts": {"80/tcp": {}},
        "Labels": {"x": "y"},
    }
    merged = imageconfig.merge({"Env": ["A=0", "B=2"], "User": "u"}, {"Env": ["A=1"]}, {"l": "v"})
    assert merged == {"Env": ["A=1", "B=2"], "User": "u", "Labels": {"l": "v"}}
    with pytest.raises(UsageError, match="unknown image config field"):
        imageconfig.normalise({"Bogus": 1})
    with pytest.raises(UsageError):
        imageconfig.normalise({"Entrypoint": [1]})


def test_history_marks_all_but_last_empty():
    hist = imageconfig.new_history([{"created_by": "a"}, {"created_by": "b"}], 5)
    assert hist[0]["empty_layer"] is True and "empty_layer" not in hist[1]
    assert hist[1]["created"] == "1970-01-01T00:00:05Z"


def _payload(size: int) -> bytes:
    # compressible but not trivial: text-like with some randomness
    words = [os.urandom(3).hex() for _ in range(500)]
    out = bytearray()
    i = 0
    while len(out) < size:
        out += words[(i * 7919) % 500].encode() + b" "
        i += 1
    return bytes(out[:size])


def _run(kind: str, data: bytes, threads: int | None, step: int = 65536) -> bytes:
    out = []
    comp = (
        compress.ParallelGzip(out.append, threads=threads)
        if kind == "gzip"
        else compress.Zstd(out.append, threads=threads)
    )
    for i in range(0, len(data), step):
        comp.write(data[i : i + step])
    comp.close()
    return b"".join(out)


@pytest.mark.parametrize("size", [0, 1, compress.GZIP_BLOCK, 3 * compress.GZIP_BLOCK + 12345])
def test_parallel_gzip_is_one_valid_member(size, tmp_path):
    data = _payload(size)
    blob = _run("gzip", data, threads=2)
    assert blob[:10] == compress.GZIP_HEADER  # mtime 0, no name
    assert gzip.decompress(blob) == data
    d = zlib.decompressobj(31)
    assert d.decompress(blob) == data and d.eof and d.unused_data == b""  # a single member
    path = tmp_path / "x.gz"
    path.write_bytes(blob)
    assert subprocess.run(["gzip", "-t", str(path)], check=False).returncode == 0


def test_compression_bytes_do_not_depend_on_threads_or_write_sizes():
    data = _payload(2 * compress.GZIP_BLOCK + 999)
    for kind in ("gzip", "zstd"):
        outs = {
            hashlib.sha256(_run(kind, data, t, step)).hexdigest()
            for t, step in ((1, 4096), (2, 65536), (3, 1 << 20))
        }
        assert len(outs) == 1, kind


def test_decompressor_reads_multi_member_gzip_and_zstd():
    import io

    a, b = _payload(5000), _payload(7000)
    stream = compress.Decompressor(io.BytesIO(gzip.compress(a) + gzip.compress(b)), "gzip")
    assert stream.read() == a + b
    stream = compress.Decompressor(io.BytesIO(_run("zstd", a, 1)), "zstd")
    assert stream.read(10) == a[:10] and stream.read() == a[10:]


def _e(path, kind=tree.FILE, size=1, mode=0o644, inode=None, mtime=1):
    return tree.Entry(path, kind, mode, 0, 0, mtime, size if kind == tree.FILE else 0, inode=inode)


def _parent(entries, contents=None, groups=None):
    p = ParentTree()
    for e in entries:
        p._add(
            e.path,
            Node(
                e,
                (contents or {}).get(e.path, "h" + e.path) if e.kind == tree.FILE else None,
                (groups or {}).get(e.path),
            ),
        )
    return p


def _plan(child, parent, contents=None):
    items = diff.plan_child(child, parent, lambda rel: (contents or {}).get(rel, "h" + rel), 7)
    return [(i.path, i.kind) for i in items]


def test_plan_unchanged_tree_is_empty():
    entries = [_e("a", tree.DIR), _e("a/f"), _e("b")]
    assert _plan(entries, _parent(entries)) == []


def test_plan_changes_deletions_and_kind_changes():
    parent = _parent(
        [
            _e("a", tree.DIR),
            _e("a/f"),
            _e("a/g"),
            _e("b"),
            _e("c", tree.DIR),
            _e("c/x"),
            _e("d"),
            _e("gone", tree.DIR),
            _e("gone/deep"),
        ]
    )
    child = [_e("a", tree.DIR), _e("a/f"), _e("b", size=2), _e("c"), _e("d", tree.DIR), _e("d/n"), _e("new")]
    assert _plan(child, parent, {"a/f": "other"}) == [
        (".wh.c", WHITEOUT),
        (".wh.d", WHITEOUT),
        (".wh.gone", WHITEOUT),  # root markers first
        ("a/.wh.g", WHITEOUT),
        ("a/f", tree.FILE),  # content changed, sibling deleted
        ("b", tree.FILE),
        ("c", tree.FILE),
        ("d", tree.DIR),
        ("d/n", tree.FILE),
        ("new", tree.FILE),
    ]


def test_plan_dir_emptied_of_all_old_children_is_opaque():
    parent = _parent([_e("etc", tree.DIR), _e("etc/a"), _e("etc/b")])
    child = [_e("etc", tree.DIR), _e("etc/c")]
    assert _plan(child, parent) == [("etc/.wh..wh..opq", WHITEOUT), ("etc/c", tree.FILE)]


def test_plan_writes_whole_hardlink_group_when_one_member_changes():
    parent = _parent([_e("x", inode=None), _e("y"), _e("z")])
    child = [_e("x", inode=(1, 5)), _e("y", inode=(1, 5)), _e("z")]
    # grouping changed (x and y are now one inode): both written, z untouched
    assert _plan(child, parent) == [("x", tree.FILE), ("y", tree.FILE)]
    parent = _parent([_e("x"), _e("y"), _e("z")], groups={"x": "g", "y": "g"})
    assert _plan(child, parent) == []
    assert _plan(child, parent, {"y": "new"}) == [("x", tree.FILE), ("y", tree.FILE)]


def test_short_names_match_one_stored_tag():
    tags = [
        "localhost/chrootforge/hello:latest",
        "localhost/chrootforge/hello:1.0",
        "localhost/chrootforge/s6:latest",
        "other/s6:latest",
        "plain",
    ]
    assert refs.match_tag("localhost/chrootforge/hello:1.0", tags) == "localhost/chrootforge/hello:1.0"
    assert refs.match_tag("hello", tags) == "localhost/chrootforge/hello:latest"
    assert refs.match_tag("hello:1.0", tags) == "localhost/chrootforge/hello:1.0"
    assert refs.match_tag("chrootforge/hello", tags) == "localhost/chrootforge/hello:latest"
    assert refs.match_tag("plain:latest", tags) == "plain"
    assert refs.match_tag("ello", tags) is None  # whole path components only
    assert refs.match_tag("hello:2.0", tags) is None
    with pytest.raises(UsageError, match="ambiguous"):
        refs.match_tag("s6", tags)
