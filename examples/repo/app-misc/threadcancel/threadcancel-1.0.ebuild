# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

DESCRIPTION="Cancels a thread: glibc then loads libgcc_s.so.1, which no ELF header names"
HOMEPAGE="https://example.invalid/chrootforge"
SRC_URI="https://example.invalid/chrootforge/distfiles/${P}.tar"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64 arm64"

src_compile() {
	emake CC="${CC:-gcc}" CFLAGS="${CFLAGS}" CPPFLAGS="${CPPFLAGS}" LDFLAGS="${LDFLAGS}"
}

src_install() {
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" install
	dodoc README
}
