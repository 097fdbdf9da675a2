"""Inputs a hostile or careless caller gives by name: empty words, FIFOs nobody writes to, an
output inside what is read. Each is one clear line, never a hang, a default taken silently or a
file that holds itself."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chrootforge import oci


def cf(*argv, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def layout(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "f").write_text("x")
    out = tmp_path / "L"
    oci.commit(tree, out, "img", quiet=True)
    return out


@pytest.mark.parametrize(
    "argv",
    [
        ("inspect", ""),
        ("commit", "{tree}", "--layout", "", "--tag", "x"),
        ("commit", "{tree}", "--layout={layout}", "--tag="),
        ("export", "{layout}:img", "-o", ""),
        ("run", ""),
        ("run", "--env", "", "{tree}", "--", "/bin/true"),
    ],
)
def test_an_empty_argument_is_refused(tmp_path, layout, argv):
    words = [w.format(tree=tmp_path / "tree", layout=layout) for w in argv]
    out = cf(*words)
    assert out.returncode == 2, out.stderr
    assert "empty" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2, out.stderr


@pytest.mark.parametrize("where", ["top", "blobs", "new/sub"])
def test_export_into_the_layout_it_reads_is_refused(layout, where):
    target = layout / where / "out.tar" if where != "top" else layout / "out.tar"
    out = cf("export", f"{layout}:img", "-o", str(target))
    assert out.returncode == 2 and "inside the layout" in out.stderr, out.stderr
    assert not target.exists()


def test_commit_of_a_rootfs_that_holds_the_layout_is_refused(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    out = cf("commit", str(tree), "--layout", str(tree / "sub" / "L"), "--tag", "x")
    assert out.returncode == 2 and "would hold itself" in out.stderr, out.stderr
    assert not (tree / "sub").exists()


def test_a_fifo_nobody_writes_is_read_as_empty_not_waited_for(tmp_path):
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    (tmp_path / "tree").mkdir()
    out = cf(
        "commit", str(tmp_path / "tree"), "--layout", str(tmp_path / "L"), "--tag", "x", "--config", str(fifo)
    )
    assert out.returncode == 2 and "--config" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_pipe_still_works_as_config(tmp_path):
    (tmp_path / "tree").mkdir()
    out = subprocess.run(
        [
            "bash",
            "-c",
            'exec "$@" --config <(echo \'{"Env": ["A=1"]}\')',
            "_",
            sys.executable,
            "-m",
            "chrootforge",
            "commit",
            str(tmp_path / "tree"),
            "--layout",
            str(tmp_path / "L"),
            "--tag",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
