"""Disk trouble during a commit (ENOSPC on a small tmpfs at every stage, EACCES), gc under load,
and what `verify` says about leftovers. Run as root and as the unprivileged user (who mounts the
tmpfs in a user namespace of its own)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.oci import layout as lo
from tests.helpers.oci import rewrite_image

# Inside a private mount namespace with a 256 KiB tmpfs at BASE/fs: a good commit, then for each
# amount of free space left (0..3 pages) a commit that must fail cleanly, whatever stage it hits.
ENOSPC_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    from pathlib import Path
    from chrootforge import oci
    from chrootforge.oci import layout as lo
    base = Path(sys.argv[1]); fs = base / "fs"; layout = fs / "L"
    def cf(*args):
        return subprocess.run([sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True)
    good = cf("commit", str(base / "small"), "--layout", str(layout), "--tag", "good", "--quiet")
    report = {"good": good.returncode, "attempts": []}
    filler = fs / "filler"
    for pages in range(0, 8):
        filler.unlink(missing_ok=True)
        st = os.statvfs(fs)
        free = st.f_bavail * st.f_frsize
        with open(filler, "wb") as out:  # leave `pages` pages free
            try:
                out.write(b"\\0" * max(0, free - pages * 4096))
            except OSError:
                pass
        r = cf("commit", str(base / "medium"), "--layout", str(layout), "--tag", f"try{pages}", "--quiet")
        tags = sorted(lo.tagged(lo.read_index(layout)))
        report["attempts"].append({
            "pages": pages, "rc": r.returncode, "stderr": r.stderr, "tags": tags,
            "unreferenced": [str(p) for p, _ in lo.unreferenced_blobs(layout)],
            "temps": os.listdir(layout / ".tmp"), "verify": oci.verify(layout)})
    print(json.dumps(report))
""")


def _trees(base: Path) -> None:
    (base / "small").mkdir()
    (base / "small" / "f").write_text("small\n")
    (base / "medium").mkdir()
    for i in range(6):  # incompressible, so the layer blob alone needs a few pages
        (base / "medium" / f"r{i}").write_bytes(os.urandom(2000))


def test_enospc_at_every_stage_is_one_clean_line(identity):
    base = identity.mkdtemp("enospc.")
    (base / "fs").mkdir()
    _trees(base)
    if not identity.is_root:
        for p in [base, *base.rglob("*")]:
            os.chown(p, identity.uid, identity.gid)
    mount = f'mount -t tmpfs -o size=256k tmpfs {base}/fs && exec "$@"'
    ns = (
        ["unshare", "--mount", "--propagation", "private"]
        if identity.is_root
        else ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    )
    result = identity.run([*ns, "sh", "-c", mount, "sh", *identity.python, "-c", ENOSPC_SCRIPT, str(base)])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["good"] == 0
    failed = [a for a in report["attempts"] if a["rc"] != 0]
    assert len(failed) >= 3, report  # the first pages of free space are not enough
    for attempt in report["attempts"]:
        assert "Traceback" not in attempt["stderr"] and "internal error" not in attempt["stderr"]
        assert attempt["verify"] == [] and attempt["temps"] == [] and attempt["unreferenced"] == [], attempt
        assert "good" in attempt["tags"]
        if attempt["rc"] != 0:
            lines = attempt["stderr"].strip().splitlines()
            assert lines[0].startswith("chrootforge: error: ") and "No space left on device" in lines[0]
            assert str(base / "fs" / "L") in lines[0] and len(lines) <= 2, attempt
            assert f"try{attempt['pages']}" not in attempt["tags"]


def test_unwritable_layout_is_one_clean_line(user_identity):
    base = user_identity.mkdtemp("eacces.")
    _trees(base)
    for p in [base, *base.rglob("*")]:
        os.chown(p, user_identity.uid, user_identity.gid)
    layout = base / "L"
    first = user_identity.cf("commit", str(base / "small"), "--layout", str(layout), "--tag", "good")
    assert first.returncode == 0, first.stderr
    before = (layout / "index.json").read_bytes()
    blobs_before = sorted(os.listdir(layout / "blobs" / "sha256"))
    # the blob store (checked up front), then the layout itself (where index.json is replaced:
    # the commit's blobs are already published then, and must be taken back)
    for locked, says in ((layout / "blobs" / "sha256", "is not writable"), (layout, "Permission denied")):
        os.chmod(locked, 0o555)
        try:
            result = user_identity.cf("commit", str(base / "medium"), "--layout", str(layout), "--tag", "x")
        finally:
            os.chmod(locked, 0o755)
        assert result.returncode == 1
        assert result.stderr.startswith("chrootforge: error: ") and says in result.stderr, result.stderr
        assert str(layout) in result.stderr.splitlines()[0] and "Traceback" not in result.stderr
        assert (layout / "index.json").read_bytes() == before and os.listdir(layout / ".tmp") == []
        assert sorted(os.listdir(layout / "blobs" / "sha256")) == blobs_before


