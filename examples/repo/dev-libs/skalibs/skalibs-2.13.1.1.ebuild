# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit toolchain-funcs

DESCRIPTION="The skarnet.org C library, the base of s6 and execline"
HOMEPAGE="https://skarnet.org/software/skalibs/"
SRC_URI="https://skarnet.org/software/${PN}/${P}.tar.gz"

LICENSE="ISC"
SLOT="0/$(ver_cut 1-2)"
KEYWORDS="amd64"
IUSE="static-libs"

src_configure() {
	tc-export AR CC RANLIB STRIP
	# skarnet's own configure script, not autoconf's: no econf. Named with the
	# CHOST, the target differs from the compiler's own triplet, so configure
	# treats the build as a cross build, which cannot probe /dev/urandom:
	# every Linux system has it.
	./configure \
		--target="${CHOST}" \
		--prefix="${EPREFIX}/usr" \
		--dynlibdir="${EPREFIX}/usr/$(get_libdir)" \
		--libdir="${EPREFIX}/usr/$(get_libdir)/${PN}" \
		--sysdepdir="${EPREFIX}/usr/$(get_libdir)/${PN}" \
		--enable-shared \
		--with-sysdep-devurandom=yes \
		$(use_enable static-libs static) \
		|| die "configure failed"
}
