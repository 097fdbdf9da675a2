"""What an image build fixes so that the same inputs give the same bytes (pure values).

Gentoo does not apply these by default; docs/pipeline.md ("Reproducible builds") lists why each one
is there and the test that checks it.

- The environment of every build step (emerge, the hooks, the build shell): SOURCE_DATE_EPOCH is
  the build's one epoch, so a package that embeds a date (busybox's banner) embeds that one; portage
  passes it to every ebuild phase (it is in none of its environment filters). TZ=UTC and the C.UTF-8
  locale, so that dates and messages do not depend on the host.
- The sandbox of every build step: umask 022 (the caller's own umask would otherwise decide the
  modes of what hooks and build systems create) and a fixed host and domain name in its UTS
  namespace (chrootforge.sandbox.SandboxConfig).
- The compiler flags: no build directory in the binaries (`-ffile-prefix-map`, for __FILE__ and
  debug information). Portage builds under PORTAGE_TMPDIR=/var/tmp (make.conf), so every package's
  sources sit below /var/tmp/portage.
- Archives: `ar` and `ranlib` must write no timestamps, owners or modes (binutils' deterministic
  mode, the D modifier, which Debian's binutils uses by default); the builder is probed for it.
"""

from __future__ import annotations

import contextlib
import os

BUILD_UMASK = 0o022
HOSTNAME = "chrootforge"
DOMAINNAME = "(none)"  # what the kernel reports when no domain name was ever set
PORTAGE_TMPDIR = "/var/tmp"  # make.conf's (gentoo/portage_conf.py)
BUILD_TMP = f"{PORTAGE_TMPDIR}/portage"  # where portage unpacks and builds every package
FLAG_VARS = ("CFLAGS", "CXXFLAGS", "FFLAGS", "FCFLAGS")
PREFIX_MAP = f"-ffile-prefix-map={BUILD_TMP}=."


@contextlib.contextmanager
def build_umask():
    """The caller's process runs a build with umask 022 (and gets its own back afterwards)."""
    old = os.umask(BUILD_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def step_env(epoch: int) -> dict[str, str]:
    """The variables every build step gets: the build's epoch, UTC and the C.UTF-8 locale."""
    return {
        "SOURCE_DATE_EPOCH": str(epoch),
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def make_conf_lines() -> list[str]:
    """make.conf lines appended after the namespace's own (so they add to its flags)."""
    return [f'{var}="${{{var}}} {PREFIX_MAP}"' for var in FLAG_VARS]


def key_parts() -> dict[str, str]:
    """What of this module changes compiled output, for the binpkgs key (gentoo.inputs)."""
    return {"flags": PREFIX_MAP}


def deterministic_ar_probe(status_file: str) -> str:
    """Shell (in the builder) that records in status_file whether the builder's ar writes another
    archive for the same member with another mtime (no deterministic mode, binutils' D). Nothing
    is recorded when the probe itself cannot run."""
    return (
        "cf_ar=$(command -v ar || true)\n"
        'if [ -n "$cf_ar" ] && cf_ar_dir=$(mktemp -d /tmp/cf-ar.XXXXXX); then\n'
        '  if (cd "$cf_ar_dir" && echo probe > m.o && touch -d @1 m.o && "$cf_ar" rc a.a m.o &&\n'
        '      touch -d @2 m.o && "$cf_ar" rc b.a m.o) > /dev/null 2>&1 &&\n'
        '      ! cmp -s "$cf_ar_dir/a.a" "$cf_ar_dir/b.a"; then\n'
        f'    echo "$cf_ar" > {status_file}\n'
        "  fi\n"
        '  rm -rf "$cf_ar_dir"\n'
        "fi\n"
    )
