"""Fixtures local to the sandbox tests."""

from __future__ import annotations

import pytest

from tests.helpers.rootfs import remove_as


@pytest.fixture
def scratch(request):
    """scratch(identity, prefix) -> a fresh directory that identity owns, removed after the test
    (with the identity's mapping, as it may hold sub-id owned files)."""
    made = []

    def make(identity, prefix: str = "t."):
        path = identity.mkdtemp(prefix)
        made.append((identity, path))
        return path

    yield make
    for identity, path in made:
        remove_as(identity, path)
