"""`just world-env [ARCH]`: build (or find) the test world of ARCH and print the shell lines that
point the examples at it.

    eval "$(.venv/bin/just world-env)"
    .venv/bin/chrootforge build examples/world/hello
    .venv/bin/chrootforge build examples/source/nginx

    python -m tests.world.env [--cache-dir DIR] [ARCH]

examples/world and examples/source name their stage3, its signing key and their distfiles through
CHROOTFORGE_WORLD_STAGE, CHROOTFORGE_WORLD_KEYRING and CHROOTFORGE_WORLD_DISTFILES: those are
amd64's (the default ARCH). Another arch's (arm64: its stage built under emulation, ten minutes here the
first time) carry its suffix (CHROOTFORGE_WORLD_STAGE_ARM64, ...), which is what a namespace view
for that platform takes first for ${CHROOTFORGE_WORLD_STAGE} (spec/schema.py). So, with both
evaluated, adding `platforms = ["linux/amd64", "linux/arm64"]` to [build] of examples/world builds
it for both. The world is built once, in the same cache as the test suite's (tests/world/cache.py:
world_cache_dir, or $CHROOTFORGE_WORLD_CACHE), and found there afterwards; progress goes to
stderr, the `export` lines to stdout.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tests.world.cache import world_cache_dir
from tests.world.distfiles import ARCHES, HOST_ARCH, DistfilesError, ensure_distfiles
from tests.world.signing import SigningError
from tests.world.stage import StageError, ensure_stage

PREFIX = "CHROOTFORGE_WORLD_"


def variables(cache_dir: Path, arch: str = HOST_ARCH, quiet: bool = True) -> dict[str, str]:
    from chrootforge.platforms import parse_platform

    suffix = "" if arch == HOST_ARCH else "_" + parse_platform(arch).env_suffix
    stage = ensure_stage(cache_dir, quiet, arch)
    distfiles = ensure_distfiles(cache_dir, quiet, arch=arch)
    return {
        f"{PREFIX}STAGE{suffix}": str(stage.tarball),
        f"{PREFIX}KEYRING{suffix}": str(stage.keyring),
        f"{PREFIX}DISTFILES{suffix}": str(distfiles),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.world.env", description=__doc__.split("\n\n")[0])
    parser.add_argument("arch", nargs="?", default=HOST_ARCH, choices=ARCHES)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the tests' world cache")
    args = parser.parse_args(argv)
    cache = args.cache_dir or world_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        values = variables(cache, args.arch, quiet=False)
    except (StageError, DistfilesError, SigningError, OSError) as err:
        print(f"world-env: error: {err}", file=sys.stderr)
        return 1
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
