"""Property: mutate a valid layout (drop keys, change types, replace index entries, truncate, flip
or delete blobs, rewrite documents in the wrong shape) and run every reader through the real CLI.

None may end in a traceback or an "internal error"; none may exit 0 on a corrupt blob.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chrootforge import cli, log, oci
from chrootforge.oci import layout as lo

JSON_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    base = tmp_path_factory.mktemp("mutations")
    tree = base / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "conf").write_text("a=1\n")
    (tree / "bin").mkdir()
    (tree / "bin" / "tool").write_bytes(os.urandom(3000))
    layout = base / "L"
    oci.commit(tree, layout, "base", quiet=True)
    (tree / "etc" / "conf").write_text("a=2\n")
    (tree / "new").write_text("new\n")
    oci.commit(tree, layout, "child", parent="base", quiet=True)
    oci.attach_referrer(layout, "child", b'{"spdxVersion": "SPDX-2.3"}', "application/spdx+json")
    return layout


def _blobs(layout: Path) -> list[Path]:
    return sorted((layout / "blobs" / "sha256").iterdir())


def _rewrite_blob(layout: Path, old_digest: str, doc) -> None:
    """Store `doc` as a new, well-hashed blob and point every reference to old_digest at it (so
    the shape is wrong but the digests are right)."""
    data = json.dumps(doc).encode()
    digest, size = lo.write_blob(layout, data)
    for path in [layout / "index.json", *_blobs(layout)]:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if old_digest in text:
            obj = json.loads(text)
            _repoint(obj, old_digest, digest, size)
            new = json.dumps(obj).encode()
            if path.name == "index.json":
                path.write_bytes(new)
            else:  # a referencing manifest: store it anew too, recursively
                _rewrite_blob(layout, "sha256:" + path.name, obj)


def _repoint(obj, old: str, new: str, size: int) -> None:
    if isinstance(obj, dict):
        if obj.get("digest") == old:
            obj["digest"], obj["size"] = new, size
        for value in obj.values():
            _repoint(value, old, new, size)
    elif isinstance(obj, list):
        for value in obj:
            _repoint(value, old, new, size)


def _mutate_doc(doc, data):
    """Drop a key, change a value's type, or replace the whole document, somewhere inside."""
    if not isinstance(doc, (dict, list)) or not doc or data.draw(st.integers(0, 4)) == 0:
        return data.draw(JSON_JUNK)
    key = data.draw(st.sampled_from(sorted(doc) if isinstance(doc, dict) else list(range(len(doc)))))
    action = data.draw(st.sampled_from(["drop", "junk", "descend"]))
    if action == "drop":
        del doc[key]
    elif action == "junk":
        doc[key] = data.draw(JSON_JUNK)
    else:
        doc[key] = _mutate_doc(doc[key], data)
    return doc


def _run(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(args)
    finally:
        log.set_quiet(False)  # `--quiet` is process-wide state: leave none behind for other tests
    out = capsys.readouterr()
    return code, out.out + out.err


@settings(
    max_examples=int(os.environ.get("CF_MUTATIONS", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_layouts_never_traceback(template, tmp_path, capsys, data):
    work = tmp_path / f"m{os.urandom(4).hex()}"
    layout = work / "L"
    shutil.copytree(template, layout)
    corrupt_blob = False
    kind = data.draw(
        st.sampled_from(
            [
                "index-doc",
                "index-entry",
                "index-bytes",
                "blob-shape",
                "blob-flip",
                "blob-truncate",
                "blob-delete",
            ]
        )
    )
    index_path = layout / "index.json"
    if kind == "index-doc":
        index_path.write_text(json.dumps(_mutate_doc(json.loads(index_path.read_text()), data)))
    elif kind == "index-entry":
        index = json.loads(index_path.read_text())
        i = data.draw(st.integers(0, len(index["manifests"]) - 1))
        index["manifests"][i] = (
            data.draw(JSON_JUNK) if data.draw(st.booleans()) else _mutate_doc(index["manifests"][i], data)
        )
        index_path.write_text(json.dumps(index))
    elif kind == "index-bytes":
        raw = index_path.read_bytes()
        index_path.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    else:
        blob = data.draw(st.sampled_from(_blobs(layout)))
        if kind == "blob-shape":
            try:
                doc = json.loads(blob.read_bytes())
            except ValueError:
                doc = None
            if not isinstance(doc, dict):
                return  # a layer: nothing to reshape
            _rewrite_blob(layout, "sha256:" + blob.name, _mutate_doc(doc, data))
        else:
            corrupt_blob = True
            raw = bytearray(blob.read_bytes())
            if kind == "blob-flip":
                raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
                blob.write_bytes(bytes(raw))
            elif kind == "blob-truncate":
                blob.write_bytes(bytes(raw[: data.draw(st.integers(0, len(raw) - 1))]))
            else:
                blob.unlink()
    child = work / "child-tree"
    child.mkdir()
    runs = {
        "verify": ["verify", str(layout)],
        "inspect": ["inspect", "--json", str(layout)],
        "export": ["export", f"{layout}:child", "-o", str(work / "out.tar")],
        "commit": [
            "commit",
            str(child),
            "--layout",
            str(layout),
            "--tag",
            "next",
            "--parent",
            "child",
            "--quiet",
        ],
        "sbom": ["sbom", f"{layout}:child"],
    }
    for name, args in runs.items():
        code, output = _run(args, capsys)
        assert "Traceback" not in output and "internal error" not in output, (kind, name, output)
        assert code in (0, 1, 2), (kind, name, code, output)
    if corrupt_blob:
        assert _run(runs["verify"], capsys)[0] != 0, kind
    if corrupt_blob and (work / "out.tar").exists():
        # an archive was written: then every blob it needed was intact, so the damage hit another
        # image's blob (the base's own config, say): verify of that archive's image must be clean
        extracted = work / "x"
        import tarfile

        with tarfile.open(work / "out.tar") as tar:
            tar.extractall(extracted)  # our own archive (Python 3.11.2 has no filter=)
        assert oci.verify(extracted) == []
