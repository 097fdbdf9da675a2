# The probe of `chrootforge import kubler`. chrootforge/importers/kubler/probe.py runs it in the
# sandbox: no network, a read-only root, the kubler namespace read-only at /kubler, tmpfs scratch.
#
# Nothing here parses bash. bash itself runs the namespace's kubler.conf, build.conf and build.sh,
# with recording stand-ins for kubler's helpers and with every other command missing, and this
# script reports what happened: the variables that resulted (and the file:line of the command that
# last changed each), the helper calls each hook function made (with their arguments, call site and
# the simple command bash was running), the commands the hook ran itself, and bash's own listing of
# each hook function (declare -f).
#
# Each hook is run twice, in two "runs" that differ in the build container's state: A and B give
# different values to what kubler's container computes at run time (_LIB, CHOST, ...), every
# missing command prints nothing and succeeds in A but prints a line and fails in B, and in A every
# test of the hook ([[ ]], [ ], test) is taken as true (skipped with extdebug). probe.py compares.
#
# usage: bash recorder.bash UNIT...      a UNIT is images/NAME or builder/NAME under /kubler
#        (each probe is this script again: bash recorder.bash --probe MODE RUN UNIT HOOK)
# env:   CF_KUBLER_HELPERS (the helper names), CF_KUBLER_NAMESPACE (the namespace's name)
#
# Output (stdout): records, each a field count N and N fields, every field NUL-terminated. The
# records of one probe process are framed: "frame UNIT MODE RUN HOOK STATUS STDERR SIZE", then SIZE
# bytes of that probe's own records.

_cf_ns=/kubler
_cf_budget=200000 # commands one probe may run (a loop that a forced test never ends)

_cf_emit() { printf '%s\0' "$#" "$@" >&3; }

# -- the parent: syntax checks, then one probe process per unit, mode, run and hook ---------------
_cf_parent() {
	export LC_ALL=C
	local base=/tmp/cf-probe unit msg i=0 running=0 jobs
	mkdir -p "$base" || exit 1
	exec 3>&1
	if [[ -f $_cf_ns/kubler.conf ]] && ! msg=$(bash -n "$_cf_ns/kubler.conf" 2>&1); then
		_cf_emit syntax "" kubler.conf "$msg"
		return 0
	fi
	# The units are independent: probe a few at once, then print their records in order.
	jobs=$(nproc 2>/dev/null) || jobs=1
	((jobs > 4)) && jobs=4
	for unit in "$@"; do
		i=$((i + 1))
		mkdir -p "$base/$i"
		(
			exec 3>"$base/$i/out"
			_cf_unit "$unit" "$base/$i"
		) &
		running=$((running + 1))
		if ((running >= jobs)); then
			wait -n
			running=$((running - 1))
		fi
	done
	wait
	for ((unit = 1; unit <= i; unit++)); do
		cat "$base/$unit/out"
	done
}

# The records of one unit, on fd 3.
_cf_unit() {
	local unit=$1 work=$2 file msg run hook bad=
	for file in "$unit/build.conf" "$unit/build.sh"; do
		[[ -f $_cf_ns/$file ]] || continue
		if ! msg=$(bash -n "$_cf_ns/$file" 2>&1); then
			_cf_emit syntax "$unit" "$file" "$msg"
			bad=1
		fi
	done
	[[ -n $bad ]] && return 0
	: >"$work/hooks"
	for run in A B; do
		_cf_probe "$work" vars "$run" "$unit" ""
	done
	mapfile -t hooks <"$work/hooks"
	for hook in "${hooks[@]}"; do
		for run in A B; do
			_cf_probe "$work" hook "$run" "$unit" "$hook"
		done
	done
}

_cf_probe() {
	local work=$1 rec=$1/rec err=$1/err status size timeout=()
	shift
	command -v timeout >/dev/null && timeout=(timeout -k 2 60)
	: >"$rec"
	CF_PROBE_WORK=$work "${timeout[@]}" bash --noprofile --norc "$_cf_self" --probe "$@" \
		3>"$rec" >/dev/null 2>"$err" </dev/null
	status=$?
	size=$(wc -c <"$rec")
	_cf_emit frame "$@" "$status" "$(head -c 2000 "$err")" "$size"
	cat "$rec" >&3
}

