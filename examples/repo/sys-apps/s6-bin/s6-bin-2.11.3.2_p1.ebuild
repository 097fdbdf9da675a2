# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-deb

DEB_PV="2.11.3.2-1"
DESCRIPTION="The s6 process supervision suite (from Debian's s6 and libs6-2.11)"
HOMEPAGE="https://skarnet.org/software/s6/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/s/s6/s6_${DEB_PV}_amd64.deb
		https://deb.debian.org/debian/pool/main/s/s6/libs6-2.11_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/s/s6/s6_${DEB_PV}_arm64.deb
		https://deb.debian.org/debian/pool/main/s/s6/libs6-2.11_${DEB_PV}_arm64.deb
	)
"

LICENSE="ISC"
SLOT="0"
KEYWORDS="amd64 arm64"

RDEPEND="
	dev-lang/execline-bin
	dev-libs/skalibs-bin
	sys-libs/glibc-bin
"

src_install() {
	cf-deb_install usr/bin "usr/lib/$(cf-deb_multiarch)"
}
