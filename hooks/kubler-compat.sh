#!/bin/sh
# Stock hook (configure_builder) of namespaces written by `chrootforge import kubler`: kubler's
# helpers, with their meanings inside chrootforge's build sandbox (docs/import.md).
#
# Run as a hook, it installs itself as the library that the imported kubler.sh hooks source
# (/usr/local/lib/chrootforge/kubler-compat.sh in the builder; nothing of it reaches the image), and
# kubler's sed-or-die script as /usr/local/bin/sed-or-die. Sourced by bash (KUBLER_COMPAT_LIB=1),
# it defines kubler's helpers and variables.
if [ "${KUBLER_COMPAT_LIB:-}" != 1 ]; then
	set -eu
	mkdir -p /usr/local/lib/chrootforge /usr/local/bin /var/lib/chrootforge-kubler
	cp "$0" /usr/local/lib/chrootforge/kubler-compat.sh
	cat >/usr/local/bin/sed-or-die <<'SED_OR_DIE'
#!/bin/sh
# sed-or-die REGEX REPLACEMENT FILE [DELIMITER]: replace every match of REGEX (a sed basic regular
# expression) in FILE, and fail when there is none (exit 3) or no FILE (exit 5). DELIMITER is the
# s command's separator, % unless given.
if [ "$#" -ne 3 ] && [ "$#" -ne 4 ]; then
	echo "usage: sed-or-die REGEX REPLACEMENT FILE [DELIMITER]" >&2
	exit 1
fi
d=${4:-%}
if [ ! -f "$3" ]; then
	echo "sed-or-die: no such file: $3" >&2
	exit 5
fi
if ! grep -q -e "$1" "$3"; then
	echo "sed-or-die: no match for '$1' in $3" >&2
	exit 3
fi
exec sed -i "s$d$1$d$2${d}g" "$3"
SED_OR_DIE
	chmod 755 /usr/local/bin/sed-or-die
	# kubler's containers keep downloads in /distfiles; chrootforge binds its distfiles cache here
	if [ ! -e /distfiles ]; then ln -s /var/cache/distfiles /distfiles; fi
	exit 0
fi

# -- the library (bash) ------------------------------------------------------------------------
_LIB=$(portageq envvar "LIBDIR_$(portageq envvar ARCH 2>/dev/null)" 2>/dev/null || true)
_LIB=${_LIB:-lib64}
_EMERGE_ROOT=/emerge-root
_CONFIG=/config
_ROOTFS_BACKUP=/backup-rootfs
_PACKAGE_INSTALLED=$_ROOTFS_BACKUP/package.installed
_DOC_PACKAGE_INSTALLED=$_ROOTFS_BACKUP/doc.package.installed
_DOC_PACKAGE_PROVIDED=$_ROOTFS_BACKUP/doc.package.provided
_DOC_FOOTER_PURGED=$_ROOTFS_BACKUP/doc.footer.purged
_DOC_FOOTER_INCLUDES=$_ROOTFS_BACKUP/doc.footer.includes
_PORTAGE_LOGDIR=$_CONFIG/log
_emerge_bin=emerge
_emerge_opt=
_kubler_state=/var/lib/chrootforge-kubler
export DISTDIR=${DISTDIR:-/var/cache/distfiles}
export EMERGE_DEFAULT_OPTS="${EMERGE_DEFAULT_OPTS:---usepkg --binpkg-respect-use=y}"
mkdir -p "$_ROOTFS_BACKUP" "$_kubler_state"

_kubler_note() { echo "kubler-compat: $*"; }

die() {
	echo "fatal: $1" >&2
	exit "${2:-1}"
}

# -- calls chrootforge applies as spec keys are not made again -----------------------------------
declare -A _kubler_applied=()
kubler_applied() {
	local site
	for site in "$@"; do _kubler_applied[$site]=1; done
}
# true (and a note) when the helper call that called us became a spec key
_kubler_is_key() {
	local site="${FUNCNAME[2]-}:${BASH_LINENO[1]-}:${FUNCNAME[1]}"
	if [[ -n ${_kubler_applied[$site]-} ]]; then
		_kubler_note "${BASH_SOURCE[2]##*/}:${BASH_LINENO[1]} ${FUNCNAME[1]}: a spec key of the image now"
		return 0
	fi
	return 1
}

