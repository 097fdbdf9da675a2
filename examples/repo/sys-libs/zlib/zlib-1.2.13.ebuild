# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit toolchain-funcs

# Debian's repack of upstream's tarball (without the contrib sources that are
# not free): the file as Debian's archive names it.
DESCRIPTION="The deflate compression library"
HOMEPAGE="https://zlib.net/"
SRC_URI="https://deb.debian.org/debian/pool/main/z/zlib/zlib_${PV}.dfsg.orig.tar.bz2"
S="${WORKDIR}/zlib-${PV}.dfsg"

LICENSE="ZLIB"
SLOT="0/1"
KEYWORDS="amd64"
IUSE="static-libs"

src_configure() {
	# zlib's own configure (not autoconf): it takes the compiler from CHOST
	# and the tools from the environment.
	tc-export AR CC RANLIB
	CHOST="${CHOST}" ./configure \
		--shared \
		--prefix="${EPREFIX}/usr" \
		--libdir="${EPREFIX}/usr/$(get_libdir)" \
		--sharedlibdir="${EPREFIX}/usr/$(get_libdir)" \
		|| die "configure failed"
}

src_install() {
	emake DESTDIR="${D}" install
	einstalldocs
	if ! use static-libs; then
		rm "${ED}/usr/$(get_libdir)/libz.a" || die
	fi
}
