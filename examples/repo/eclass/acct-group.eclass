# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: acct-group.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: a system group, written into ROOT's /etc/group
# @DESCRIPTION:
# A small stand-in for Gentoo's acct-group.eclass with the same variables.
# Like Gentoo's, it adds the group to ${EROOT}/etc/group (and gshadow when
# present) in pkg_preinst, so an image built with ROOT=<dir> gets it. It
# needs no groupadd: the line is appended with shell, once.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_ACCT_GROUP_ECLASS} ]]; then
_ACCT_GROUP_ECLASS=1

inherit cf-account

# @ECLASS_VARIABLE: ACCT_GROUP_NAME
# @DESCRIPTION:
# The name of the group; defaults to PN.
: "${ACCT_GROUP_NAME:=${PN}}"

# @ECLASS_VARIABLE: ACCT_GROUP_ID
# @REQUIRED
# @DESCRIPTION:
# The fixed numeric id of the group.

DESCRIPTION="System group: ${ACCT_GROUP_NAME}"
SLOT="0"
KEYWORDS="amd64 arm64"
S="${WORKDIR}"

# @FUNCTION: acct-group_pkg_preinst
# @DESCRIPTION:
# Add the group to ROOT's /etc/group unless a group of that name exists.
acct-group_pkg_preinst() {
	[[ -n ${ACCT_GROUP_ID} ]] || die "${ECLASS}: ACCT_GROUP_ID is not set"
	cf-account_add "group" "${ACCT_GROUP_NAME}" "${ACCT_GROUP_NAME}:x:${ACCT_GROUP_ID}:"
	cf-account_add "gshadow" "${ACCT_GROUP_NAME}" "${ACCT_GROUP_NAME}:!::" optional
}

fi

EXPORT_FUNCTIONS pkg_preinst
