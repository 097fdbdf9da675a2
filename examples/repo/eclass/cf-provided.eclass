# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: cf-provided.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: a package of the build system's own toolchain, never built here
# @DESCRIPTION:
# The test world's stage is a Debian system: its compiler, binutils, make
# and C library are Debian's, installed by dpkg. The stage lists them in
# /etc/portage/profile/package.provided, so emerge takes them as installed;
# these ebuilds exist so that the profile's @system set and dependencies can
# name them. Building one is refused, before anything is fetched.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_CF_PROVIDED_ECLASS} ]]; then
_CF_PROVIDED_ECLASS=1

SLOT="0"
KEYWORDS="amd64 arm64"
S="${WORKDIR}"

# @FUNCTION: cf-provided_pkg_pretend
# @DESCRIPTION:
# Refuse to build: the stage provides this package.
cf-provided_pkg_pretend() {
	die "${CATEGORY}/${PN} is the stage's own (listed in /etc/portage/profile/package.provided): this repository does not build it"
}

fi

EXPORT_FUNCTIONS pkg_pretend
