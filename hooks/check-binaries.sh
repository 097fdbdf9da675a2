#!/bin/sh
# Stock hook (finish_rootfs): fail when an ELF file of the image needs a shared library that the
# image does not contain -- the usual slim-root mistake (a library of the builder, not of ROOT).
# Needs scanelf (pax-utils, present in every Gentoo stage3); skipped with a note without it.
set -eu
: "${ROOT:?ROOT is not set}"
if ! command -v scanelf >/dev/null 2>&1; then
	echo "check-binaries: scanelf not found in the builder, check skipped"
	exit 0
fi
have=$(mktemp)
trap 'rm -f "$have"' EXIT
find "$ROOT" -xdev \( -type f -o -type l \) -name '*.so*' -exec basename {} \; | sort -u > "$have"
bad=0
scanelf -RqyBF '%F %n' "$ROOT" 2>/dev/null | while read -r file needed; do
	[ -n "${needed:-}" ] || continue
	for lib in $(echo "$needed" | tr ',' ' '); do
		if ! grep -qxF "$lib" "$have"; then
			echo "check-binaries: ${file#"$ROOT"} needs $lib, which is not in the image" >&2
			echo bad
		fi
	done
done | grep -q bad && bad=1
if [ "$bad" -ne 0 ]; then
	exit 1
fi
echo "check-binaries: every needed library is in the image"
