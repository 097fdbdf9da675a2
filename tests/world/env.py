"""`just world-env`: build (or find) the test world and print the shell lines that point the
examples at it.

    eval "$(.venv/bin/just world-env)"
    .venv/bin/chrootforge build examples/world/hello
    .venv/bin/chrootforge build examples/source/nginx

examples/world and examples/source name their stage3, its signing key and their distfiles through
CHROOTFORGE_WORLD_STAGE, CHROOTFORGE_WORLD_KEYRING and CHROOTFORGE_WORLD_DISTFILES. The world is
built once, in the same cache as the test suite's (tests/world/cache.py: world_cache_dir, or
$CHROOTFORGE_WORLD_CACHE), and found there afterwards; progress goes to stderr, the `export` lines to
stdout.
"""

from __future__ import annotations

import shlex
import sys

from tests.world.cache import world_cache_dir
from tests.world.distfiles import DistfilesError, ensure_distfiles
from tests.world.signing import SigningError
from tests.world.stage import StageError, ensure_stage


def main() -> int:
    cache = world_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        stage = ensure_stage(cache)
        distfiles = ensure_distfiles(cache)
    except (StageError, SigningError, DistfilesError, OSError) as err:
        print(f"world-env: error: {err}", file=sys.stderr)
        return 1
    for name, value in (
        ("CHROOTFORGE_WORLD_STAGE", stage.tarball),
        ("CHROOTFORGE_WORLD_KEYRING", stage.keyring),
        ("CHROOTFORGE_WORLD_DISTFILES", distfiles),
    ):
        print(f"export {name}={shlex.quote(str(value))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
