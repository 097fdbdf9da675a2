# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: savedconfig.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: build with a configuration file the user keeps in /etc/portage
# @DESCRIPTION:
# A small stand-in for Gentoo's savedconfig.eclass, with its function
# names. With USE=savedconfig, restore_config copies the user's file from
# /etc/portage/savedconfig/ of the build system (BROOT) into the build;
# without it the ebuild makes its own default. save_config installs the
# configuration that was built under /etc/portage/savedconfig/, where the
# user can copy it from to start their own.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_SAVEDCONFIG_ECLASS} ]]; then
_SAVEDCONFIG_ECLASS=1

IUSE="savedconfig"

# @FUNCTION: restore_config
# @USAGE: <file>
# @DESCRIPTION:
# Copy the saved configuration to <file> (relative to the current
# directory). It is the first that exists of
# /etc/portage/savedconfig/${CATEGORY}/${PF}, .../${P} and .../${PN}.
# Dies when USE=savedconfig and there is none, or without USE=savedconfig.
restore_config() {
	[[ $# -eq 1 ]] || die "${FUNCNAME}: one file expected"
	use savedconfig || die "${FUNCNAME} needs USE=savedconfig"
	local base="${BROOT}/etc/portage/savedconfig/${CATEGORY}" name
	for name in "${PF}" "${P}" "${PN}"; do
		if [[ -f ${base}/${name} ]]; then
			einfo "Building with the saved configuration ${base}/${name}"
			cp "${base}/${name}" "$1" || die
			return 0
		fi
	done
	die "USE=savedconfig, but there is no ${base}/${PN} (nor ${PF}, ${P}): add one, or build with USE=-savedconfig"
}

# @FUNCTION: save_config
# @USAGE: <file>
# @DESCRIPTION:
# Install <file> as /etc/portage/savedconfig/${CATEGORY}/${PF}.
save_config() {
	[[ $# -eq 1 ]] || die "${FUNCNAME}: one file expected"
	[[ ${EBUILD_PHASE} == install ]] || die "${FUNCNAME} belongs in src_install"
	insinto "/etc/portage/savedconfig/${CATEGORY}"
	newins "$1" "${PF}"
}

fi
