# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit savedconfig toolchain-funcs

DESCRIPTION="Many common UNIX utilities in one small executable"
HOMEPAGE="https://busybox.net/"
SRC_URI="https://busybox.net/downloads/${P}.tar.bz2"

LICENSE="GPL-2"
SLOT="0"
KEYWORDS="amd64"
IUSE="make-symlinks static"

RDEPEND="!sys-apps/busybox-bin"

# The default configuration (without USE=savedconfig): busybox's
# allnoconfig with these options turned on, a shell and the tools that
# scripts and health checks of an image need. Kept small on purpose.
BUSYBOX_OPTIONS=(
	BUSYBOX PLATFORM_LINUX LFS
	SH_IS_ASH ASH ASH_ECHO ASH_PRINTF ASH_TEST FEATURE_SH_MATH
	CAT CHMOD CP ECHO ENV FALSE GREP HEAD ID LN LS MKDIR MV PRINTF PWD
	RM RMDIR SED SLEEP TEST TOUCH TRUE UNAME WC WGET
	INSTALL_APPLET_SYMLINKS
)

# @FUNCTION: busybox_config
# @USAGE: <y|n> <option>...
# @DESCRIPTION:
# Set each CONFIG_<option> of .config to y, or to "not set" for n.
busybox_config() {
	local value=$1 option
	shift
	for option in "$@"; do
		sed -i -e "/^CONFIG_${option}=/d" -e "/^# CONFIG_${option} is not set$/d" .config || die
		if [[ ${value} == y ]]; then
			echo "CONFIG_${option}=y"
		else
			echo "# CONFIG_${option} is not set"
		fi >> .config || die
	done
}

# @FUNCTION: busybox_make
# @DESCRIPTION:
# Run busybox's make with the CHOST toolchain and the build's flags.
busybox_make() {
	emake V=1 \
		CROSS_COMPILE="${CHOST}-" CC="$(tc-getCC)" AR="$(tc-getAR)" NM="$(tc-getNM)" \
		STRIP="$(tc-getSTRIP)" HOSTCC="$(tc-getBUILD_CC)" \
		CFLAGS="${CFLAGS}" LDFLAGS="${LDFLAGS}" SKIP_STRIP=y "$@"
}

src_configure() {
	if use savedconfig; then
		restore_config .config
	else
		busybox_make allnoconfig
		busybox_config y "${BUSYBOX_OPTIONS[@]}"
	fi
	busybox_config "$(usex static y n)" STATIC
	# Settle what the edits changed: new sub-options take their defaults.
	yes "" | busybox_make oldconfig > /dev/null || die "make oldconfig failed"
}

src_compile() {
	busybox_make busybox
}

src_install() {
	into /
	dobin busybox
	if use make-symlinks; then
		# busybox's installer: a relative symlink per applet, where the applet belongs.
		busybox_make CONFIG_PREFIX="${ED}" install
		# it installs the binary again; a top-level linuxrc would be an initramfs name
		rm -f "${ED}/linuxrc" || die
	fi
	save_config .config
}