# -- a probe ---------------------------------------------------------------------------------------
# kubler's own defaults, as its system kubler.conf and lib/core.sh set them before a namespace's
# kubler.conf and an image's build.conf are sourced (kubler's sources, 2025).
_cf_kubler_defaults() {
	KUBLER_DATA_DIR=/kubler-data
	_KUBLER_DIR=/kubler-install
	MIRROR='http://distfiles.gentoo.org/'
	BUILD_ENGINE=docker
	DEFAULT_BUILDER=kubler/bob
	PORTAGE_DATE=latest
	BOB_GENTOO_MIRRORS=$MIRROR
	BOB_FEATURES='-parallel-fetch nodoc noinfo noman binpkg-multi-instance -ipc-sandbox -network-sandbox -pid-sandbox'
	BOB_EMERGE_DEFAULT_OPTS='-b -k --binpkg-respect-use=y'
	BOB_TIMEZONE=UTC
	BOB_MAKEOPTS=-j9
	BOB_HOST_UID=0
	BOB_HOST_GID=0
}

# What kubler's build container computes when it runs (build-root.sh, its profile): the same
# names in both runs, other values. The constants of kubler's container (_EMERGE_ROOT, _CONFIG,
# ...) are the same in both.
_cf_container() {
	local run=$1
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
	BOB_CURRENT_TARGET=$CF_KUBLER_NAMESPACE/${_cf_unit#*/}
	DISTDIR=/distfiles
	if [[ $run == A ]]; then
		_LIB=lib64 CHOST=x86_64-pc-linux-gnu CFLAGS='-O2 -pipe' CXXFLAGS='-O2 -pipe'
		PKGDIR=/packages/x86_64-pc-linux-gnu HOSTNAME=cfprobe-a BOB_HOST_UID=0 BOB_HOST_GID=0
		RANDOM=1
	else
		_LIB=cfprobe-lib CHOST=cfprobe-chost CFLAGS=cfprobe-cflags CXXFLAGS=cfprobe-cxxflags
		PKGDIR=/cfprobe-pkgdir HOSTNAME=cfprobe-b BOB_HOST_UID=4242 BOB_HOST_GID=4242
		RANDOM=2
	fi
	export CHOST CFLAGS CXXFLAGS PKGDIR DISTDIR
}

# Every command that is not a function or builtin is missing from PATH and lands here.
command_not_found_handle() {
	if [[ $_cf_run == B ]]; then
		printf 'cfprobe-b\n'
		return 1
	fi
	return 0
}

# The watched variables' names, into _cf_names (by prefix expansion: no subshell, no fork).
_cf_watched() {
	local name
	_cf_names=()
	for name in ${!_@} ${!BOB_@} ${!IMAGE_@} ${!BUILDER@} ${!POST_BUILD_HC@} ${!STAGE3_@} ${!DEFAULT_@} \
		${!KUBLER_@} PARENT_BUILDER_MOUNTS ARCH ARCH_URL AUTHOR BUILD_ENGINE MIRROR PORTAGE_DATE NAMESPACE; do
		case $name in _cf* | _ | __*) continue ;; esac
		[[ -v $name ]] || declare -p "$name" &>/dev/null || continue
		_cf_names+=("$name")
	done
}

# A variable's value as one string, into _cf_val (arrays: the items joined with \x1f).
_cf_value() {
	local -n _cf_ref=$1
	local IFS=$'\x1f'
	case ${_cf_ref@a} in
	*A*) _cf_val="A${!_cf_ref[*]}=${_cf_ref[*]}" ;;
	*a*) _cf_val="a${_cf_ref[*]}" ;;
	*) _cf_val="s${_cf_ref-}" ;;
	esac
}

declare -A _cf_seen _cf_site
# Before each command of a sourced file: the variables that changed since the previous one were
# assigned by it (its file and line are remembered).
_cf_attribute() {
	local name
	_cf_watched
	for name in "${_cf_names[@]}"; do
		_cf_value "$name"
		if [[ ${_cf_seen[$name]-} != "$_cf_val" ]]; then
			_cf_seen[$name]=$_cf_val
			_cf_site[$name]=$_cf_prev_site
		fi
	done
}

# The current values count as seen (what changes later is attributed), their sites stay.
_cf_snapshot_seen() {
	local name
	_cf_watched
	for name in "${_cf_names[@]}"; do
		_cf_value "$name"
		_cf_seen[$name]=$_cf_val
	done
}

