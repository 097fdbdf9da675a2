"""`runtime_libs`: shared libraries copied from the builder's installed packages into the image.

On Gentoo, libgcc_s.so.1 and libstdc++.so.6 belong to sys-devel/gcc, which a slim image never gets.
glibc dlopen()s libgcc_s.so.1 for pthread_cancel and unwinding, so no DT_NEEDED entry (and no
check-binaries hook) sees that it is missing. For each named file, the step (a shell script run in
the builder, after post_emerge):
- finds the installed builder packages whose CONTENTS (/var/db/pkg) list a file of that name, for
  the builder's own ABI (ELF class, byte order and machine of /bin/sh: gcc's 32-bit multilib copies
  do not count); exactly one must have it;
- copies it (symlinks followed) into the directory of the image's libc.so.6 (a regular file of that
  same ABI under /lib*, /usr/lib*), which is on that C library's default search path;
- records the image path, the builder path, the package (cpv) and its LICENSE.
The host then hashes the copies: the SBOM lists them as files of that builder package, with its
version, and the image's children inherit the list.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from chrootforge.atoms import split_cpv
from chrootforge.errors import CfError, shown
from chrootforge.gentoo.status import read_status
from chrootforge.rootpath import read_inside

STATUS_FILE = "runtime-libs"
MAX_LIBRARY = 1 << 30  # a file runtime_libs copied into the image (hashed for the SBOM)


@dataclass(frozen=True)
class BuilderFile:
    path: str  # in the image
    source: str  # in the builder
    package: str  # the builder package (cpv) whose CONTENTS list it
    license: str  # that package's LICENSE
    sha1: str
    sha256: str
    image: str  # the image that copied it

    @property
    def cp(self) -> str:
        return split_cpv(self.package)[0]

    @property
    def version(self) -> str:
        return split_cpv(self.package)[1]


@dataclass(frozen=True)
class RuntimeLibsPlan:
    names: tuple[str, ...] = ()

    def script(self, status_dir: str, root: str = "/emerge-root", vdb: str = "/var/db/pkg") -> str:
        q = shlex.quote
        return _SCRIPT.format(
            root=q(root),
            vdb=q(vdb),
            status=q(f"{status_dir}/{STATUS_FILE}"),
            names=" ".join(q(n) for n in self.names),
        )


# POSIX sh with awk, od, cut, cmp, readlink -f, dirname: all in a stage3 (and in the synthetic one).
_SCRIPT = r"""set -eu
root={root}; vdb={vdb}; status={status}
: > "$status"
abi() {{  # ELF class, byte order and machine of a file; empty when it is not ELF
	x=$(od -An -tx1 -N20 "$1" 2>/dev/null | tr -d ' \n')
	[ "$(printf %s "$x" | cut -c1-8)" = 7f454c46 ] || return 0
	printf %s%s "$(printf %s "$x" | cut -c9-12)" "$(printf %s "$x" | cut -c37-40)"
}}
fail() {{ echo "chrootforge: runtime_libs: $*" >&2; exit 3; }}
native=$(abi "$(readlink -f /bin/sh)")
[ -n "$native" ] || fail "cannot tell the builder's ABI from /bin/sh"
dest=""
for f in $(find "$root"/lib* "$root"/usr/lib* -maxdepth 2 -name libc.so.6 -type f 2>/dev/null | sort); do
	if [ "$(abi "$f")" = "$native" ]; then dest=$(dirname "${{f#"$root"}}"); break; fi
done
[ -n "$dest" ] || fail "the image has no libc.so.6 for this architecture under /lib* or /usr/lib*, \
so there is no library directory to copy into"
for name in {names}; do
	found=""
	for contents in "$vdb"/*/*/CONTENTS; do
		[ -f "$contents" ] || continue
		cpv=${{contents%/CONTENTS}}; cpv=${{cpv#"$vdb"/}}
		for path in $(awk -v n="$name" \
				'($1 == "obj" || $1 == "sym") {{ p = $2; sub(/.*\//, "", p); if (p == n) print $2 }}' \
				"$contents"); do
			[ -e "$path" ] && [ "$(abi "$(readlink -f "$path")")" = "$native" ] || continue
			found="$found$cpv $path
"
		done
	done
	count=$(printf %s "$found" | grep -c . || true)
	[ "$count" -gt 0 ] || fail "no package installed in the builder has $name for this architecture"
	[ "$count" -eq 1 ] || fail "several builder packages have $name: $(printf %s "$found" | tr '\n' ';')"
	cpv=${{found%% *}}; path=$(printf %s "$found" | cut -d' ' -f2)
	target="$root$dest/$name"
	if [ -e "$target" ] && [ ! -L "$target" ] && cmp -s "$(readlink -f "$path")" "$target"; then
		echo "runtime_libs: $dest/$name is already in the image"
		continue
	fi
	rm -f "$target"
	cp -L "$path" "$target"
	license=$(cat "$vdb/$cpv/LICENSE" 2>/dev/null | tr '\n\t' '  ' || true)
	printf '%s\t%s\t%s\t%s\n' "$dest/$name" "$path" "$cpv" "$license" >> "$status"
	echo "runtime_libs: $dest/$name <- $path ($cpv)"
done
"""


def read_copied(status_dir: Path, rootfs: Path, image: str) -> list[BuilderFile]:
    """The files the script copied, hashed in the image root."""
    text = read_status(status_dir, STATUS_FILE)
    out: list[BuilderFile] = []
    for number, line in enumerate((text or "").splitlines(), 1):
        fields = line.split("\t")
        data = None
        if len(fields) == 4:
            data = read_inside(rootfs, fields[0], MAX_LIBRARY, what="runtime library")
        if data is None:
            raise CfError(
                f"runtime_libs: line {number} of its status file names no copied file: {shown(line[:200])}",
                hint="the build wrote a damaged or hostile status file",
            )
        path, source, package, license_ = fields
        out.append(
            BuilderFile(
                path,
                source,
                package,
                license_.strip(),
                hashlib.sha1(data).hexdigest(),
                hashlib.sha256(data).hexdigest(),
                image,
            )
        )
    return out


def run(
    plan: RuntimeLibsPlan,
    rootfs: Path,
    cf: Path,
    cf_mount: str,
    sandbox: Callable[[str, str, dict], None],
    image: str,
) -> list[BuilderFile]:
    """Copy in the builder (`sandbox(phase, script, env)` runs a script there), then hash the copies.
    A name already in the image with the same bytes (from a parent) is not copied nor recorded again."""
    sandbox("runtime_libs", plan.script(f"{cf_mount}/status"), {})
    return read_copied(cf / "status", rootfs, image)


def merge(inherited: list[BuilderFile], own: list[BuilderFile]) -> list[BuilderFile]:
    """The image's cumulative list: its own copies replace the parents' at the same path."""
    mine = {f.path for f in own}
    return sorted([f for f in inherited if f.path not in mine] + own, key=lambda f: f.path)


def dump(files: list[BuilderFile]) -> list[dict]:
    return [asdict(f) for f in files]


def load(data: list[dict]) -> list[BuilderFile]:
    return [BuilderFile(**d) for d in data]
