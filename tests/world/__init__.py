"""The test world: the synthetic Gentoo-like stage3 and the distfiles of examples/repo.

- `tests.world.stage.ensure_stage(cache_dir, quiet=False, arch="amd64") -> WorldStage` (also
  `python -m tests.world.stage --cache-dir DIR [--arch arm64]`): the signed stage3 (.tar.zst + .DIGESTS + .asc)
  and the test release key to pass as --keyring.
- `tests.world.distfiles.ensure_distfiles(cache_dir, quiet=False, arch="amd64") -> Path` (also
  `python -m tests.world.distfiles --cache-dir DIR [--arch arm64] [--write-manifests]`): the pinned Debian .debs,
  the upstream tarballs from Debian's source archive (`tests.world.debsrc`) and our source tarballs
  (examples/src), checked against the repo's Manifests.
- `python -m tests.world.env [ARCH]` (`just world-env [arm64]`): the `export` lines that point
  examples/world and examples/source at the cached world (arm64's: the stage built under emulation,
  tests/world/stage_foreign.py, and the variables' _ARM64 names).
- `python -m tests.world.pkgcheck_scan REPO`: pkgcheck on a system bash older than 5.3.
The pytest fixtures are in tests/helpers/world.py.
"""
