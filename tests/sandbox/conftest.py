"""Fixtures local to the sandbox tests."""

from __future__ import annotations

import pytest

from tests.helpers.rootfs import remove_as


@pytest.fixture
def scratch(request):
    """scratch(identity, prefix) -> a fresh directory that identity's sandbox root owns (the identity
    itself rootless, root's unprivileged range for root), removed after the test (with the
    identity's mapping, as it may hold sub-id owned files)."""
    made = []

    def make(identity, prefix: str = "t."):
        path = identity.mkdtemp(prefix)
        if identity.is_root:  # a directory the sandbox's root (an unprivileged range) may use
            from chrootforge.sandbox import owned_dir

            owned_dir(path)
        made.append((identity, path))
        return path

    yield make
    for identity, path in made:
        remove_as(identity, path)
