"""The sandbox on the synthetic Gentoo stage: real `emerge --info` and a real emerge, rootless too.

The stage, distfiles and repo come from the world fixtures (built once per machine and cached).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers.rootfs import remove_as
from tests.helpers.world import copy_distfiles

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

_OVERLAY_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from chrootforge.sandbox import OverlayRoot, SandboxConfig, owned_dir, run_sandboxed
    work, lower, repo, distfiles = (Path(a) for a in sys.argv[1:5])
    owned_dir(work / "upper")
    owned_dir(work / "work")
    config = SandboxConfig(root=OverlayRoot([lower], work / "upper", work / "work"),
                           argv=["/bin/sh", "-c", sys.argv[5]], repos={"gentoo": repo},
                           portage_tmpfs_size="1G", distfiles=distfiles,
                           log_file=work / "emerge.log", log_tee=True)
    sys.exit(run_sandboxed(config))
""")


@pytest.fixture
def extracted_stage(identity, world_builder):
    """The world stage extracted once per identity under its mapping; tests must not write into it
    (use an OverlayRoot)."""
    return world_builder(identity)


def test_emerge_info_in_the_sandbox(identity, extracted_stage, world_repo):
    repo = world_repo
    result = identity.cf(
        "run",
        str(extracted_stage),
        "--repo",
        f"gentoo={repo}",
        "--portage-tmpfs",
        "1G",
        "--",
        "emerge",
        "--info",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "location: /var/db/repos/gentoo" in result.stdout
    assert "userpriv" in result.stdout
    # portage's own user exists with its owners intact
    owners = identity.cf(
        "run", str(extracted_stage), "--", "sh", "-c", "stat -c '%u:%g' /var/cache/distfiles; id -u portage"
    )
    assert owners.returncode == 0, owners.stderr
    assert owners.stdout.split() == ["250:250", "250"]


def test_real_emerge_on_an_overlay_root(identity, extracted_stage, world_repo, world_distfiles):
    distfiles = copy_distfiles(world_distfiles, identity)
    work = identity.mkdtemp("emerge.")
    try:
        payload = (
            "emerge --oneshot --quiet-build=y app-misc/hello && hello && "
            "stat -c '%u:%g' /var/db/pkg/app-misc/hello-1.0"
        )
        result = identity.run(
            [
                *identity.python,
                "-c",
                _OVERLAY_RUN,
                str(work),
                str(extracted_stage),
                str(world_repo),
                str(distfiles),
                payload,
            ]
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Hello from chrootforge!" in result.stdout
        assert (work / "upper/usr/bin/hello").is_file()
        assert not (extracted_stage / "usr/bin/hello").exists()  # the pristine stage is untouched
        assert ">>> Completed" in (work / "emerge.log").read_text()
    finally:
        remove_as(identity, work)
        remove_as(identity, distfiles)
