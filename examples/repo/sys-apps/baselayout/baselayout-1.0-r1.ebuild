# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-account

DESCRIPTION="An image root's skeleton: root and nobody, /tmp, /root, /sbin/nologin"
HOMEPAGE="https://example.invalid/chrootforge"
S="${WORKDIR}"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64 arm64"

src_install() {
	keepdir /root /tmp /home /etc
	fperms 0700 /root
	fperms 1777 /tmp
	# The login shell of every system account (nobody, acct-user/*): refuses, as util-linux's does.
	exeinto /sbin
	newexe - nologin <<-EOF
		#!/bin/sh
		echo "This account is currently not available." >&2
		exit 1
	EOF
}

pkg_preinst() {
	cf-account_add group root "root:x:0:"
	cf-account_add group nogroup "nogroup:x:65534:"
	cf-account_add passwd root "root:x:0:0:root:/root:/bin/sh"
	cf-account_add passwd nobody "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin"
}
