# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-provided

DESCRIPTION="The GNU C library (the stage's own, provided)"
HOMEPAGE="https://www.gnu.org/software/libc/"

LICENSE="LGPL-2.1+"
