# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

DESCRIPTION="The greeting program of the chrootforge test world, built from C"
HOMEPAGE="https://example.invalid/chrootforge"
SRC_URI="https://example.invalid/chrootforge/distfiles/${P}.tar"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64 arm64"
IUSE="static"

# Its s6 service runs as this user. The C library is not a dependency: as in
# Gentoo it comes with the system (here: the glibc image of the hierarchy).
RDEPEND="acct-user/hello"

src_compile() {
	if use static; then
		CPPFLAGS+=" -DHELLO_STATIC"
		LDFLAGS+=" -static"
	fi
	emake CC="${CC:-gcc}" CFLAGS="${CFLAGS}" CPPFLAGS="${CPPFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
	dodoc README
}
