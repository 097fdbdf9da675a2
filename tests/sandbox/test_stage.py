"""The sandbox on the synthetic Gentoo stage: real `emerge --info` and a real emerge, rootless too.

Needs the world stage tarball in $CHROOTFORGE_WORLD_STAGE (built by `python -m tests.world.stage`)
and, for the emerge, its distfiles in $CHROOTFORGE_WORLD_DISTFILES; skipped otherwise.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.helpers.rootfs import remove_as

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

_OVERLAY_RUN = textwrap.dedent('''
    import sys
    from pathlib import Path
    from chrootforge.sandbox import OverlayRoot, SandboxConfig, run_sandboxed
    work, lower, repo, distfiles = (Path(a) for a in sys.argv[1:5])
    (work / "upper").mkdir()
    (work / "work").mkdir()
    config = SandboxConfig(root=OverlayRoot([lower], work / "upper", work / "work"),
                           argv=["/bin/sh", "-c", sys.argv[5]], repos={"gentoo": repo},
                           portage_tmpfs_size="1G", distfiles=distfiles,
                           log_file=work / "emerge.log", log_tee=True)
    sys.exit(run_sandboxed(config))
''')


def _world_stage() -> Path:
    stage = os.environ.get("CHROOTFORGE_WORLD_STAGE")
    if not stage or not Path(stage).is_file():
        pytest.skip("set CHROOTFORGE_WORLD_STAGE to the synthetic stage tarball "
                    "(python -m tests.world.stage --cache-dir DIR)")
    return Path(stage)


@pytest.fixture(scope="module")
def _stages():
    built: dict[str, tuple] = {}
    yield built
    for identity, base in built.values():
        remove_as(identity, base)


@pytest.fixture
def extracted_stage(identity, _stages):
    """The world stage extracted under the identity's mapping (run_mapped + tar), once per module;
    tests must not write into it (use an OverlayRoot)."""
    tarball = _world_stage()
    if identity.name not in _stages:
        base = identity.mkdtemp("stage.")
        os.chmod(base, 0o755)
        _stages[identity.name] = (identity, base)
        script = ("import sys; from chrootforge.sandbox import run_mapped\n"
                  "import os; os.mkdir(sys.argv[2])\n"
                  "sys.exit(run_mapped(['tar', '--zstd', '-xpf', sys.argv[1], '--numeric-owner',"
                  " '--exclude=./dev/*', '-C', sys.argv[2]]))\n")
        result = identity.run([*identity.python, "-c", script, str(tarball), str(base / "root")])
        assert result.returncode == 0, result.stderr
    return _stages[identity.name][1] / "root"


def _repo_for(identity) -> Path:
    return Path(identity.env.get("CHROOTFORGE_SRC", REPO)) / "examples" / "repo"


def test_emerge_info_in_the_sandbox(identity, extracted_stage):
    repo = _repo_for(identity)
    result = identity.cf("run", str(extracted_stage), "--repo", f"gentoo={repo}",
                         "--portage-tmpfs", "1G", "--", "emerge", "--info")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "location: /var/db/repos/gentoo" in result.stdout
    assert "userpriv" in result.stdout
    # portage's own user exists with its owners intact
    owners = identity.cf("run", str(extracted_stage), "--", "sh", "-c",
                         "stat -c '%u:%g' /var/cache/distfiles; id -u portage")
    assert owners.returncode == 0, owners.stderr
    assert owners.stdout.split() == ["250:250", "250"]


def test_real_emerge_on_an_overlay_root(identity, extracted_stage):
    distfiles = os.environ.get("CHROOTFORGE_WORLD_DISTFILES")
    if not distfiles or not Path(distfiles).is_dir():
        pytest.skip("set CHROOTFORGE_WORLD_DISTFILES to the world distfiles directory")
    work = identity.mkdtemp("emerge.")
    try:
        payload = ("emerge --oneshot --quiet-build=y app-misc/hello && hello && "
                   "stat -c '%u:%g' /var/db/pkg/app-misc/hello-1.0")
        result = identity.run([*identity.python, "-c", _OVERLAY_RUN, str(work),
                               str(extracted_stage), str(_repo_for(identity)), distfiles, payload])
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Hello from chrootforge!" in result.stdout
        assert (work / "upper/usr/bin/hello").is_file()
        assert not (extracted_stage / "usr/bin/hello").exists()  # the pristine stage is untouched
        assert ">>> Completed" in (work / "emerge.log").read_text()
    finally:
        remove_as(identity, work)
