"""Gentoo's pinned signing keys, and which spec table's `keyring` trusts each (pure)."""

from __future__ import annotations

# Gentoo Linux Release Engineering (Automated Weekly Release Key)
GENTOO_RELENG = "13EBBDBEDE7A12775DFDB1BABB572E0E2D182910"
GENTOO_SNAPSHOT = "DCD05B71EAB94199527F44ACDB6B8C1F96D8BF6D"  # Gentoo ebuild repository signing key


def table_of(fingerprint: str) -> str:
    """The spec table ([tree] or [stage3]) whose `keyring` trusts this pinned key."""
    return "tree" if fingerprint == GENTOO_SNAPSHOT else "stage3"
