# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

# Installed into the build system itself, it would replace the system's own files.
CF_DEB_ROOT_ONLY=1

inherit cf-deb

DEB_PV="2.36-9+deb12u14"
DESCRIPTION="The GNU C library runtime (loader and shared libraries), from Debian's libc6"
HOMEPAGE="https://www.gnu.org/software/libc/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/g/glibc/libc6_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/g/glibc/libc6_${DEB_PV}_arm64.deb
	)
"

LICENSE="LGPL-2.1+ GPL-2"
SLOT="0"
KEYWORDS="amd64 arm64"

src_install() {
	# The loader, the shared libraries and the NSS modules; not gconv, locales or tools.
	# The loader's path is the one the arch's ABI fixes (PT_INTERP of every program).
	cf-deb_install "lib/$(cf-deb_multiarch)" etc/ld.so.conf.d
	case ${ARCH} in
		amd64) cf-deb_install lib64 ;;
		arm64) cf-deb_install lib/ld-linux-aarch64.so.1 ;;
	esac
	insinto /etc
	newins - nsswitch.conf <<-EOF
		passwd: files
		group: files
		shadow: files
		hosts: files dns
	EOF
	# Debian's own library directories (multiarch) are listed in ld.so.conf.d: env-update
	# puts this include into /etc/ld.so.conf.
	newenvd - 00glibc <<-EOF
		LDPATH="include ld.so.conf.d/*.conf"
	EOF
}
