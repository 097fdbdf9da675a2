# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

DESCRIPTION="A queue for hello: files owned by its user and group, a setgid client"
HOMEPAGE="https://example.invalid/chrootforge"
S="${WORKDIR}"

LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"

# src_install resolves owner names against the build system's accounts, where
# hello does not exist (its account is in ROOT only): it uses the ids, and
# pkg_preinst, which resolves names against ROOT, the names.
RDEPEND="acct-user/hello"

src_install() {
	# A client that writes into the queue: setgid hello (after the owner, which clears it).
	exeinto /usr/bin
	newexe - hello-queue <<-'EOF'
		#!/bin/sh
		umask 007
		printf '%s\n' "${1:-ping}" > "/var/spool/hello/msg.$$"
	EOF
	fowners 0:701 /usr/bin/hello-queue
	fperms 2755 /usr/bin/hello-queue

	# Its configuration, for the group only (doins with owner options).
	insinto /etc/hello
	insopts -m 0640 -o 0 -g 701
	newins - queue.conf <<-'EOF'
		spool=/var/spool/hello
	EOF

	keepdir /var/spool/hello
}

pkg_preinst() {
	# By name in ROOT, as Gentoo's acct-user.eclass owns a home directory.
	fowners hello:hello /var/spool/hello
	fperms 3770 /var/spool/hello
}

pkg_postinst() {
	# State made at install time, straight in ROOT.
	mkdir -p "${EROOT}"/var/lib/hello-queue || die
	touch "${EROOT}"/var/lib/hello-queue/state || die
	chown 701:701 "${EROOT}"/var/lib/hello-queue "${EROOT}"/var/lib/hello-queue/state || die
}
