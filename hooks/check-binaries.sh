#!/bin/sh
# Stock check (run after the root is stripped, unless image.toml says check_binaries = false; it can
# also be named as a hook): every dynamically linked ELF file of the image root ($ROOT) can start
# there. That is what the image's own dynamic loader finds, not whether files of the needed names
# exist: for each file, its interpreter must be in the image, and that loader, run on the file in
# the image (`chroot ROOT LOADER --list FILE`, the loader's own ldd), must resolve every library
# through the image's ld.so.cache, default directories and the file's RUNPATH. A library has no
# interpreter of its own: it is listed with the loader of the image's programs of its ELF class and
# machine. Needs scanelf (pax-utils, in every Gentoo stage3) and chroot; without scanelf the check
# is skipped with a note.
set -eu
: "${ROOT:?ROOT is not set}"
root=${ROOT%/}
if ! command -v scanelf >/dev/null 2>&1; then
	echo "check-binaries: scanelf not found in the builder, check skipped"
	exit 0
fi
chroot=$(command -v chroot) || { echo "check-binaries: chroot not found in the builder" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# file|interpreter|needed,...|ELF class|machine (symlinks are not followed: each file once)
scanelf -RyBF '%F|%i|%n|%M|%a' "$root" 2>/dev/null | sort > "$work/elf" || true
# the loader of each ELF class and machine, from the programs that name one
: > "$work/loaders"
while IFS='|' read -r file interp needed class machine; do
	[ -n "$interp" ] || continue
	grep -q "^$class $machine " "$work/loaders" || echo "$class $machine $interp" >> "$work/loaders"
done < "$work/elf"

# Is $1 (a path inside the image) a file there, following its symlinks inside the image?
in_image() {
	path=$1 hops=0
	while [ -L "$root$path" ] && [ "$hops" -lt 40 ]; do
		target=$(readlink "$root$path")
		case $target in
		/*) path=$target ;;
		*) path=${path%/*}/$target ;;
		esac
		hops=$((hops + 1))
	done
	[ -f "$root$path" ]
}

checked=0
: > "$work/bad"
while IFS='|' read -r file interp needed class machine; do
	[ -n "$interp$needed" ] || continue  # static, or needs nothing
	inside=${file#"$root"}
	loader=$interp
	[ -n "$loader" ] || loader=$(awk -v c="$class" -v m="$machine" '$1 == c && $2 == m { print $3; exit }' "$work/loaders")
	checked=$((checked + 1))
	if [ -z "$loader" ]; then
		echo "check-binaries: $inside needs ${needed:-a loader}, but the image has no dynamic loader for $class $machine files" >> "$work/bad"
		continue
	fi
	if ! in_image "$loader"; then
		echo "check-binaries: $inside needs the dynamic loader $loader, which is not in the image" >> "$work/bad"
		continue
	fi
	rc=0
	out=$(env -i "$chroot" "$root" "$loader" --list "$inside" 2>&1) || rc=$?
	# glibc's loader reports a missing library as "NAME => not found", or stops at the first
	# one: "error while loading shared libraries: NAME: cannot open shared object file"
	missing=$(echo "$out" | sed -n -e 's/^[[:space:]]*\([^[:space:]]*\) => not found.*/\1/p' \
		-e 's/.*error while loading shared libraries: \([^:]*\):.*/\1/p' | sort -u)
	if [ -n "$missing" ]; then
		for lib in $missing; do
			echo "check-binaries: $inside: the image's loader finds no $lib" >> "$work/bad"
		done
	elif [ "$rc" -ne 0 ]; then
		echo "check-binaries: $inside: its loader $loader cannot start it: $(echo "$out" | tail -n 1)" >> "$work/bad"
	fi
done < "$work/elf"

if [ -s "$work/bad" ]; then
	cat "$work/bad" >&2
	files=$(sed 's/^check-binaries: \([^ :]*\).*/\1/' "$work/bad" | sort -u | wc -l)
	echo "check-binaries: $files of $checked dynamically linked files cannot start in this image" \
		"(check_binaries = false in image.toml skips this check)" >&2
	exit 1
fi
echo "check-binaries: the image's loader finds every library of its $checked dynamically linked files"
