# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit toolchain-funcs

DESCRIPTION="A greeting written with skalibs' buffer API, linked to libskarnet.so"
HOMEPAGE="https://example.invalid/chrootforge"
SRC_URI="https://example.invalid/chrootforge/distfiles/${P}.tar"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

DEPEND="dev-libs/skalibs:="
RDEPEND="${DEPEND}"

src_compile() {
	emake CC="$(tc-getCC)" CFLAGS="${CFLAGS}" CPPFLAGS="${CPPFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
}