# Emit every watched variable: kind (s, a, A), the site of its last assignment (FILE:LINE, or
# empty when no namespace file set it), then its value(s).
_cf_dump_vars() {
	local what=$1 name key items
	_cf_watched
	for name in "${_cf_names[@]}"; do
		local -n _cf_v=$name
		case ${_cf_v@a} in
		*A*)
			items=()
			for key in "${!_cf_v[@]}"; do items+=("$key" "${_cf_v[$key]}"); done
			_cf_emit var "$what" "$name" A "${_cf_site[$name]-}" "${items[@]}"
			;;
		*a*) _cf_emit var "$what" "$name" a "${_cf_site[$name]-}" "${_cf_v[@]}" ;;
		*) _cf_emit var "$what" "$name" s "${_cf_site[$name]-}" "${_cf_v-}" ;;
		esac
		unset -n _cf_v
	done
}

_cf_trap() {
	local command=$1 line=$2 fn=${FUNCNAME[1]-}
	[[ -n $_cf_exiting ]] && return 0 # bash runs the trap once more before the EXIT trap
	if ((++_cf_steps > _cf_budget)); then
		_cf_finish budget 97 "$line"
		exit 97
	fi
	if [[ -n $_cf_hook && $fn == "$_cf_hook" ]]; then
		if [[ -z $_cf_entered ]]; then # the call of the function itself
			_cf_entered=1
			return 0
		fi
		_cf_emit cmd "$_cf_hook" "${BASH_SOURCE[1]#"$_cf_ns"/}" "$line" "$BASH_SUBSHELL" "$command"
		_cf_cmd=$command
		_cf_line=$line
		[[ $command == exit || $command == "exit "* ]] && _cf_exiting=1
		if [[ $_cf_run == A ]]; then
			case $command in '[[ '* | '[ '* | 'test '*) return 1 ;; esac # skipped: taken as true
		fi
	elif [[ $fn == source && -n $_cf_top ]]; then
		_cf_attribute
		_cf_prev_site="${BASH_SOURCE[1]#"$_cf_ns"/}:$line"
		_cf_line=$_cf_prev_site # where an exit while sourcing happens
		[[ $command == exit || $command == "exit "* ]] && _cf_exiting=1
		_cf_emit cmd "" "${BASH_SOURCE[1]#"$_cf_ns"/}" "$line" "$BASH_SUBSHELL" "$command"
	fi
	return 0
}

# A stand-in's record: the hook, the call site, whether the hook made it itself (not a function
# it called, not a subshell), the simple command bash ran for it, and the arguments.
_cf_call() {
	local name=$1 caller=${FUNCNAME[2]-} own=0
	shift
	[[ -n $_cf_hook && $caller == "$_cf_hook" && $BASH_SUBSHELL == 0 ]] && own=1
	[[ -z $_cf_hook && $caller == source ]] && own=0
	local command=
	[[ $own == 1 ]] && command=$_cf_cmd
	_cf_emit call "$_cf_hook" "${BASH_SOURCE[2]#"$_cf_ns"/}" "${BASH_LINENO[1]}" "$own" "$BASH_SUBSHELL" \
		"$caller" "$command" "$name" "$@"
}

# What a helper returns is runtime state: 0 in run A, 1 in run B.
_cf_status() { [[ $_cf_run == A ]]; }

