"""What every build fixes for reproducibility (gentoo/repro.py), as values and as shell that runs for
real."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chrootforge.gentoo import repro
from chrootforge.gentoo.portage_conf import generate
from chrootforge.gentoo.provided import plan_provided
from chrootforge.spec.graph import load_project


def test_every_step_gets_the_epoch_utc_and_the_c_locale():
    assert repro.step_env(1700000000) == {
        "SOURCE_DATE_EPOCH": "1700000000",
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def test_the_build_path_is_mapped_after_the_namespaces_flags(ns):
    ns.write(
        "chrootforge.toml", ns.root.joinpath("chrootforge.toml").read_text() + '[make_conf]\nCFLAGS = "-O3"\n'
    )
    ns.image("a", 'parent = "scratch"\n')
    project, _ = load_project(ns.root, ["a"])
    block = generate(project.namespace, project.images["a"], plan_provided([], {})).make_conf_append
    lines = block.splitlines()
    own = lines.index('CFLAGS="-O3"')
    mapped = lines.index('CFLAGS="${CFLAGS} -ffile-prefix-map=/var/tmp/portage=."')
    assert own < mapped
    for var in ("CXXFLAGS", "FFLAGS", "FCFLAGS"):
        assert f'{var}="${{{var}}} -ffile-prefix-map=/var/tmp/portage=."' in lines
    assert 'PORTAGE_TMPDIR="/var/tmp"' in lines  # so every package builds below the mapped path


def test_build_umask_is_022_and_given_back():
    old = os.umask(0o077)
    try:
        with repro.build_umask():
            assert os.umask(0o077) == 0o022  # (and set it back to what the block had)
            os.umask(0o022)
        assert os.umask(0o077) == 0o077
    finally:
        os.umask(old)


def _fake_tool(directory: Path, name: str, body: str) -> None:
    tool = directory / name
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(0o755)


def test_the_ar_probe_names_an_archiver_that_records_times(tmp_path):
    """The builder's ar is probed: one that writes the member's mtime into the archive is named in
    the status file (the build then warns); binutils in deterministic mode is not."""
    status = tmp_path / "status"
    fake = tmp_path / "bin"
    fake.mkdir()
    # an ar without deterministic mode: the archive carries the member's mtime
    _fake_tool(fake, "ar", 'out=$2; shift 2; stat -c %Y "$@" > "$out"\n')
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    subprocess.run(["sh", "-c", repro.deterministic_ar_probe(str(status))], env=env, check=True)
    assert status.read_text().strip() == str(fake / "ar")
    status.unlink()
    if shutil.which("ar") is None:
        pytest.skip("no ar (binutils) on this host")
    subprocess.run(["sh", "-c", repro.deterministic_ar_probe(str(status))], check=True)
    assert not status.exists()  # Debian's binutils: deterministic by default
