# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-deb

DEB_PV="12.2.0-14+deb12u1"
DESCRIPTION="GCC's runtime libraries (libgcc_s, libstdc++), from Debian, placed as by gcc"
HOMEPAGE="https://gcc.gnu.org/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/g/gcc-12/libgcc-s1_${DEB_PV}_amd64.deb
		https://deb.debian.org/debian/pool/main/g/gcc-12/libstdc++6_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/g/gcc-12/libgcc-s1_${DEB_PV}_arm64.deb
		https://deb.debian.org/debian/pool/main/g/gcc-12/libstdc++6_${DEB_PV}_arm64.deb
	)
"

LICENSE="GPL-3+ gcc-runtime-library-exception-3.1"
SLOT="12"
KEYWORDS="amd64 arm64"

src_install() {
	# Gentoo's gcc keeps its runtime libraries in its own versioned directory, off the
	# default library path; so does this one (and it leaves the builder's own copies alone).
	insinto "/usr/lib/gcc/${CHOST}/${SLOT}"
	doins "lib/$(cf-deb_multiarch)/libgcc_s.so.1" "usr/lib/$(cf-deb_multiarch)/libstdc++.so.6.0.30"
	dosym libstdc++.so.6.0.30 "/usr/lib/gcc/${CHOST}/${SLOT}/libstdc++.so.6"
}
