# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: cf-account.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: add lines to ROOT's account databases without shadow's tools
# @DESCRIPTION:
# Shared by acct-user, acct-group and sys-apps/baselayout: an image root
# has no useradd, so entries are appended with shell, idempotently.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_CF_ACCOUNT_ECLASS} ]]; then
_CF_ACCOUNT_ECLASS=1

# @FUNCTION: cf-account_add
# @USAGE: <file under /etc> <name> <line> [optional]
# @DESCRIPTION:
# Append line to ${EROOT}/etc/<file> unless an entry for name is there.
# With "optional", do nothing when the file does not exist.
cf-account_add() {
	local file="${EROOT}/etc/$1" name=$2 line=$3 optional=$4
	if [[ ! -e ${file} ]]; then
		[[ -n ${optional} ]] && return 0
		mkdir -p "${EROOT}/etc" || die
		touch "${file}" || die
	fi
	if ! awk -F: -v n="${name}" '$1 == n { found = 1 } END { exit !found }' "${file}"; then
		echo "${line}" >> "${file}" || die "cannot write ${file}"
		einfo "Added ${name} to ${file}"
	fi
}

fi
