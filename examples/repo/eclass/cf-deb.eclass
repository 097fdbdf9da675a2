# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: cf-deb.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: install files from Debian binary packages
# @DESCRIPTION:
# The -bin packages of the cfworld repository repackage Debian .deb files.
# src_unpack extracts the data member of every .deb in A into S with ar
# and tar; cf-deb_install copies chosen paths from S into ED, owned by root.
# Prebuilt binaries are neither stripped nor QA-checked.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_CF_DEB_ECLASS} ]]; then
_CF_DEB_ECLASS=1

# @ECLASS_VARIABLE: CF_DEB_ROOT_ONLY
# @PRE_INHERIT
# @DEFAULT_UNSET
# @DESCRIPTION:
# Set it before inherit in packages that would overwrite files of the build
# system (the C library, /bin/sh): pkg_pretend then refuses ROOT=/.

# @ECLASS_VARIABLE: QA_PREBUILT
# @INTERNAL
# @DESCRIPTION:
# Every installed file is a prebuilt Debian binary: skip the QA checks.
QA_PREBUILT="*"

RESTRICT="strip"
S="${WORKDIR}/image"

# @FUNCTION: cf-deb_src_unpack
# @DESCRIPTION:
# Extract data.tar.* of each .deb distfile into S.
cf-deb_src_unpack() {
	local deb data
	mkdir -p "${S}" || die
	for deb in ${A}; do
		[[ ${deb} == *.deb ]] || die "${ECLASS}: ${deb} is not a .deb"
		mkdir "${T}/deb" || die
		pushd "${T}/deb" >/dev/null || die
		ar x "${DISTDIR}/${deb}" || die "ar x ${deb} failed"
		data=( data.tar* )
		[[ -f ${data[0]} ]] || die "${deb} has no data member"
		tar -xf "${data[0]}" -C "${S}" || die "unpacking ${deb} failed"
		popd >/dev/null || die
		rm -r "${T}/deb" || die
	done
}

# @FUNCTION: cf-deb_install
# @USAGE: <path>...
# @DESCRIPTION:
# Copy each path (relative to S) to the same place under ED, keeping
# symlinks and modes, with root ownership.
cf-deb_install() {
	[[ $# -gt 0 ]] || die "${FUNCNAME}: no paths given"
	local path
	for path in "$@"; do
		[[ -e ${S}/${path} || -L ${S}/${path} ]] || die "${FUNCNAME}: ${path} is not in the package"
		mkdir -p "${ED}/$(dirname "${path}")" || die
		cp -R --no-preserve=ownership "${S}/${path}" "${ED}/${path}" || die
	done
	chown -R 0:0 "${ED}" || die
}

# @FUNCTION: cf-deb_multiarch
# @DESCRIPTION:
# Echo Debian's multiarch tuple for ARCH: the directory under lib/ and
# usr/lib/ where the .debs keep their libraries.
cf-deb_multiarch() {
	case ${ARCH} in
		amd64) echo x86_64-linux-gnu ;;
		arm64) echo aarch64-linux-gnu ;;
		*) die "${ECLASS}: no Debian multiarch tuple known for ARCH=${ARCH}" ;;
	esac
}

# @FUNCTION: cf-deb_pkg_pretend
# @DESCRIPTION:
# Refuse to install into the builder itself (ROOT=/) when CF_DEB_ROOT_ONLY
# is set: those packages would overwrite the builder's own C library or shell.
cf-deb_pkg_pretend() {
	if [[ -n ${CF_DEB_ROOT_ONLY} && ${MERGE_TYPE} != buildonly && -z ${ROOT%/} ]]; then
		die "${CATEGORY}/${PN} replaces files of the build system: install it with ROOT=<dir> only"
	fi
}

fi

EXPORT_FUNCTIONS src_unpack pkg_pretend
