"""Command registration for this package (filled in by the package's owner)."""


def register(sub) -> None:
    pass
