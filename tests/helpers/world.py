"""Session fixtures for the test world: the signed synthetic stage3, the distfiles and the ebuild repo.

- `world_cache` (session): the cache dir: $CHROOTFORGE_WORLD_CACHE, else
  /var/tmp/chrootforge-tests/world (world-<uid> when not run as root). The stage is built there
  once per machine (keyed by its inputs); later sessions reuse it.
- `world_stage` (session): a `tests.world.stage.WorldStage` with `.tarball`, `.digests`, `.signature`,
  `.keyring` (the test release public key for `--keyring`) and `.fingerprint`. World-readable, so
  the unprivileged test user can read it too.
- `world_distfiles` (session): the cached distfiles dir (checked against the repo's Manifests).
  Treat it as read-only: bind a copy (`copy_distfiles`) where portage may write.
- `world_stage_arm64`, `world_distfiles_arm64` (session): the same for arm64 (the stage is built
  under chrootforge's emulated sandbox; the .debs are Debian's arm64 ones).
- `world_repo` (session): a world-readable copy of examples/repo made for this session.
- `world_builder` (session): `world_builder(identity, purpose="pristine")` extracts the stage once per
  identity and purpose under that identity's id mapping (the way builds see it) and returns the
  root's path; removed at the end. The pristine one must not be written to.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.identity import Identity, shared_dir
from tests.helpers.rootfs import remove_as
from tests.world.cache import EXAMPLES, world_cache_dir


@pytest.fixture(scope="session")
def world_cache() -> Path:
    path = world_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o755)  # the unprivileged test user reads the stage from here
    return path


@pytest.fixture(scope="session")
def world_stage(world_cache):
    from tests.world.stage import StageError, ensure_stage

    try:
        return ensure_stage(world_cache, quiet=False)
    except StageError as err:
        pytest.fail(f"cannot build the synthetic stage: {err}")


@pytest.fixture(scope="session")
def world_distfiles(world_cache) -> Path:
    from tests.world.distfiles import DistfilesError, ensure_distfiles

    try:
        return ensure_distfiles(world_cache, quiet=False)
    except DistfilesError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def world_stage_arm64(world_cache):
    """The arm64 synthetic stage3 (built under emulation, tests/world/stage_foreign.py: ~30 min
    of CPU the first time on a 2-core machine; cached like the amd64 one)."""
    from tests.world.signing import SigningError
    from tests.world.stage import StageError, ensure_stage

    try:
        return ensure_stage(world_cache, quiet=False, arch="arm64")
    except (StageError, SigningError) as err:
        pytest.fail(f"cannot build the arm64 synthetic stage: {err}")


@pytest.fixture(scope="session")
def world_distfiles_arm64(world_cache) -> Path:
    from tests.world.distfiles import DistfilesError, ensure_distfiles

    try:
        return ensure_distfiles(world_cache, quiet=False, arch="arm64")
    except DistfilesError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def world_repo() -> Path:
    base = shared_dir("world-repo.")
    repo = base / "repo"
    shutil.copytree(EXAMPLES / "repo", repo, symlinks=True)
    for root, _dirs, files in os.walk(base):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    yield repo
    shutil.rmtree(base, ignore_errors=True)


def copy_distfiles(distfiles: Path, identity: Identity) -> Path:
    """A private, writable copy of the distfiles owned by `identity` (portage may chmod/lock there)."""
    dest = identity.mkdtemp("distfiles.")
    dest.chmod(0o755)  # unpack runs as portage (250), which must reach the files
    for path in distfiles.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy(path, dest / path.name)
    if os.getuid() == 0:
        owner = (identity.uid, identity.gid)
        if identity.is_root:  # the sandbox's root, which writes here, is root's unprivileged range
            from chrootforge.sandbox import detect_idmap

            owner = detect_idmap().to_host(0, 0)
        for path in [dest, *dest.iterdir()]:
            os.chown(path, *owner)
    return dest


def python_snippet(identity: Identity, code: str) -> list[str]:
    return [*identity.python, "-c", code]


class WorldBuilder:
    """Extracted builder roots, made the way a build makes them: one per identity and purpose.

    The default purpose's root must stay pristine (tests lay an OverlayRoot on it). Tests that write
    into the root itself ask for their own purpose, so no test depends on another's leftovers.
    """

    def __init__(self, stage):
        self.stage = stage
        self.roots: dict[tuple[str, str], tuple[Identity, Path]] = {}

    def __call__(self, identity: Identity, purpose: str = "pristine") -> Path:
        key = (identity.name, purpose)
        if key not in self.roots:
            base = identity.mkdtemp(f"builder-{purpose}.")
            root = base / "root"
            proc = identity.run(
                python_snippet(
                    identity,
                    "from chrootforge.sources.extract import extract; "
                    f"extract({str(self.stage.tarball)!r}, {str(root)!r})",
                )
            )
            if proc.returncode != 0:
                pytest.fail(f"extracting the stage as {identity.name} failed:\n{proc.stderr}")
            self.roots[key] = (identity, base)
        return self.roots[key][1] / "root"

    def cleanup(self) -> None:
        for identity, base in self.roots.values():
            remove_as(identity, base)
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def world_builder(world_stage):
    builder = WorldBuilder(world_stage)
    yield builder
    builder.cleanup()