_cf_define_standins() {
	local name
	for name in $CF_KUBLER_HELPERS; do
		eval "$name() { _cf_call $name \"\$@\"; _cf_status; }"
	done
	# What kubler's helpers hand back through variables (their values are runtime state: they
	# differ between the runs, except where kubler derives them from the arguments alone).
	download_file() {
		_cf_call download_file "$@"
		local name=${2:-${1##*/}}
		__download_file=/distfiles/$name
		_cf_status
	}
	download_from_oracle() {
		_cf_call download_from_oracle "$@"
		__download_from_oracle=/distfiles/${1##*/}
		_cf_status
	}
	get_package_version() {
		_cf_call get_package_version "$@"
		__get_package_version=
		[[ $_cf_run == A ]] || __get_package_version=cfprobe-b
		_cf_status
	}
	get_file_mod_stamp() {
		_cf_call get_file_mod_stamp "$@"
		__get_file_mod_stamp=0
		[[ $_cf_run == A ]] || __get_file_mod_stamp=1
		_cf_status
	}
	# die ends kubler's build; the probe goes on, to see the rest of the hook
	die() { _cf_call die "$@"; }
}

# Source a file of the namespace; when tracing (the vars probe), attribute assignments to lines.
_cf_source() {
	local file=$1 trace=$2
	[[ -f $_cf_ns/$file ]] || return 0
	if [[ -z $trace ]]; then
		# shellcheck disable=SC1090
		source "$_cf_ns/$file"
		return 0
	fi
	_cf_top=1
	_cf_prev_site=
	set -T
	trap '_cf_trap "$BASH_COMMAND" "$LINENO"' DEBUG
	# shellcheck disable=SC1090
	source "$_cf_ns/$file"
	trap - DEBUG
	_cf_attribute
	_cf_top=
}

_cf_finish() {
	[[ -n $_cf_done ]] && return 0
	_cf_done=1
	_cf_emit end "$1" "$2" "$3"
}

_cf_probe_main() {
	local mode=$1 run=$2 unit=$3 hook=$4 before after name trace=
	[[ $mode == vars ]] && trace=1
	_cf_run=$run _cf_unit=$unit _cf_hook= _cf_top= _cf_steps=0 _cf_done= _cf_entered= _cf_cmd= _cf_line=
	_cf_exiting=
	trap '_cf_finish exit "$?" "${_cf_line:-}"' EXIT
	cd / || exit 1
	_cf_kubler_defaults
	_cf_snapshot_seen
	[[ $mode == vars ]] && _cf_dump_vars default
	_cf_source kubler.conf "$trace"
	NAMESPACE=$CF_KUBLER_NAMESPACE
	_cf_snapshot_seen
	_cf_source "$unit/build.conf" "$trace"
	[[ $mode == vars ]] && _cf_dump_vars conf
	# The build container sees the BOB_ variables (kubler exports them), not the rest.
	_cf_watched
	for name in "${_cf_names[@]}"; do
		case $name in BOB_*) export "${name?}" ;; *) unset "$name" ;; esac
	done
	_cf_container "$run"
	_cf_define_standins
	_cf_snapshot_seen
	before=$(declare -F)
	PATH=/cf-probe-has-no-commands
	_cf_source "$unit/build.sh" "$trace"
	if [[ $mode == vars ]]; then
		_cf_dump_vars sh
		after=$(declare -F)
		shopt -s extdebug
		while read -r _ _ name; do
			[[ $'\n'$before$'\n' == *$'\n'"declare -f $name"$'\n'* ]] && continue
			local where
			where=$(declare -F "$name")
			_cf_emit function "$name" "${where#* }"
			[[ $name == configure_* || $name == finish_rootfs_build ]] &&
				_cf_emit listing "$name" "$(declare -f "$name")"
		done <<<"$after"
		shopt -u extdebug
		if [[ $run == A ]]; then
			declare -F configure_builder >/dev/null || declare -F configure_bob >/dev/null &&
				echo builder >>"$CF_PROBE_WORK/hooks"
			for name in configure_rootfs_build finish_rootfs_build; do
				declare -F "$name" >/dev/null && echo "$name" >>"$CF_PROBE_WORK/hooks"
			done
		fi
		_cf_finish done 0 ""
		return 0
	fi
	if [[ $hook == builder ]]; then # kubler calls configure_builder, else configure_bob
		hook=configure_bob
		declare -F configure_builder >/dev/null && hook=configure_builder
	fi
	[[ $hook != configure_builder && $hook != configure_bob ]] && export ROOT=$_EMERGE_ROOT
	_cf_emit hook "$hook"
	_cf_hook=$hook
	set -T
	[[ $run == A ]] && shopt -s extdebug
	trap '_cf_trap "$BASH_COMMAND" "$LINENO"' DEBUG
	"$hook"
	local status=$?
	trap - DEBUG
	shopt -u extdebug
	_cf_finish done "$status" "$_cf_line"
}

if [[ ${1-} == --probe ]]; then
	shift
	_cf_probe_main "$@"
	exit 0
fi
_cf_self=${BASH_SOURCE[0]}
_cf_parent "$@"