# -- portage settings ----------------------------------------------------------------------------
# update_use [ATOM] +flag -flag ...: flaggie's syntax as kubler uses it. Keyword tokens (~arch,
# arch, **, or kw::...) go to package.accept_keywords, the others (or use::...) to package.use.
update_use() {
	_kubler_is_key && return 0
	_kubler_flags "$@"
}
update_keywords() {
	_kubler_is_key && return 0
	_kubler_flags "$@"
}
_kubler_flags() {
	local atom="*/*" token op word use=() kw=()
	if [[ $# -gt 0 && ${1:0:1} != [+-] ]]; then
		atom=$1
		shift
	fi
	for token in "$@"; do
		op=${token:0:1} word=${token:1}
		[[ $op == [+-] && -n $word ]] || die "update_use: '$token': use +flag or -flag"
		[[ $op == + ]] && op=
		case $word in
		use::*) use+=("$op${word#use::}") ;;
		kw::*) kw+=("$op${word#kw::}") ;;
		'~'* | '**' | '*' | alpha | amd64 | arm | arm64 | hppa | ia64 | loong | m68k | mips | ppc | ppc64 | riscv | s390 | sparc | x86)
			kw+=("$op$word")
			;;
		*) use+=("$op$word") ;;
		esac
	done
	mkdir -p /etc/portage/package.use /etc/portage/package.accept_keywords
	[[ ${#use[@]} -gt 0 ]] && echo "$atom ${use[*]}" >>/etc/portage/package.use/zz-kubler
	[[ ${#kw[@]} -gt 0 ]] && echo "$atom ${kw[*]}" >>/etc/portage/package.accept_keywords/zz-kubler
	return 0
}

mask_package() {
	_kubler_is_key && return 0
	mkdir -p /etc/portage/package.mask
	echo "$1" >>/etc/portage/package.mask/zz-kubler
}

unmask_package() {
	_kubler_is_key && return 0
	mkdir -p /etc/portage/package.unmask
	echo "$1" >>/etc/portage/package.unmask/zz-kubler
}

unmask_use() {
	mkdir -p /etc/portage/profile
	echo "$1 -$2" >>/etc/portage/profile/package.use.mask
}

provide_package() {
	_kubler_is_key && return 0
	local atom best file=/etc/portage/profile/package.provided
	mkdir -p /etc/portage/profile
	touch "$file"
	for atom in "$@"; do
		grep -q "^$atom" "$file" && continue
		best=$(portageq best_visible / "$atom") || die "provide_package: no visible version of $atom"
		[[ -n $best ]] || die "provide_package: no visible version of $atom"
		echo "$best" >>"$file"
	done
}

unprovide_package() {
	_kubler_is_key && return 0
	local atom file=/etc/portage/profile/package.provided
	[[ -f $file ]] || return 0
	for atom in "$@"; do
		sed -i "/^${atom//\//\\/}/d" "$file"
	done
}

uninstall_package() {
	_kubler_is_key && return 0
	emerge --unmerge "$@"
}

# -- the image root -------------------------------------------------------------------------------
_kubler_copy_libs() {
	local lib found
	mkdir -p "$_EMERGE_ROOT/$_LIB"
	for lib in "$@"; do
		found=$(find /usr/lib/gcc /usr/lib /usr/lib64 -name "$lib" -print -quit 2>/dev/null)
		[[ -n $found ]] || die "no $lib in the builder"
		cp -L "$found" "$_EMERGE_ROOT/$_LIB/"
	done
}
copy_gcc_libs() {
	_kubler_is_key && return 0
	_kubler_copy_libs libgcc_s.so.1 libgomp.so.1 libstdc++.so.6
}
copy_gfortran_libs() {
	_kubler_is_key && return 0
	_kubler_copy_libs libgfortran.so.5 libquadmath.so.0
}

get_file_mod_stamp() {
	__get_file_mod_stamp=$(stat -c %Y "$1")
}

copy_from_builder_if_changed() {
	local target
	get_file_mod_stamp "$1"
	if [[ $2 -lt $__get_file_mod_stamp ]]; then
		target=$(dirname "$_EMERGE_ROOT/$1")
		mkdir -p "$target"
		cp -f "$1" "$target"
	fi
}

get_package_version() {
	__get_package_version=$(portageq best_version "${ROOT:-/}" "$1") || die "no installed $1"
}

extract_build_dependencies() {
	_kubler_note "extract_build_dependencies: chrootforge keeps no parent headers or static libraries"
}

# -- downloads and repositories -------------------------------------------------------------------
download_file() {
	local url=$1 name=${2:-}
	shift
	[[ $# -gt 0 ]] && shift
	[[ -n $name ]] || name=${url##*/}
	__download_file=$DISTDIR/$name
	[[ -f $__download_file ]] && return 0
	if command -v curl >/dev/null; then
		curl -fL "$url" "$@" --output "$__download_file.part" || handle_download_error "$__download_file.part"
	elif command -v wget >/dev/null; then
		wget -O "$__download_file.part" "$url" || handle_download_error "$__download_file.part"
	else
		die "download_file: neither curl nor wget in the builder, and $name is not in the distfiles cache"
	fi
	mv "$__download_file.part" "$__download_file"
}

handle_download_error() {
	rm -f "$1"
	die "${2:-download of $1 failed (is [build] network = \"host\"?)}"
}

download_from_oracle() {
	download_file "$1" '' --cookie 'oraclelicense=accept-securebackup-cookie'
	__download_from_oracle=$__download_file
}

add_patch() {
	local dir=/etc/portage/patches/$1 name=${3:-}
	mkdir -p "$dir"
	[[ -n $name ]] || name=${2##*/}
	[[ $name == *.patch || $name == *.diff ]] || name+=.patch
	download_file "$2" "$name"
	cp "$__download_file" "$dir/"
}

is_installed_overlay() {
	portageq get_repos / | tr ' ' '\n' | grep -qx "$1" && return 0
	return 3
}

add_overlay() {
	is_installed_overlay "$1" && return 0
	if command -v eselect >/dev/null && eselect repository list >/dev/null 2>&1; then
		if [[ -z ${2:-} ]]; then eselect repository enable "$1"; else eselect repository add "$1" "${3:-git}" "$2"; fi
		emaint sync -r "$1"
		return 0
	fi
	die "add_overlay: repository $1 is not bound; check it out and name it in chrootforge.toml: [repos] $1 = \"PATH\""
}

install_oci_deps() { die "install_oci_deps: not supported (it built rkt tools from the network)"; }

# -- kubler's bookkeeping of PACKAGES.md: chrootforge writes an SBOM instead -----------------------
fix_portage_profile_symlink() { _kubler_note "fix_portage_profile_symlink: the profile is chrootforge's ([tree] profile)"; }
install_git_postsync_hooks() { :; }
init_docs() { :; }
generate_doc_package_installed() { :; }
generate_package_installed() { :; }
generate_documentation() { :; }
generate_documentation_footer() { :; }
write_checkbox_line() { :; }
log_as_installed() { :; }
sed-or-die() { /usr/local/bin/sed-or-die "$@"; }

# -- what kubler.sh calls ---------------------------------------------------------------------------
# kubler_begin ID [replay]: a fresh /config for the image's files, and kubler's variables for it.
# "replay": the configure_builder hook of a builder or of an image up the chain, run again in a
# descendant's build; kubler ran it once, in the build of its own image, and what it put in that
# image's root is in the parent already, so its _EMERGE_ROOT is a throwaway directory.
kubler_begin() {
	BOB_CURRENT_TARGET=$1
	export BOB_CURRENT_TARGET
	if [[ ${2:-} == replay ]]; then
		_EMERGE_ROOT=/var/tmp/chrootforge-kubler-replay
		rm -rf "$_EMERGE_ROOT"
		mkdir -p "$_EMERGE_ROOT"
	fi
	rm -rf "$_CONFIG"
	mkdir -p "$_CONFIG"
}

# kubler_file PATH MODE: a file of the image folder, from stdin (kubler_file_b64: base64 on stdin)
kubler_file() {
	mkdir -p "$(dirname "$_CONFIG/$1")"
	cat >"$_CONFIG/$1"
	chmod "$2" "$_CONFIG/$1"
}
kubler_file_b64() {
	mkdir -p "$(dirname "$_CONFIG/$1")"
	base64 -d >"$_CONFIG/$1"
	chmod "$2" "$_CONFIG/$1"
}
kubler_link() {
	mkdir -p "$(dirname "$_CONFIG/$1")"
	ln -sfn "$2" "$_CONFIG/$1"
}

# The builder's /etc/passwd and /etc/group times when the image's build started: kubler copied them
# into the image when the build changed them (users made in the builder by a hook).
kubler_stamp() {
	stat -c %Y /etc/passwd >"$_kubler_state/passwd" 2>/dev/null || echo 0 >"$_kubler_state/passwd"
	stat -c %Y /etc/group >"$_kubler_state/group" 2>/dev/null || echo 0 >"$_kubler_state/group"
}
kubler_sync_users() {
	local file
	for file in passwd group; do
		[[ -f $_kubler_state/$file && -f /etc/$file ]] || continue
		copy_from_builder_if_changed "/etc/$file" "$(cat "$_kubler_state/$file")"
	done
}

# kubler_hook FUNCTION: source build.sh and run one of its hook functions as kubler did (set -e)
kubler_hook() {
	set -e
	# shellcheck disable=SC1091
	source "$_CONFIG/build.sh"
	"$1"
}

# kubler_emerge ATOM...: packages of _packages that are not category/name atoms
kubler_emerge() {
	ROOT=$_EMERGE_ROOT emerge --verbose "$@"
}

# Dockerfile.template steps, in the finish_rootfs phase: RUN chrooted into the image root with the
# environment docker build gave it; COPY and ADD from the image folder; WORKDIR made.
# kubler_run USER WORKDIR NAME=VALUE... -- COMMAND ARG...
kubler_run() {
	local user=$1 workdir=${2:-/} envs=() chroot_bin
	shift 2
	while [[ $# -gt 0 && $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	chroot_bin=$(command -v chroot) || die "RUN: no chroot in the builder"
	local args=()
	[[ -n $user ]] && args+=("--userspec=$user")
	mkdir -p "$_EMERGE_ROOT$workdir"
	env -i HOME=/root "${envs[@]}" "$chroot_bin" "${args[@]}" "$_EMERGE_ROOT" \
		/bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "$@"
}

kubler_copy() {
	local how=$1 chown=$2 dest=$3
	shift 3
	local src target
	[[ $dest == /* ]] || dest=/$dest
	for src in "$@"; do
		for src in "$_CONFIG"/$src; do
			[[ -e $src ]] || die "$how: $src is not in the image folder"
			if [[ -d $src ]]; then
				mkdir -p "$_EMERGE_ROOT$dest"
				cp -R -P --preserve=mode "$src/." "$_EMERGE_ROOT$dest/"
				target=$_EMERGE_ROOT$dest
			elif [[ $how == ADD ]] && tar -tf "$src" >/dev/null 2>&1; then
				mkdir -p "$_EMERGE_ROOT$dest"
				tar -xf "$src" -C "$_EMERGE_ROOT$dest"
				target=$_EMERGE_ROOT$dest
			elif [[ $dest == */ || $# -gt 1 ]]; then
				mkdir -p "$_EMERGE_ROOT$dest"
				cp -P --preserve=mode "$src" "$_EMERGE_ROOT$dest"
				target=$_EMERGE_ROOT$dest/${src##*/}
			else
				mkdir -p "$(dirname "$_EMERGE_ROOT$dest")"
				cp -P --preserve=mode "$src" "$_EMERGE_ROOT$dest"
				target=$_EMERGE_ROOT$dest
			fi
			if [[ -n $chown ]]; then
				chroot "$_EMERGE_ROOT" chown -R "$chown" "${target#"$_EMERGE_ROOT"}"
			fi
		done
	done
}
