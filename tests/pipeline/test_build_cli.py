"""`build` and `new` from the command line: what the arguments may be, and that --plan checks
exactly what a build checks (issue 18, items 9 and 12). No sandbox needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chrootforge.build import engine as build


def cf(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def _one_line(proc, code: int = 2) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("chrootforge: error:"), proc.stderr
    assert len(lines) <= 2 and all(line.startswith("  hint:") for line in lines[1:]), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


# -- [build] jobs reaches emerge (item 12) -----------------------------------------------------------
def test_plan_carries_emerge_jobs(ns):
    ns.image("a", 'parent = "scratch"\npackages = ["app-misc/hello"]\n')
    assert "emerge --buildpkg" in build.plan([str(ns.root)]) and "--jobs=2" in build.plan([str(ns.root)])
    ns.write("chrootforge.toml", ns.root.joinpath("chrootforge.toml").read_text() + "[build]\njobs = 7\n")
    text = build.plan([str(ns.root)])
    assert "--jobs=7" in text and "--jobs=1" not in text
    # `build --jobs` is the scheduler's: how many images at once, never emerge's
    proc = cf("build", "--plan", "--jobs", "3", str(ns.root))
    assert proc.returncode == 0 and "--jobs=7" in proc.stdout and "--jobs=3" not in proc.stdout


# -- --plan refuses what build refuses (item 9) ---------------------------------------------------------
BAD_ARGS = [
    (["--jobs", "0"], "--jobs 0: must be at least 1"),
    (["--jobs", "-3"], "--jobs -3: must be at least 1"),
    (["--timeout", "-1"], "--timeout -1: must be a positive number"),
    (["--timeout", "0"], "--timeout 0: must be a positive number"),
    (["--timeout", "nan"], "--timeout nan: must be a positive number"),
    (["--timeout", "inf"], "--timeout inf: must be a positive number"),
    (["--retry-times", "-1"], "--retry-times must be 0 or more"),
    (["--creds", "nocolon"], "--creds must be USER:PASS"),
    (["--keep"], "--keep goes with --shell"),
    (["--stage3", "/nonexistent/stage3.tar.xz"], "no such file"),
    (["--push"], "--push needs a registry"),
    (["--remote-cache", "docker://registry.example.com/cache:tag"], "names a tag or digest"),
    (["--binhost", "ftp://binhost.example.com"], "must be an http://, https:// or file:// URL"),
    (["--vm", "on", "--push"], "--vm on builds in a QEMU guest"),
    (["--vm", "on", "--shell"], "--vm on builds in a QEMU guest"),
]


@pytest.mark.parametrize("args,message", BAD_ARGS)
def test_plan_checks_what_build_checks(ns, args, message):
    ns.image("a", 'parent = "scratch"\n')
    planned = cf("build", "--plan", *args, str(ns.root / "a"))
    assert message in _one_line(planned), planned.stderr
    built = cf("build", *args, str(ns.root / "a"))
    assert built.returncode == planned.returncode and built.stderr == planned.stderr


def test_plan_refuses_shell_of_two_images(ns):
    ns.image("a", 'parent = "scratch"\n')
    ns.image("b", 'parent = "scratch"\n')
    proc = cf("build", "--plan", "--shell", str(ns.root))
    assert "--shell opens the build sandbox of one image" in _one_line(proc)


# -- new NS/.. and NS/. (item 9) ---------------------------------------------------------------------
@pytest.mark.parametrize("target", ["ns/..", "ns/.", "ns/../", "ns/./", ".", "..", "ns/web/.."])
def test_new_refuses_dot_and_dotdot(tmp_path, target):
    (tmp_path / "ns").mkdir()
    assert cf("new", str(tmp_path / "ns")).returncode == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = cf("new", target, cwd=tmp_path)
    assert "must end with the folder's own name" in _one_line(proc)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "chrootforge.toml").exists()
