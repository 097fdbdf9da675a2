# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-provided

DESCRIPTION="The GNU compiler collection (the stage's own, provided)"
HOMEPAGE="https://gcc.gnu.org/"

LICENSE="GPL-3+"
