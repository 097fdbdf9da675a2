"""Shared fixtures live in tests/helpers/, one module per concern, loaded here as plugins."""

pytest_plugins = [
    "tests.helpers.identity",
    "tests.helpers.rootfs",
    "tests.helpers.mirror",
    "tests.helpers.pipeline",
    "tests.helpers.world",
    "tests.helpers.registry",
    "tests.helpers.signing",
    "tests.helpers.vm",
    "tests.helpers.binfmt",
    "tests.helpers.multiplatform",
]
