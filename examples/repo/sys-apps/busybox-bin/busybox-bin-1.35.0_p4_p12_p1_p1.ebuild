# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

# Installed into the build system itself, it would replace the system's own files.
CF_DEB_ROOT_ONLY=1

inherit cf-deb

DEB_PV="1.35.0-4+deb12u1+b1"
DESCRIPTION="BusyBox, static, with a symlink per applet (from Debian's busybox-static)"
HOMEPAGE="https://busybox.net/"
SRC_URI="
	amd64? (
		https://deb.debian.org/debian/pool/main/b/busybox/busybox-static_${DEB_PV}_amd64.deb
	)
	arm64? (
		https://deb.debian.org/debian/pool/main/b/busybox/busybox-static_${DEB_PV}_arm64.deb
	)
"

LICENSE="GPL-2"
SLOT="0"
KEYWORDS="amd64 arm64"

RDEPEND="sys-apps/baselayout"

src_install() {
	cf-deb_install bin/busybox
	# One symlink per applet, where busybox itself says it belongs (bin/sh, usr/bin/awk, ...).
	local applet
	while read -r applet; do
		# Not busybox itself, nor the top-level linuxrc (an initramfs name).
		[[ ${applet} == bin/busybox || ${applet} != */* ]] && continue
		mkdir -p "${ED}/${applet%/*}" || die
		ln -s "$(realpath -m -s --relative-to="/${applet%/*}" /bin/busybox)" "${ED}/${applet}" || die
	done < <("${S}"/bin/busybox --list-full || die)
}
