"""The test world: the synthetic Gentoo-like stage3 and the distfiles of examples/repo.

- `tests.world.stage.ensure_stage(cache_dir, quiet=False) -> WorldStage` (also
  `python -m tests.world.stage --cache-dir DIR`): the signed stage3 (.tar.zst + .DIGESTS + .asc)
  and the test release key to pass as --keyring.
- `tests.world.distfiles.ensure_distfiles(cache_dir, quiet=False) -> Path` (also
  `python -m tests.world.distfiles --cache-dir DIR [--write-manifests]`): the pinned Debian .debs,
  the upstream tarballs from Debian's source archive (`tests.world.debsrc`) and our source tarballs
  (examples/src), checked against the repo's Manifests.
- `python -m tests.world.env` (`just world-env`): the `export` lines that point examples/world and
  examples/source at the cached world.
- `python -m tests.world.pkgcheck_scan REPO`: pkgcheck on a system bash older than 5.3.
The pytest fixtures are in tests/helpers/world.py.
"""
