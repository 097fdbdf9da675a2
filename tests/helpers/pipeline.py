"""Fixtures for the pipeline's end-to-end tests: the test world's inputs and private podman stores.

- `world_inputs` (session): the signed synthetic stage3, its test key and the distfiles (from the
  `world_stage`/`world_distfiles` fixtures of tests/helpers/world.py), exposed as the environment
  variables examples/world/chrootforge.toml reads.
- `Podman`: podman with private storage (root or rootless), per notes/oci.md.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest


@dataclasses.dataclass(frozen=True)
class WorldInputs:
    stage: Path
    keyring: Path
    distfiles: Path
    suffix: str = ""  # another arch's: "_ARM64" (what `just world-env arm64` prints)

    def env(self) -> dict[str, str]:
        return {
            f"CHROOTFORGE_WORLD_STAGE{self.suffix}": str(self.stage),
            f"CHROOTFORGE_WORLD_KEYRING{self.suffix}": str(self.keyring),
            f"CHROOTFORGE_WORLD_DISTFILES{self.suffix}": str(self.distfiles),
        }


@pytest.fixture(scope="session")
def world_inputs(world_stage, world_distfiles) -> WorldInputs:
    """The world engineer's stage and distfiles (tests/helpers/world.py), as examples/world reads them."""
    return WorldInputs(Path(world_stage.tarball), Path(world_stage.keyring), Path(world_distfiles))


@pytest.fixture(scope="session")
def world_inputs_arm64(world_stage_arm64, world_distfiles_arm64) -> WorldInputs:
    """The arm64 world's, under the names `just world-env arm64` prints."""
    return WorldInputs(
        Path(world_stage_arm64.tarball),
        Path(world_stage_arm64.keyring),
        Path(world_distfiles_arm64),
        "_ARM64",
    )


class Podman:
    """podman with private storage under `base`, run as `identity`."""

    def __init__(self, identity, base: Path):
        self.identity, self.base = identity, base
        # podman refuses a runroot longer than 50 characters: a short one under /tmp.
        self.runroot = Path(identity.run(["mktemp", "-d", "/tmp/cfpm.XXXXXX"], check=True).stdout.strip())
        self.global_args = [
            "--root",
            str(base / "storage"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(base / "tmp"),
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]
        if not identity.is_root:
            self.global_args += ["--storage-driver", "vfs"]

    def argv(self, *args: str) -> list[str]:
        return ["podman", *self.global_args, *args]

    def __call__(self, *args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
        proc = self.identity.run(self.argv(*args), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return proc

    def run_args(self) -> list[str]:
        return ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"]

    def cleanup(self) -> None:
        self(*["rm", "-af", "-t", "0"], check=False)
        if self.identity.is_root:
            from tests.helpers.oci import unmount_below

            unmount_below(self.base, self.runroot)
            shutil.rmtree(self.base, ignore_errors=True)
            shutil.rmtree(self.runroot, ignore_errors=True)
            return
        self.identity.run(["podman", *self.global_args, "unshare", "rm", "-rf", str(self.base / "storage")])
        pause = self.base / "tmp" / "pause.pid"
        try:
            os.kill(int(pause.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        self.identity.run(["rm", "-rf", str(self.runroot)])
