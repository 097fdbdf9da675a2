"""chrootforge: slim Gentoo-based OCI images, built with no daemon and no root."""

__version__ = "0.1.0"
