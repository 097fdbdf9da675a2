# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-account

DESCRIPTION="An image root's skeleton: accounts, /tmp, /root, /run, nologin, LDPATH"
HOMEPAGE="https://example.invalid/chrootforge"
S="${WORKDIR}"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64 arm64"

src_install() {
	keepdir /root /tmp /home /etc /run
	fperms 0700 /root
	fperms 1777 /tmp
	# The login shell of every system account (nobody, acct-user/*): refuses, as util-linux's does.
	exeinto /sbin
	newexe - nologin <<-EOF
		#!/bin/sh
		echo "This account is currently not available." >&2
		exit 1
	EOF
	# The library directories of this profile, for the loader: env-update writes them into
	# /etc/ld.so.conf (ldconfig then caches what is there), as Gentoo's baselayout has them.
	local dir ldpath=()
	for dir in "$(get_libdir)" lib; do
		ldpath+=( "${EPREFIX}/${dir}" "${EPREFIX}/usr/${dir}" "${EPREFIX}/usr/local/${dir}" )
	done
	newenvd - 50baselayout <<-EOF
		LDPATH="$(IFS=:; echo "${ldpath[*]}")"
	EOF
}

pkg_preinst() {
	cf-account_add group root "root:x:0:"
	cf-account_add group nogroup "nogroup:x:65534:"
	cf-account_add passwd root "root:x:0:0:root:/root:/bin/sh"
	cf-account_add passwd nobody "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin"
}
