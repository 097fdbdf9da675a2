"""The slim-root plan: what to delete from the image root before it is committed (pure)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from chrootforge.spec.model import Strip

# Portage's own state never belongs in an image.
PORTAGE_STATE = ("var/db/pkg", "var/cache/edb", "etc/portage", "var/lib/portage", "var/cache/binpkgs",
                 "var/cache/distfiles", "var/tmp/portage", "var/log/portage", "var/log/emerge.log",
                 "var/log/emerge-fetch.log")


@dataclass(frozen=True)
class SlimPlan:
    remove: tuple[str, ...]                 # paths relative to the root (removed recursively)
    remove_names: tuple[tuple[str, str], ...]  # (dir, glob): files under dir matching glob
    locale_dirs: tuple[str, ...]            # dirs whose entries not in keep_locales are removed
    keep_locales: tuple[str, ...] | None    # None: keep all

    def shell(self, root: str = "/emerge-root") -> str:
        q = shlex.quote
        lines = ["set -eu", f"cd {q(root)}"]
        if self.remove:
            lines.append("rm -rf -- " + " ".join(q(p) for p in self.remove))
        for directory, pattern in self.remove_names:
            lines.append(f"[ ! -d {q(directory)} ] || find {q(directory)} \\( -type f -o -type l \\) "
                         f"-name {q(pattern)} -delete")
        if self.keep_locales is not None:
            keep = " ".join(q(k) for k in self.keep_locales)
            for directory in self.locale_dirs:
                lines.append(
                    f"if [ -d {q(directory)} ]; then for d in {q(directory)}/*; do "
                    f'[ -e "$d" ] || continue; n=${{d##*/}}; k=no; for w in {keep} ""; do '
                    f'[ -n "$w" ] || continue; case "$n" in "$w"|"$w".*|"$w"_*|"$w"@*) k=yes;; esac; done; '
                    f'[ $k = yes ] || rm -rf -- "$d"; done; fi')
        # Empty directories left behind by the removals (but never the root's top-level ones).
        lines.append("for d in var/log var/cache var/lib var/tmp usr/share; do "
                     "[ ! -d \"$d\" ] || find \"$d\" -mindepth 1 -depth -type d -empty -delete; done")
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
        remove += ["usr/include", "usr/lib/pkgconfig", "usr/lib64/pkgconfig", "usr/share/pkgconfig",
                   "usr/share/aclocal"]
    if strip.static_libs:
        names += [(d, pat) for d in ("lib", "lib64", "usr/lib", "usr/lib64") for pat in ("*.a", "*.la")]
    return SlimPlan(remove=tuple(remove), remove_names=tuple(names),
                    locale_dirs=("usr/share/locale", "usr/lib/locale"),
                    keep_locales=None if strip.locales is None else ("C", *strip.locales))
