"""Helpers shared by the sources tests (fixtures proper live in tests/helpers/mirror.py)."""

from __future__ import annotations

import os

import pytest

from tests.helpers.identity import shared_dir
from tests.helpers.mirror import make_tar, stage_members


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("CHROOTFORGE_RETRY_BACKOFF", "0.05")
    monkeypatch.delenv("GENTOO_MIRRORS", raising=False)
    monkeypatch.delenv("CHROOTFORGE_GENTOO_KEYRING", raising=False)
    monkeypatch.setenv(
        "CHROOTFORGE_WKD_URL", "off"
    )  # never Gentoo's real key directory (test_wkd serves one)


@pytest.fixture
def tmp_path():
    """Like pytest's, but where root's sandbox range can reach it: pytest's own lives under a 0700
    /tmp/pytest-of-root, and extraction runs as root's unprivileged range (sandbox/idmap.py)."""
    import shutil

    path = shared_dir("srctmp.")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def stage_tarball() -> bytes:
    return make_tar(stage_members(), "xz")


@pytest.fixture
def cache_dir():
    path = shared_dir("srccache.")
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def cache_is_empty(cache) -> bool:
    """No verified entry, no name record, no unverified entry, no scratch left."""
    for area in ("blobs", "names", "unverified", "tmp"):
        folder = cache / area
        if folder.is_dir() and any(p for p in folder.iterdir() if p.name != ".lock"):
            return False
    return True


def tree_files(root) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out
