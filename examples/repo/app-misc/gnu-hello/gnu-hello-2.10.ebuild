# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

MY_P="hello-${PV}"
DESCRIPTION="GNU's program that prints a friendly greeting"
HOMEPAGE="https://www.gnu.org/software/hello/"
SRC_URI="mirror://gnu/hello/${MY_P}.tar.gz"
S="${WORKDIR}/${MY_P}"

LICENSE="GPL-3+"
SLOT="0"
KEYWORDS="amd64"
IUSE="nls"

src_configure() {
	econf $(use_enable nls)
}
