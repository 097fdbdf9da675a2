"""The image root's loader cache, brought up to date after its merges (pure: shell run in the builder).

On Gentoo, env-update runs after every merge: it writes /etc/ld.so.conf from the LDPATH entries of
/etc/env.d (baselayout's name /lib64, /usr/lib64, ...; glibc's includes ld.so.conf.d) and runs
`ldconfig -X -r ROOT`, so the loader finds libraries outside its built-in directories. Portage does
the first part for an image root too, but runs the image's own /sbin/ldconfig only, which a slim
glibc image may lack; and runtime_libs copies libraries behind portage's back. So once the image's
merges are done, chrootforge runs ldconfig for the image root itself: the image's /sbin/ldconfig when
it has one (as portage would), else the builder's (Gentoo's builder has the same C library). Only
for a root with glibc's loader (ld-linux*.so.*): another C library has no ld.so.cache. -X: no
soname links, which portage manages. ldconfig's auxiliary cache is state, removed with portage's
(gentoo/slim.py).
"""

from __future__ import annotations

import shlex


def script(root: str) -> str:
    q = shlex.quote(root.rstrip("/") or "/")
    return (
        f"cf_root={q}\n"
        "cf_glibc=\n"
        'for cf_ld in "$cf_root"/lib*/ld-linux*.so.* "$cf_root"/usr/lib*/ld-linux*.so.*; do\n'
        '  if [ -e "$cf_ld" ] || [ -L "$cf_ld" ]; then cf_glibc=yes; fi\n'
        "done\n"
        'if [ -n "$cf_glibc" ]; then\n'
        '  if [ -f "$cf_root/sbin/ldconfig" ] && [ -x "$cf_root/sbin/ldconfig" ]; then\n'
        '    cf_ldconfig="$cf_root/sbin/ldconfig"\n'
        "  else\n"
        '    cf_ldconfig=$(command -v ldconfig) || { echo "no ldconfig in the builder" >&2; exit 1; }\n'
        "  fi\n"
        '  echo ">>> $cf_ldconfig -X -r $cf_root"\n'
        '  "$cf_ldconfig" -X -r "$cf_root"\n'
        "fi\n"
    )
