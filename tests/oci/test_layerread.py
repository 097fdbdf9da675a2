"""layerread.events(): the one classifier of a layer's members, which unpack and the parent index
(commit --parent, verify) both consume."""

from __future__ import annotations

import json
import tarfile

import pytest

from chrootforge import oci
from chrootforge.oci import layerread
from chrootforge.oci import layout as lo
from chrootforge.oci.parentindex import load
from chrootforge.rootpath import PathRefused
from tests.helpers.oci import store_image
from tests.oci.test_hostile_layers import d, f, sym


def _layers(layout, tag) -> list[dict]:
    digest = lo.tagged(lo.read_index(layout))[tag]["digest"]
    return json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())["layers"]


def _events(tmp_path, entries) -> list[tuple]:
    layout = tmp_path / "L"
    store_image(layout, "img", [entries])
    out = []
    for event in layerread.events(layout, _layers(layout, "img")[0]):
        if isinstance(event, layerread.Opaque):
            out.append(("opaque", event.dir, sorted(event.kept)))
        elif isinstance(event, layerread.Whiteout):
            out.append(("whiteout", event.path))
        else:
            assert isinstance(event.member, tarfile.TarInfo)
            out.append(("entry", event.path))
    return out


def test_members_are_classified_and_normalised(tmp_path):
    entries = [
        d("./"),  # the root itself: skipped
        d("./etc/"),
        f("./etc//passwd"),
        f("etc/.wh.shadow"),
        f("etc/.wh.passwd"),  # written by this layer above: not a whiteout of the layers below
        f("etc/.wh..wh..opq"),
        f(".wh..wh..opq"),
        f(".wh.top"),
        f(".wh..wh.plnk"),  # an aufs meta name: a whiteout of `.wh.plnk`, as before
        d(".wh.dir/"),
        f(".wh.dir/inside"),  # below a directory named `.wh.dir`: an ordinary entry
    ]
    assert _events(tmp_path, entries) == [
        ("entry", "etc"),
        ("entry", "etc/passwd"),
        ("whiteout", "etc/shadow"),
        ("opaque", "etc", ["passwd"]),
        ("opaque", "", ["etc"]),
        ("whiteout", "top"),
        ("whiteout", ".wh.plnk"),
        ("whiteout", "dir"),
        ("entry", ".wh.dir/inside"),
    ]


@pytest.mark.parametrize(
    "name, problem",
    [
        ("/etc/passwd", "absolute names"),
        ("../x", "climbs out"),
        ("a/../../x", "climbs out"),
        (".wh...", "names no entry"),
        ("a/.wh...", "names no entry"),
        ("a/.wh..", "names no entry"),
        ("a/.wh.", "names no entry"),
        (".wh.", "names no entry"),
        ("/.wh..wh..opq", "absolute names"),
        ("../.wh..wh..opq", "climbs out"),
        ("../.wh.x", "climbs out"),
    ],
)
def test_bad_names_are_refused_by_the_classifier(tmp_path, name, problem):
    with pytest.raises(PathRefused, match=problem):
        _events(tmp_path, [f("ok"), f(name)])


def test_unpack_and_parent_index_agree_on_markers(tmp_path):
    """Same-layer rules: a whiteout or an opaque marker never removes what its own layer wrote."""
    layout = tmp_path / "L"
    store_image(
        layout,
        "img",
        [
            [d("a"), f("a/old"), f("a/older"), d("b"), f("b/gone"), sym("s", "/nowhere"), f("top")],
            [
                d("a"),
                f("a/new"),
                f("a/.wh..wh..opq"),
                f("a/later"),
                f("b/.wh.gone"),
                f("s"),
                f(".wh.s"),
                f(".wh.top"),
            ],
        ],
    )
    dest = tmp_path / "dest"
    oci.unpack(layout, "img", dest)
    on_disk = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert on_disk == ["a", "a/later", "a/new", "b", "s"]
    assert sorted(load(layout, _layers(layout, "img")).nodes) == on_disk
