# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: acct-user.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: a system user, written into ROOT's /etc/passwd
# @DESCRIPTION:
# A small stand-in for Gentoo's acct-user.eclass with the same variables.
# Like Gentoo's, it adds the user to ${EROOT}/etc/passwd (and shadow when
# present) in pkg_preinst, so an image built with ROOT=<dir> gets it. The
# primary group is the first of ACCT_USER_GROUPS, whose acct-group package
# is a runtime dependency.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_ACCT_USER_ECLASS} ]]; then
_ACCT_USER_ECLASS=1

inherit cf-account

# @ECLASS_VARIABLE: ACCT_USER_NAME
# @DESCRIPTION:
# The name of the user; defaults to PN.
: "${ACCT_USER_NAME:=${PN}}"

# @ECLASS_VARIABLE: ACCT_USER_ID
# @REQUIRED
# @DESCRIPTION:
# The fixed numeric id of the user.

# @ECLASS_VARIABLE: ACCT_USER_GROUPS
# @REQUIRED
# @DESCRIPTION:
# An array of group names; the first is the primary group.

# @ECLASS_VARIABLE: ACCT_USER_HOME
# @DESCRIPTION:
# The home directory; defaults to /dev/null.
: "${ACCT_USER_HOME:=/dev/null}"

# @ECLASS_VARIABLE: ACCT_USER_SHELL
# @DESCRIPTION:
# The login shell; defaults to /sbin/nologin.
: "${ACCT_USER_SHELL:=/sbin/nologin}"

DESCRIPTION="System user: ${ACCT_USER_NAME}"
SLOT="0"
KEYWORDS="amd64 arm64"
S="${WORKDIR}"

# @FUNCTION: acct-user_add_deps
# @DESCRIPTION:
# Depend on the acct-group package of every group in ACCT_USER_GROUPS, and
# on sys-apps/baselayout for the default shell, /sbin/nologin.
# Call it in the ebuild after setting ACCT_USER_GROUPS.
acct-user_add_deps() {
	[[ ${#ACCT_USER_GROUPS[@]} -gt 0 ]] || die "${ECLASS}: set ACCT_USER_GROUPS first"
	RDEPEND+=" ${ACCT_USER_GROUPS[*]/#/acct-group/}"
	if [[ ${ACCT_USER_SHELL} == /sbin/nologin ]]; then
		RDEPEND+=" sys-apps/baselayout"
	fi
}

# @FUNCTION: acct-user_pkg_preinst
# @DESCRIPTION:
# Add the user to ROOT's /etc/passwd unless a user of that name exists.
acct-user_pkg_preinst() {
	[[ -n ${ACCT_USER_ID} ]] || die "${ECLASS}: ACCT_USER_ID is not set"
	[[ ${#ACCT_USER_GROUPS[@]} -gt 0 ]] || die "${ECLASS}: ACCT_USER_GROUPS is not set"
	local gid
	gid=$(awk -F: -v g="${ACCT_USER_GROUPS[0]}" '$1 == g { print $3 }' "${EROOT}/etc/group" 2>/dev/null)
	[[ -n ${gid} ]] || die "${ECLASS}: group ${ACCT_USER_GROUPS[0]} is not in ${EROOT}/etc/group"
	cf-account_add "passwd" "${ACCT_USER_NAME}" \
		"${ACCT_USER_NAME}:x:${ACCT_USER_ID}:${gid}:${ACCT_USER_NAME}:${ACCT_USER_HOME}:${ACCT_USER_SHELL}"
	cf-account_add "shadow" "${ACCT_USER_NAME}" "${ACCT_USER_NAME}:!:19000::::::" optional
}

fi

EXPORT_FUNCTIONS pkg_preinst
