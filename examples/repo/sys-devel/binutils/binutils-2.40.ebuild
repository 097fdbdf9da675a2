# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit cf-provided

DESCRIPTION="The GNU assembler, linker and binary tools (the stage's own, provided)"
HOMEPAGE="https://sourceware.org/binutils/"

LICENSE="GPL-3+"
