"""The slim-root plan: what to delete from the image root before it is committed (pure).

`[strip] keep` patterns (absolute paths or shell globs inside the image) are copied aside before the
removals and put back afterwards (`tar --skip-old-files`: what no rule removed stays as it is), so
they survive any rule. A pattern that matches nothing is reported, and the build warns with its name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from chrootforge import log
from chrootforge.gentoo.emerge import CF_MOUNT
from chrootforge.gentoo.status import read_status
from chrootforge.spec.model import Strip

# Where empty directories left behind by the removals are pruned (never the top-level ones).
PRUNED = ("var/log", "var/cache", "var/lib", "var/tmp", "usr/share")
# Portage's own state never belongs in an image; nor does ldconfig's auxiliary cache, which records
# the inode numbers and ctimes of the libraries it saw (the loader reads only /etc/ld.so.cache), so
# two builds of the same files would differ by it.
PORTAGE_STATE = (
    "var/db/pkg",
    "var/cache/edb",
    "etc/portage",
    "var/lib/portage",
    "var/cache/binpkgs",
    "var/cache/distfiles",
    "var/tmp/portage",
    "var/log/portage",
    "var/log/emerge.log",
    "var/log/emerge-fetch.log",
    "var/cache/ldconfig/aux-cache",
)
UNMATCHED_FILE = "keep-unmatched"  # in the build's status dir
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SlimPlan:
    remove: tuple[str, ...]  # paths relative to the root (removed recursively)
    remove_names: tuple[tuple[str, str], ...]  # (dir, glob): files under dir matching glob
    locale_dirs: tuple[str, ...]  # dirs whose entries not in keep_locales are removed
    keep_locales: tuple[str, ...] | None  # None: keep all
    keep: tuple[str, ...] = ()  # [strip] keep patterns (absolute, globs allowed)

    def shell(self, root: str = "/emerge-root", status_dir: str = f"{CF_MOUNT}/status") -> str:
        q = shlex.quote
        roots = " ".join(PRUNED)
        lines = [
            "set -eu",
            f"cd {q(root)}",
            # directories empty before the removals were made so on purpose (a hook's mkdir for a
            # volume, a log or a spool): they stay
            "cf_empty=$(mktemp /tmp/cf-empty.XXXXXX)",
            f'for d in {roots}; do [ ! -d "$d" ] || find "$d" -mindepth 1 -type d -empty; done > "$cf_empty"',
        ]
        if self.keep:
            # Patterns are checked by the spec (no blanks, quotes or $): unquoted, the shell globs them.
            lines += [
                f"cf_keep=$(mktemp -d /tmp/cf-keep.XXXXXX); : > {q(status_dir + '/' + UNMATCHED_FILE)}",
                f"for pattern in {' '.join(q(p) for p in self.keep)}; do",
                "  found=no",
                "  for path in .$pattern; do",
                '    [ -e "$path" ] || [ -L "$path" ] || continue',
                '    found=yes; cp -a --parents "$path" "$cf_keep/"',
                "  done",
                f'  [ $found = yes ] || echo "$pattern" >> {q(status_dir + "/" + UNMATCHED_FILE)}',
                "done",
            ]
        if self.remove:
            lines.append("rm -rf -- " + " ".join(q(p) for p in self.remove))
        for directory, pattern in self.remove_names:
            lines.append(
                f"[ ! -d {q(directory)} ] || find {q(directory)} \\( -type f -o -type l \\) "
                f"-name {q(pattern)} -delete"
            )
        if self.keep_locales is not None:
            keep = " ".join(q(k) for k in self.keep_locales)
            for directory in self.locale_dirs:
                lines.append(
                    f"if [ -d {q(directory)} ]; then for d in {q(directory)}/*; do "
                    f'[ -e "$d" ] || continue; n=${{d##*/}}; k=no; for w in {keep} ""; do '
                    f'[ -n "$w" ] || continue; case "$n" in "$w"|"$w".*|"$w"_*|"$w"@*) k=yes;; esac; done; '
                    f'[ $k = yes ] || rm -rf -- "$d"; done; fi'
                )
        if self.keep:
            # Back in place; --skip-old-files leaves alone what still exists (files no rule removed, and
            # existing directories: their metadata too).
            lines.append('(cd "$cf_keep" && tar -cf - .) | tar -xpf - --skip-old-files; rm -rf "$cf_keep"')
        # Empty directories left behind by the removals, deepest first, until none is left.
        lines += [
            "while :; do",
            f'  for d in {roots}; do [ ! -d "$d" ] || find "$d" -mindepth 1 -type d -empty; done |',
            '    grep -vxF -f "$cf_empty" > "$cf_empty.now" || true',
            '  [ -s "$cf_empty.now" ] || break',
            '  while IFS= read -r d; do rmdir "$d"; done < "$cf_empty.now"',
            "done",
            'rm -f "$cf_empty" "$cf_empty.now"',
        ]
        return "\n".join(lines) + "\n"


def plan_slim(strip: Strip) -> SlimPlan:
    remove = list(PORTAGE_STATE)
    if strip.docs:
        remove += ["usr/share/doc", "usr/share/gtk-doc"]
    if strip.man:
        remove += ["usr/share/man"]
    if strip.info:
        remove += ["usr/share/info"]
    names = []
    if strip.headers:
        remove += [
            "usr/include",
            "usr/lib/pkgconfig",
            "usr/lib64/pkgconfig",
            "usr/share/pkgconfig",
            "usr/share/aclocal",
        ]
    if strip.static_libs:
        names += [(d, pat) for d in ("lib", "lib64", "usr/lib", "usr/lib64") for pat in ("*.a", "*.la")]
    return SlimPlan(
        remove=tuple(remove),
        remove_names=tuple(names),
        locale_dirs=("usr/share/locale", "usr/lib/locale"),
        keep_locales=None if strip.locales is None else ("C", *strip.locales),
        keep=strip.keep,
    )


def _may_match_under(pattern: str, directory: str) -> bool:
    """Could `pattern` match `directory` or something in it? (compares the part before any glob)"""
    fixed = _GLOB_CHARS.split(pattern, 1)[0]
    return fixed.startswith(directory + "/") or fixed == directory or (directory + "/").startswith(fixed)


def install_features(strip: Strip) -> list[str]:
    """FEATURES that spare installing what the strip rules remove anyway (nodoc, noman, noinfo),
    except where a keep pattern wants something."""
    out = []
    for feature, on, directory in (
        ("nodoc", strip.docs, "/usr/share/doc"),
        ("noman", strip.man, "/usr/share/man"),
        ("noinfo", strip.info, "/usr/share/info"),
    ):
        if on and not any(_may_match_under(p, directory) for p in strip.keep):
            out.append(feature)
    return out


def warn_unmatched(status_dir: Path, image: str) -> list[str]:
    """Warn about each keep pattern that matched nothing in the image root; returns them."""
    patterns = (read_status(status_dir, UNMATCHED_FILE) or "").split()
    for pattern in patterns:
        log.warn(f"image {image}: [strip] keep pattern '{pattern}' matches nothing in the image")
    return patterns
