"""Run `pkgcheck scan` on a repository, working around pkgcore refusing to start on bash < 5.3.

    python -m tests.world.pkgcheck_scan [PKGCHECK SCAN ARGS...] REPO

pkgcore 0.12.33 (the newest on PyPI) registers the still-experimental EAPI 9 at import time and
exits when the system bash is older than 5.3, which EAPI 9 needs (pkgcore issue #461; Debian 12 has
bash 5.2). That exit happens even for repositories without a single EAPI 9 ebuild. Our ebuilds are
EAPI 8, which needs bash >= 5.0; so when the real bash is 5.x but older than 5.3 we pre-seed
snakeoil's cached bash version with "5.3.0" before pkgcore is imported. Nothing else is changed:
ebuilds are still sourced by the real bash, and pkgcheck would report any EAPI 9 ebuild it cannot
handle. With bash >= 5.3 (or a fixed pkgcore) this module does nothing but run pkgcheck.

Note: pkgcore writes metadata/md5-cache into a writable repository it scans; the tests scan a copy.
"""

from __future__ import annotations

import sys


def _allow_old_bash() -> None:
    from snakeoil.process import spawn

    real = spawn.bash_version()
    if real is None:
        raise SystemExit("pkgcheck_scan: cannot run bash to find its version")
    if tuple(int(x) for x in real.split(".")[:2]) < (5, 0):
        raise SystemExit(f"pkgcheck_scan: bash {real} is too old even for EAPI 8 (needs >= 5.0)")
    if tuple(int(x) for x in real.split(".")[:2]) < (5, 3):
        spawn.bash_version.cached_result = "5.3.0"


def main(argv: list[str]) -> int:
    _allow_old_bash()
    from pkgcheck.scripts import main as pkgcheck_main

    sys.argv = ["pkgcheck", "scan", *argv]
    return pkgcheck_main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
