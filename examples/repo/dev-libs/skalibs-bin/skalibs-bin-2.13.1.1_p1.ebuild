# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-deb

DEB_PV="2.13.1.1-1"
DESCRIPTION="The skarnet.org C library, shared (from Debian's libskarnet2.13)"
HOMEPAGE="https://skarnet.org/software/skalibs/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/s/skalibs/libskarnet2.13_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/s/skalibs/libskarnet2.13_${DEB_PV}_arm64.deb
	)
"

LICENSE="ISC"
SLOT="0"
KEYWORDS="amd64 arm64"

RDEPEND="sys-libs/glibc-bin"

src_install() {
	cf-deb_install "usr/lib/$(cf-deb_multiarch)"
}
