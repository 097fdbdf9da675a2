# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

# @ECLASS: toolchain-funcs.eclass
# @MAINTAINER:
# chrootforge test world <world@chrootforge.invalid>
# @SUPPORTED_EAPIS: 8
# @BLURB: the names of the compiler and binutils for CHOST (and CBUILD)
# @DESCRIPTION:
# A small stand-in for Gentoo's toolchain-funcs.eclass, with the same
# function names for the part the cfworld ebuilds use. tc-get<TOOL> prints
# the tool to call for CHOST: the variable of that name when the user set
# it (CC, AR, ...), else ${CHOST}-<program>, the names gcc-config and
# binutils-config give a Gentoo stage; the variable is exported too, so
# that build systems which read it find the same tool.

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ -z ${_TOOLCHAIN_FUNCS_ECLASS} ]]; then
_TOOLCHAIN_FUNCS_ECLASS=1

# @FUNCTION: _tc-get
# @INTERNAL
# @USAGE: <variable> <program> [prefix]
# @DESCRIPTION:
# Export <variable> (keeping a value the user gave) and print it.
_tc-get() {
	local var=$1 prog=$2 prefix=${3-${CHOST}}
	[[ -n ${prefix} ]] && prefix+=-
	if [[ -z ${!var} ]]; then
		export "${var}=${prefix}${prog}"
	fi
	echo "${!var}"
}

# @FUNCTION: tc-getCC
# @DESCRIPTION:
# The C compiler for CHOST.
tc-getCC() { _tc-get CC gcc; }
# @FUNCTION: tc-getCPP
# @DESCRIPTION:
# The C preprocessor for CHOST.
tc-getCPP() { _tc-get CPP cpp; }
# @FUNCTION: tc-getCXX
# @DESCRIPTION:
# The C++ compiler for CHOST.
tc-getCXX() { _tc-get CXX g++; }
# @FUNCTION: tc-getAR
# @DESCRIPTION:
# The archiver for CHOST.
tc-getAR() { _tc-get AR ar; }
# @FUNCTION: tc-getAS
# @DESCRIPTION:
# The assembler for CHOST.
tc-getAS() { _tc-get AS as; }
# @FUNCTION: tc-getLD
# @DESCRIPTION:
# The linker for CHOST.
tc-getLD() { _tc-get LD ld; }
# @FUNCTION: tc-getNM
# @DESCRIPTION:
# The symbol lister for CHOST.
tc-getNM() { _tc-get NM nm; }
# @FUNCTION: tc-getRANLIB
# @DESCRIPTION:
# The archive indexer for CHOST.
tc-getRANLIB() { _tc-get RANLIB ranlib; }
# @FUNCTION: tc-getSTRIP
# @DESCRIPTION:
# The strip program for CHOST.
tc-getSTRIP() { _tc-get STRIP strip; }
# @FUNCTION: tc-getOBJCOPY
# @DESCRIPTION:
# The objcopy program for CHOST.
tc-getOBJCOPY() { _tc-get OBJCOPY objcopy; }
# @FUNCTION: tc-getREADELF
# @DESCRIPTION:
# The readelf program for CHOST.
tc-getREADELF() { _tc-get READELF readelf; }

# @FUNCTION: tc-getBUILD_CC
# @DESCRIPTION:
# The C compiler for programs that run during the build (CBUILD).
tc-getBUILD_CC() { _tc-get BUILD_CC gcc "${CBUILD:-${CHOST}}"; }

# @FUNCTION: tc-is-cross-compiler
# @DESCRIPTION:
# True when the programs built run on another system than the build.
tc-is-cross-compiler() {
	[[ ${CBUILD:-${CHOST}} != "${CHOST}" ]]
}

# @FUNCTION: tc-export
# @USAGE: <variable>...
# @DESCRIPTION:
# Export each named tool variable (CC, AR, ...) with its CHOST value.
tc-export() {
	local var
	for var in "$@"; do
		[[ $(type -t "tc-get${var}") == function ]] || die "tc-export: unknown tool ${var}"
		"tc-get${var}" > /dev/null
	done
}

fi
