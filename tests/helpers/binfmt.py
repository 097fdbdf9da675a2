"""The host's binfmt_misc stays untouched: every test checks it (autouse), and the foreign rootfs.

- `host_binfmt_unchanged` (autouse): a snapshot of the host's binfmt_misc before each test (the
  binfmt_misc mounts in our mount namespace, and at /proc/sys/fs/binfmt_misc every entry's name
  and text), compared after it. chrootforge registers emulators in the sandbox's own user
  namespace only; a test that left anything in the host's would fail here. An automount point
  that is not mounted is not listed (listing it would mount it).
- `arm64_busybox` (session): Debian's static arm64 busybox (tests/world/foreign.py).
- `arm64_rootfs`: the identity's busybox rootfs with that binary (shared per identity and session);
  `arm64_rootfs_of(identity)` for tests that choose the identity themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.rootfs import RootfsCache

HOST_BINFMT = Path("/proc/sys/fs/binfmt_misc")


def host_binfmt_snapshot() -> dict:
    mounts = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "binfmt_misc" or fields[4] == str(HOST_BINFMT):
                mounts.append((fields[4], fstype))
    entries: dict[str, str] = {}
    only_automount = any(t == "autofs" for _, t in mounts) and not any(t == "binfmt_misc" for _, t in mounts)
    if not only_automount:
        try:
            for name in sorted(os.listdir(HOST_BINFMT)):
                try:
                    entries[name] = (HOST_BINFMT / name).read_text() if name != "register" else ""
                except OSError as err:
                    entries[name] = f"unreadable: {err.strerror}"
        except OSError as err:
            entries["<dir>"] = f"unreadable: {err.strerror}"
    return {"mounts": sorted(mounts), "entries": entries}


@pytest.fixture(autouse=True)
def host_binfmt_unchanged():
    before = host_binfmt_snapshot()
    yield before
    after = host_binfmt_snapshot()
    assert after == before, f"the host's binfmt_misc changed during the test: {before} -> {after}"


@pytest.fixture(scope="session")
def arm64_busybox(world_cache) -> Path:
    from tests.world.foreign import ForeignAptError, static_busybox

    try:
        return static_busybox(world_cache, "arm64")
    except ForeignAptError as err:
        pytest.fail(f"cannot fetch Debian's arm64 busybox: {err}")


@pytest.fixture(scope="session")
def _arm64_roots(arm64_busybox):
    roots = RootfsCache(arm64_busybox)
    yield roots
    roots.cleanup()


@pytest.fixture
def arm64_rootfs(identity, _arm64_roots) -> Path:
    """The identity's arm64 busybox rootfs (read it, do not write into it)."""
    return _arm64_roots.get(identity)


@pytest.fixture
def arm64_rootfs_of(_arm64_roots):
    """arm64_rootfs_of(identity): the same, for a test that picks its identity itself."""
    return _arm64_roots.get
