"""What every build fixes for reproducibility (gentoo/repro.py) and refreshes for the loader
(gentoo/ldcache.py), as values and as shell that runs for real."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from chrootforge.gentoo import ldcache, repro
from chrootforge.gentoo.plan import plan_image, render_plan
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
    _fake_tool(fake, "ar", "exit 1\n")  # a probe that cannot run says nothing
    subprocess.run(["sh", "-c", repro.deterministic_ar_probe(str(status))], env=env, check=True)
    assert not status.exists()
    if shutil.which("ar") is None:
        pytest.skip("no ar (binutils) on this host")
    subprocess.run(["sh", "-c", repro.deterministic_ar_probe(str(status))], check=True)
    assert not status.exists()  # Debian's binutils: deterministic by default


def _root_with_a_library(tmp_path: Path, loader: bool) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib64").mkdir(parents=True)
    (root / "var/cache").mkdir(parents=True)
    shutil.copy(next(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1.*")), root / "usr/lib64/libz.so.1")
    (root / "etc/ld.so.conf").write_text("/lib64\n/usr/lib64\n")
    if loader:
        (root / "lib64").mkdir()
        (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    return root


@pytest.mark.skipif(not Path("/usr/lib/x86_64-linux-gnu").is_dir(), reason="needs an x86_64 Debian host")
def test_the_loader_cache_is_made_for_a_glibc_root_only(tmp_path):
    """ldcache.script runs the real ldconfig on the root: /etc/ld.so.cache then lists the library of
    /usr/lib64 (the directory ld.so.conf names); a root without glibc's loader gets no cache."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    env = {"PATH": f"{Path(ldconfig).parent}:/usr/bin:/bin"}
    root = _root_with_a_library(tmp_path, loader=True)
    subprocess.run(["sh", "-ec", ldcache.script(str(root))], env=env, check=True, capture_output=True)
    listing = subprocess.run(
        [ldconfig, "-p", "-C", str(root / "etc/ld.so.cache")], capture_output=True, text=True
    )
    assert "libz.so.1 (libc6,x86-64) => /usr/lib64/libz.so.1" in listing.stdout
    shutil.rmtree(tmp_path / "root")
    root = _root_with_a_library(tmp_path, loader=False)
    subprocess.run(["sh", "-ec", ldcache.script(str(root))], env=env, check=True, capture_output=True)
    assert not (root / "etc/ld.so.cache").exists()


def test_the_root_s_own_ldconfig_comes_first(tmp_path):
    """As portage's env-update: the image's /sbin/ldconfig when it has one."""
    root = _root_with_a_library(tmp_path, loader=True)
    (root / "sbin").mkdir()
    _fake_tool(root / "sbin", "ldconfig", f'echo "$@" > {tmp_path}/called\n')
    subprocess.run(["sh", "-ec", ldcache.script(str(root))], check=True, capture_output=True)
    assert (tmp_path / "called").read_text().split() == ["-X", "-r", str(root)]
    assert stat.S_ISREG((root / "sbin/ldconfig").stat().st_mode)


def test_check_binaries_is_on_unless_turned_off(ns):
    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "a"\ncheck_binaries = false\n')
    project, _ = load_project(ns.root, None)
    on, off = plan_image(project, "a", None), plan_image(project, "b", [])
    assert on.check_binaries is not None and on.check_binaries.name == "check-binaries.sh"
    assert on.check_binaries.is_file()
    assert off.check_binaries is None
    assert "check-binaries: after the strip" in render_plan(on)
    assert "check-binaries: off (check_binaries = false)" in render_plan(off)
