# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-deb

DEB_PV="2.9.3.0-1"
DESCRIPTION="The execline scripting language (from Debian's execline and libexecline2.9)"
HOMEPAGE="https://skarnet.org/software/execline/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/e/execline/execline_${DEB_PV}_amd64.deb
		https://deb.debian.org/debian/pool/main/e/execline/libexecline2.9_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/e/execline/execline_${DEB_PV}_arm64.deb
		https://deb.debian.org/debian/pool/main/e/execline/libexecline2.9_${DEB_PV}_arm64.deb
	)
"

LICENSE="ISC"
SLOT="0"
KEYWORDS="amd64 arm64"

RDEPEND="
	dev-libs/skalibs-bin
	sys-libs/glibc-bin
"

src_install() {
	cf-deb_install usr/bin/execlineb usr/lib/execline "usr/lib/$(cf-deb_multiarch)"
}