def test_gc_alongside_eight_commits(tmp_path):
    """gc takes the layout lock, so it never removes a blob a concurrent commit publishes."""
    layout = tmp_path / "L"
    trees = []
    for i in range(8):
        tree = tmp_path / f"t{i}"
        tree.mkdir()
        (tree / "data").write_bytes(os.urandom(200_000))
        trees.append(tree)
    oci.commit(trees[0], layout, "seed", quiet=True)
    orphan_digest, orphan_size = lo.write_blob(layout, b"an orphan blob")  # as a killed commit leaves
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chrootforge",
                "commit",
                str(tree),
                "--layout",
                str(layout),
                "--tag",
                f"c{i}",
                "--quiet",
            ],
            stderr=subprocess.PIPE,
        )
        for i, tree in enumerate(trees)
    ]
    freed = []
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            freed.extend(lo.gc(layout))

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        stop.set()
        collector.join()
    assert oci.verify(layout) == []
    assert sorted(lo.tagged(lo.read_index(layout))) == sorted(["seed", *(f"c{i}" for i in range(8))])
    assert not lo.blob_path(layout, orphan_digest).exists()
    assert sum(b for _, b in freed) >= orphan_size


def test_verify_notices_and_gc_removes_unreferenced_blobs(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    layout = tmp_path / "L"
    oci.commit(tree, layout, "img", quiet=True)
    lo.write_blob(layout, b"x" * 20_000)
    out = subprocess.run(
        [sys.executable, "-m", "chrootforge", "verify", str(layout)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "1 blobs (0.0 MB) are not referenced" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "chrootforge", "gc", str(layout), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bytes_freed"] == 20_000
    assert oci.verify(layout) == [] and lo.unreferenced_blobs(layout) == []
    assert oci.resolve(layout, "img")
    assert Path(layout).is_dir()


DEEP = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit
MIDDLING = "[" * 200 + "]" * 200  # parses, but nests deeper than any layout document


def _with_deep_field(doc: dict, nested: str) -> bytes:
    return (json.dumps(doc)[:-1] + ', "x-deep": ' + nested + "}").encode()


@pytest.mark.parametrize("target", ["oci-layout", "index.json", "manifest", "config", "referrer", "middling"])
def test_deeply_nested_json_in_a_layout_is_one_clear_line(tmp_path, target):
    tree = tmp_path / "t"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "f").write_text("x")
    layout = tmp_path / "L"
    oci.commit(tree, layout, "img", quiet=True)
    if target in ("oci-layout", "index.json", "referrer"):  # (the others change the image's digest)
        oci.attach_referrer(layout, "img", b'{"spdxVersion": "SPDX-2.3"}', "application/spdx+json")
    if target == "oci-layout":
        # (the marker is read with a 4 KiB bound, so its deep document must nest within that size)
        (layout / "oci-layout").write_text('{"imageLayoutVersion": ' + "[" * 1000 + "]" * 1000 + "}")
    elif target == "index.json":
        index = json.loads((layout / "index.json").read_text())
        (layout / "index.json").write_bytes(_with_deep_field(index, DEEP))
    elif target == "referrer":
        index = json.loads((layout / "index.json").read_text())
        entry = next(d for d in index["manifests"] if "dev.chrootforge.subject" in d["annotations"])
        old = json.loads(lo.blob_path(layout, entry["digest"]).read_bytes())
        entry["digest"], entry["size"] = lo.write_blob(layout, _with_deep_field(old, DEEP))
        (layout / "index.json").write_text(json.dumps(index))
    else:
        nested = MIDDLING if target == "middling" else DEEP
        change = {"manifest": lambda d: _with_deep_field(d, nested)}
        rewrite_image(layout, "img", **({"config": change["manifest"]} if target == "config" else change))
    reachable = _mentioned(layout)
    (tmp_path / "child").mkdir()
    runs = {
        "verify": ["verify", str(layout)],
        "inspect": ["inspect", f"{layout}:img"],
        "export": ["export", f"{layout}:img", "-o", str(tmp_path / "out.tar")],
        "commit": [
            "commit",
            str(tmp_path / "child"),
            "--layout",
            str(layout),
            "--tag",
            "c",
            "--parent",
            "img",
        ],
        "sbom": ["sbom", f"{layout}:img"],
        "push": ["push", f"{layout}:img", "docker://127.0.0.1:9/r/img:1", "--retry-times", "0"],
        "gc": ["gc", str(layout)],
    }
    for name, args in runs.items():
        out = subprocess.run(
            [sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True, check=False
        )
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr, (name, out.stderr)
        if name == "verify" or (name == "gc" and target != "config"):  # (gc reads no config)
            assert out.returncode in (1, 2) and "nests deeper than 64 levels" in out.stderr, (
                name,
                out.stderr,
            )
        if out.returncode:
            lines = out.stderr.strip().splitlines()
            if name != "verify":
                assert lines[0].startswith("chrootforge: error: ") and len(lines) <= 2, (name, out.stderr)
    assert {p.name for p in (layout / "blobs" / "sha256").iterdir()} >= reachable  # gc kept them all


def _mentioned(layout: Path) -> set[str]:
    """The hex of every digest that index.json mentions, and what those blobs mention, read as
    bytes (no parser): what gc must never remove."""
    found: set[str] = set()
    todo = [layout / "index.json"]
    while todo:
        for hexdigest in re.findall(rb"sha256:([0-9a-f]{64})", todo.pop().read_bytes()):
            name = hexdigest.decode()
            if name not in found and (layout / "blobs" / "sha256" / name).exists():
                found.add(name)
                todo.append(layout / "blobs" / "sha256" / name)
    return found
