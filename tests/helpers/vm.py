"""Fixtures for the VM harness's tests: one guest artifact set per machine, shared by every identity.

- `vm_artifacts` (session): the guest artifacts (kernel, initramfs, squashfs root), built once per
  recipe into $CHROOTFORGE_TEST_TMP/vm-artifacts (keyed by the recipe's hash, so later sessions
  reuse them). When the suite runs as root they are built by the unprivileged test user: the
  rootless build (mmdebstrap --mode=unshare) is the one that matters. Everyone reads them.
- `vm_env(identity)`: the environment that points an identity's chrootforge at those artifacts.
- `qemu_processes(marker)`: the pids of QEMU processes whose command line holds `marker`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers.identity import SHARED_TMP, _ensure_shared_tmp, get_identity

ARTIFACTS = SHARED_TMP / "vm-artifacts"
BUILD_TIMEOUT = 1200


def vm_env(extra: dict | None = None) -> dict[str, str]:
    return {"CHROOTFORGE_VM_ARTIFACTS": str(ARTIFACTS), **(extra or {})}


@pytest.fixture(scope="session")
def vm_artifacts() -> dict:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("mmdebstrap") is None:
        pytest.fail("QEMU or mmdebstrap is missing: run scripts/bootstrap")
    builder = get_identity("user")
    _ensure_shared_tmp()
    if not ARTIFACTS.exists():
        ARTIFACTS.mkdir(mode=0o755)
        if os.getuid() == 0:
            os.chown(ARTIFACTS, builder.uid, builder.gid)
    owner = ARTIFACTS.stat().st_uid
    who = builder if owner == builder.uid else get_identity("root") if owner == 0 else None
    if who is None:
        pytest.fail(f"{ARTIFACTS} belongs to uid {owner}, neither the test user nor root")
    started = time.monotonic()
    proc = who.cf("vm", "prepare", "--json", env=vm_env(), timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"building the guest artifacts as {who.name} failed:\n{proc.stderr[-4000:]}")
    manifest = json.loads(proc.stdout)
    manifest["prepare_seconds"] = time.monotonic() - started
    return manifest


def qemu_processes(marker: str) -> list[int]:
    """From the process table (/proc/*/cmdline, whole command lines: ps would cut them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if argv and b"qemu-system" in argv[0] and any(marker.encode() in arg for arg in argv):
            pids.append(int(entry.name))
    return pids


def marker_dir(identity) -> Path:
    """A fresh directory whose unique path, shared into a guest, marks that guest's QEMU."""
    path = identity.mkdtemp("vmmark.")
    Path(path).chmod(0o755)
    return path
