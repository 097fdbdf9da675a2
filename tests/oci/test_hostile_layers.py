"""A corpus of hostile layers, in the spirit of the stage tar-checker tests: each one tries to read
or write outside the root it is unpacked into. Every reader of layers is attacked with each:
unpack (the build's parent root), commit --parent (the parent index) and verify.

The "host" is a victim directory beside the unpack destination, holding a secret; the layers point
at it with absolute and relative symlinks, `..` names and hardlinks. After every attempt the victim
must be exactly as it was.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.errors import CfError
from chrootforge.oci import layout as lo
from tests.helpers.oci import store_image

SECRET = b"host secret\n"


def member(
    name: str,
    kind=tarfile.REGTYPE,
    data: bytes = b"",
    link: str = "",
    mode: int = 0o644,
    dev: tuple[int, int] = (0, 0),
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 1700000000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    info.devmajor, info.devminor = dev
    return info, data


def d(name):
    return member(name, tarfile.DIRTYPE, mode=0o755)


def sym(name, target):
    return member(name, tarfile.SYMTYPE, link=target)


def hard(name, target):
    return member(name, tarfile.LNKTYPE, link=target)


def f(name, data=b"x"):
    return member(name, data=data)


def victim_state(victim: Path) -> dict:
    return {
        str(p.relative_to(victim)): (p.is_symlink(), p.read_bytes() if p.is_file() else None)
        for p in sorted(victim.rglob("*"))
    }


@pytest.fixture
def arena(tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "secret").write_bytes(SECRET)
    (victim / "sub" / "file").write_bytes(SECRET)
    return tmp_path, victim


def corpus(victim: Path) -> dict[str, list[list]]:
    """name -> layers. Every one of them must be refused (or, for devices, skipped)."""
    rel = "../" * 12 + str(victim).lstrip("/")
    return {
        "whiteout through an absolute symlink": [[sym("a", str(victim))], [d("a/sub"), f("a/sub/.wh.file")]],
        "whiteout of a file through a symlinked parent": [[sym("a", str(victim))], [f("a/.wh.secret")]],
        "opaque marker through an absolute symlink": [[sym("a", str(victim))], [f("a/sub/.wh..wh..opq")]],
        "opaque marker through a relative symlink": [[sym("a", rel)], [f("a/.wh..wh..opq")]],
        "opaque marker in a symlink itself": [[d("x"), sym("x/a", str(victim))], [f("x/a/.wh..wh..opq")]],
        "file through a symlinked parent": [[sym("a", str(victim)), f("a/planted", b"pwned")]],
        "dotdot name": [[f("../planted", b"pwned")]],
        "dotdot in the middle": [[d("x"), f("x/../../planted", b"pwned")]],
        "absolute name": [[f(str(victim / "planted"), b"pwned")]],
        "hardlink out of the root (dotdot)": [[hard("stolen", rel + "/secret")]],
        "hardlink to an absolute path": [[hard("stolen", str(victim / "secret"))]],
        "hardlink through a symlink": [[sym("a", str(victim)), hard("stolen", "a/secret")]],
        "hardlink to a missing target": [[hard("stolen", "nowhere")]],
        "symlink chain": [[sym("a", "b"), sym("b", str(victim)), f("a/planted", b"pwned")]],
        "directory replaced by a symlink": [
            [d("dir")],
            [sym("dir", str(victim))],
            [f("dir/planted", b"pwned")],
        ],
        # a whiteout must name an entry: `.wh.` alone, `.wh..` and `.wh...` name its directory or
        # climb out of it
        "whiteout of dotdot": [[f(".wh...")]],
        "whiteout of dotdot below a directory": [[d("a")], [f("a/.wh...")]],
        "whiteout of dotdot below a missing directory": [[f("nowhere/.wh...")]],
        "whiteout of dot": [[d("a"), f("a/keep")], [f("a/.wh..")]],
        "whiteout with an empty name": [[d("a"), f("a/keep")], [f("a/.wh.")]],
        "whiteout with an empty name in the root": [[f("keep")], [f(".wh.")]],
        "file replaced by a symlink then written below": [
            [f("node")],
            [sym("node", rel)],
            [f("node/planted")],
        ],
    }


@pytest.mark.parametrize("case", sorted(corpus(Path("/x"))))
def test_hostile_layer_is_refused_everywhere(arena, case):
    tmp_path, victim = arena
    before = victim_state(victim)
    layout = tmp_path / "L"
    store_image(layout, "evil", corpus(victim)[case])
    with pytest.raises(CfError) as refused:
        oci.unpack(layout, "evil", tmp_path / "dest")
    assert "refusing" in str(refused.value)
    assert victim_state(victim) == before
    assert not (tmp_path / "planted").exists()
    # commit --parent reads the parent's layers through the same rules
    (tmp_path / "child").mkdir()
    with pytest.raises(CfError, match="refusing"):
        oci.commit(tmp_path / "child", layout, "child", parent="evil", quiet=True)
    problems = oci.verify(layout)
    assert any("refusing" in p for p in problems), problems
    assert victim_state(victim) == before


def test_device_nodes_are_never_created(arena, capfd):
    tmp_path, _victim = arena
    layout = tmp_path / "L"
    store_image(
        layout,
        "devs",
        [
            [
                d("dev"),
                member("dev/sda", tarfile.BLKTYPE, dev=(8, 0)),
                member("dev/mem", tarfile.CHRTYPE, dev=(1, 1)),
                f("ok"),
            ]
        ],
    )
    oci.unpack(layout, "devs", tmp_path / "dest")
    assert sorted(os.listdir(tmp_path / "dest" / "dev")) == []
    assert (tmp_path / "dest" / "ok").read_bytes() == b"x"
    assert "not creating device node" in capfd.readouterr().err


def test_benign_symlinks_are_only_data(arena):
    """A symlink may point anywhere (it is data); replacing it or whiting it out never follows it."""
    tmp_path, victim = arena
    before = victim_state(victim)
    layout = tmp_path / "L"
    store_image(
        layout,
        "links",
        [
            [sym("s", str(victim / "secret")), sym("t", str(victim)), d("keep")],
            [f("s", b"replaced"), f(".wh.t")],
        ],
    )
    oci.unpack(layout, "links", tmp_path / "dest")
    assert (tmp_path / "dest" / "s").read_bytes() == b"replaced" and not (
        tmp_path / "dest" / "s"
    ).is_symlink()
    assert not os.path.lexists(tmp_path / "dest" / "t")
    assert victim_state(victim) == before
    assert oci.verify(layout) == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_corrupt_layer_blob_is_refused_by_every_reader(arena, damage):
    tmp_path, _victim = arena
    layout = tmp_path / "L"
    store_image(layout, "img", [[f("a", os.urandom(4096)), f("b", b"y" * 10000)]])
    manifest = json.loads(
        (layout / "blobs" / "sha256" / lo.tagged(lo.read_index(layout))["img"]["digest"][7:]).read_bytes()
    )
    blob = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(blob.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[-20:]
    else:
        data += b"trailing"
    blob.write_bytes(bytes(data))
    short = manifest["layers"][0]["digest"]
    for attempt in (
        lambda: oci.unpack(layout, "img", tmp_path / "dest"),
        lambda: oci.commit(_empty(tmp_path), layout, "c", parent="img", quiet=True),
        lambda: oci.export(layout, "img", "oci-archive", tmp_path / "out.tar"),
    ):
        with pytest.raises(CfError) as err:
            attempt()
        assert short[:19] in str(err.value) or short in str(err.value)
    assert not (tmp_path / "out.tar").exists()  # export never leaves an archive with a bad blob
    assert any(short in p for p in oci.verify(layout))


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty-child"
    path.mkdir(exist_ok=True)
    return path
