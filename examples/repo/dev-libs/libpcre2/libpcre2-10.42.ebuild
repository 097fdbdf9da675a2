# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

# Debian ships upstream's .tar.gz (Gentoo's SRC_URI names the .tar.bz2):
# the file as Debian's archive names it.
MY_P="pcre2-${PV}"
DESCRIPTION="Perl-compatible regular expressions, version 2"
HOMEPAGE="https://www.pcre.org/"
SRC_URI="https://deb.debian.org/debian/pool/main/p/pcre2/pcre2_${PV}.orig.tar.gz"
S="${WORKDIR}/${MY_P}"

LICENSE="BSD"
SLOT="0/3"
KEYWORDS="amd64"
IUSE="jit static-libs"

src_configure() {
	# The 8-bit library only, without the optional helpers of pcre2grep and pcre2test.
	econf \
		--enable-pcre2-8 \
		--disable-pcre2-16 \
		--disable-pcre2-32 \
		--enable-unicode \
		--disable-pcre2grep-libz \
		--disable-pcre2grep-libbz2 \
		--disable-pcre2test-libreadline \
		--disable-pcre2test-libedit \
		$(use_enable jit) \
		$(use_enable static-libs static)
}

src_install() {
	default
	find "${ED}" -name '*.la' -delete || die
}
