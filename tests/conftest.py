"""Shared fixtures live in tests/helpers/, one module per concern, loaded here as plugins."""

pytest_plugins = [
    "tests.helpers.identity",
]
