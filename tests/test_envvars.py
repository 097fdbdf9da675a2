"""Environment variables: a misspelled one is named with the one it is close to (issue 18, item 13)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cf(*args: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
    )


def test_known_lists_every_variable_the_code_names():
    from chrootforge import envvars

    named = set()
    for path in (REPO / "chrootforge").rglob("*.py"):
        named |= set(re.findall(r"\"(CHROOTFORGE_[A-Z0-9_]+)\"", path.read_text()))
    assert named and named <= set(envvars.KNOWN), named - set(envvars.KNOWN)


def test_a_misspelled_variable_is_named_with_the_close_one():
    proc = cf("--version", env={"CHROOTFORGE_HOOK": "/tmp/hooks", "GENTOO_MIRROR": "https://m.example"})
    assert proc.returncode == 0
    assert (
        "CHROOTFORGE_HOOK is set, but chrootforge reads no such variable: did you mean CHROOTFORGE_HOOKS?"
        in (proc.stderr)
    )
    assert "did you mean GENTOO_MIRRORS?" in proc.stderr
    # a spec's own variables and the right names draw no warning
    quiet = cf("--version", env={"CHROOTFORGE_WORLD_STAGE": "/x", "CHROOTFORGE_HOOKS": "/y"})
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_an_unset_spec_variable_names_the_close_one(tmp_path):
    ns = tmp_path / "ns"
    (ns / "repo" / "profiles").mkdir(parents=True)
    (ns / "chrootforge.toml").write_text('[stage3]\npath = "${MY_STAGE3_PAHT}"\n[tree]\npath = "repo"\n')
    (ns / "a").mkdir()
    (ns / "a" / "image.toml").write_text('parent = "scratch"\n')
    env = {"MY_STAGE3_PATH": str(tmp_path / "stage3.tar.xz")}
    proc = cf("build", "--plan", str(ns), env=env)
    assert proc.returncode == 2, proc.stderr
    assert "chrootforge.toml:2: ${MY_STAGE3_PAHT} is not set" in proc.stderr
    assert "hint: did you mean ${MY_STAGE3_PATH}?" in proc.stderr
