"""The synthetic stage (tests/world) through the real air-gapped path: verify, then extract rootless."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.slow


def test_world_stage_verifies_and_extracts(user_identity, world_stage):
    identity = user_identity  # the rootless path; root extraction of the same stage runs in tests/world
    cache = identity.mkdtemp("worldsrc.")
    out = identity.cf(
        "fetch",
        "stage3",
        "--stage3",
        str(world_stage.tarball),
        "--keyring",
        str(world_stage.keyring),
        "--cache-dir",
        str(cache / "sources"),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert world_stage.fingerprint in out.stdout
    code = textwrap.dedent(f"""
        import json, os, sys
        from chrootforge.sources.fetched import FetchedFile
        from chrootforge.sources.stage_cache import pristine_root
        from chrootforge.sources.mapped_run import run_under_mapping
        from chrootforge.sandbox import remove_tree
        fetched = FetchedFile.from_json(json.loads({out.stdout!r}))
        root = pristine_root(fetched, cache_dir={str(cache / "stages")!r})
        code = run_under_mapping(["sh", "-c", f"stat -c '%u %g %a' {{root}}/var/cache/distfiles && "
                                              f"test -x {{root}}/usr/bin/emerge"])
        remove_tree({str(cache)!r})
        sys.exit(code)
    """)
    done = identity.run([*identity.python, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["250", "250", "2775"]
