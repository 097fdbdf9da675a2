"""Fast checks of the world's recipe code: the keyed cache, the portage patcher, the version rule."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.world import distfiles as df
from tests.world import stage, stage_setup
from tests.world.cache import EXAMPLES, cache_key, keyed_build


def test_keyed_build_builds_once_and_keys_on_every_input(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "artefact").write_text("x")

    first = keyed_build(tmp_path, "thing", {"a": 1}, build)
    again = keyed_build(tmp_path, "thing", {"a": 1}, build)
    other = keyed_build(tmp_path, "thing", {"a": 2}, build)
    assert first == again != other and len(calls) == 2
    assert (first / "artefact").read_text() == "x" and (first / ".complete").exists()
    assert first.name == f"thing-{cache_key({'a': 1})}"


def test_keyed_build_failure_leaves_nothing(tmp_path):
    def build(tmp: Path) -> None:
        (tmp / "half").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        keyed_build(tmp_path, "thing", {"a": 1}, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock"]


def test_concurrent_callers_build_once(tmp_path):
    calls, results = [], []

    def build(tmp: Path) -> None:
        calls.append(1)
        time.sleep(0.3)  # the second caller arrives while this one holds the lock

    def worker() -> None:
        results.append(keyed_build(tmp_path, "thing", {"a": 1}, build))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(results)) == 1


def test_concurrent_processes_build_once(tmp_path):
    """Two test sessions (processes) wanting the same entry: the flock makes one wait."""
    code = (
        "import sys, time; from pathlib import Path; from tests.world.cache import keyed_build\n"
        "def build(tmp):\n"
        "    with open(sys.argv[1] + '/calls', 'a') as f: f.write('x')\n"
        "    time.sleep(0.5)\n"
        "print(keyed_build(Path(sys.argv[1]), 'thing', {'a': 1}, build))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=EXAMPLES.parent,
        )
        for _ in range(2)
    ]
    outs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(outs) == 1 and (tmp_path / "calls").read_text() == "x"


def test_replace_exactly_fails_loudly_on_a_different_wheel(tmp_path):
    path = tmp_path / "installation.py"
    path.write_text('if "MODULE" == "MODULE":\n    pass\nelif "MODULE" == "SYSTEM":\n    pass\n')
    stage_setup.replace_exactly(path, '"MODULE" == "', '"SYSTEM" == "', 2)
    assert path.read_text().count('"SYSTEM" == "') == 2
    with pytest.raises(SystemExit, match="expected 2x .* found 0: the portage wheel changed"):
        stage_setup.replace_exactly(path, '"MODULE" == "', '"SYSTEM" == "', 2)


def test_mmdebstrap_command():
    argv = stage.mmdebstrap_argv(Path("/w/portage.whl"), Path("/o/stage.tar.zst"))
    assert argv[:3] == ["mmdebstrap", "--mode=unshare", "--variant=minbase"]
    include = next(a for a in argv if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert {"binutils", "gcc", "make", "python3-pip", "python-is-python3", "pax-utils", "zstd"} <= set(
        include
    )
    hook = argv[argv.index("--customize-hook") + 1]
    assert "stage_setup.py" in hook
    assert "/w/portage.whl cfworld default/linux/amd64/23.0 x86_64-pc-linux-gnu" in hook
    assert argv[-2:] == ["bookworm", "/o/stage.tar.zst"]


def test_stage_inputs_cover_the_recipe(tmp_path):
    wheel = tmp_path / "portage.whl"
    wheel.write_bytes(b"wheel")
    inputs = stage.inputs(wheel)
    assert set(inputs["recipe"]) >= {"stage.py", "stage_setup.py"}
    assert inputs["suite"] == "bookworm" and inputs["packages"] == sorted(stage.PACKAGES)
    wheel.write_bytes(b"another wheel")
    assert cache_key(stage.inputs(wheel)) != cache_key(inputs)


@pytest.mark.parametrize(
    ("debian", "gentoo"),
    [
        ("1:1.35.0-4+deb12u1+b1", "1.35.0_p4_p12_p1_p1"),
        ("2.36-9+deb12u14", "2.36_p9_p12_p14"),
        ("2.11.3.2-1", "2.11.3.2_p1"),
        ("1.0", "1.0"),
    ],
)
def test_gentoo_version(debian, gentoo):
    assert df.gentoo_version(debian) == gentoo


def test_gentoo_version_refuses_what_gentoo_cannot_spell():
    with pytest.raises(df.DistfilesError, match="not a valid Gentoo version"):
        df.gentoo_version("1.2~rc1-1")


def test_every_bin_ebuild_is_versioned_after_its_debian_version():
    seen = 0
    for ebuild in (EXAMPLES / "repo").glob("*/*/*.ebuild"):
        match = re.search(r'^DEB_PV="(.+)"$', ebuild.read_text(), re.MULTILINE)
        if match:
            pv = re.sub(r"-r\d+$", "", ebuild.stem[len(ebuild.parent.name) + 1 :])  # a revision of ours
            assert pv == df.gentoo_version(match.group(1)), ebuild.name
            seen += 1
    assert seen == 6  # busybox, glibc, s6, skalibs, execline, gcc runtime
