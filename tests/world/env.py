"""The test world's variables for a shell: `eval "$(just world-env [ARCH])"`.

    python -m tests.world.env [--cache-dir DIR] [ARCH]

builds (or finds) the world's stage3 and distfiles of ARCH (amd64, the default, or arm64) and prints
the variables examples/world/chrootforge.toml reads, as `export NAME=VALUE` lines. amd64's are
CHROOTFORGE_WORLD_STAGE, _KEYRING and _DISTFILES; another arch's carry its suffix
(CHROOTFORGE_WORLD_STAGE_ARM64, ...), which is what a namespace view for that platform takes first
for ${CHROOTFORGE_WORLD_STAGE} (spec/schema.py). So, with both evaluated, adding
`platforms = ["linux/amd64", "linux/arm64"]` to [build] builds the world for both.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tests.world.distfiles import HOST_ARCH, DistfilesError, ensure_distfiles
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
    from tests.helpers.world import world_cache_dir

    parser = argparse.ArgumentParser(prog="python -m tests.world.env", description=__doc__.split("\n\n")[0])
    parser.add_argument("arch", nargs="?", default=HOST_ARCH, choices=("amd64", "arm64"))
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the tests' world cache")
    args = parser.parse_args(argv)
    cache = args.cache_dir or world_cache_dir()
    try:
        values = variables(cache, args.arch, quiet=False)
    except (StageError, DistfilesError, SigningError) as err:
        print(f"world-env: error: {err}", file=sys.stderr)
        return 1
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
