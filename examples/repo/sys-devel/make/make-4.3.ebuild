# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-provided

DESCRIPTION="GNU make (the stage's own, provided)"
HOMEPAGE="https://www.gnu.org/software/make/"

LICENSE="GPL-3+"
