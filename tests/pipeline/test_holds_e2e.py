"""`cache prune` while a real build runs (the test world's stage, real emerge), as root and as the
unprivileged user: prune skips everything the build uses (its binpkgs, extracted stage, verified
stage3, distfiles and work dir), the build succeeds, and once it has ended the same prune removes
those entries (they are real entries of their kinds, not leftovers prune cannot see).

The build is `build --force` of an image built before, so that emerge takes the binary package
the first build made (the moment the issue saw "File not found"); prune runs over and over, from
before emerge starts until the build ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.rootfs import remove_as

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _namespace(dest: Path, repo: Path) -> Path:
    """examples/world's busybox alone."""
    ns = dest / "world"
    shutil.copytree(REPO / "examples" / "world", ns)
    for extra in ("glibc", "s6", "hello", "greeter"):
        shutil.rmtree(ns / extra)
    text = (ns / "chrootforge.toml").read_text().replace('path = "../repo"', f'path = "{repo}"')
    (ns / "chrootforge.toml").write_text(text)
    return ns


def _entries(cache: Path, kind: str) -> set[str]:
    """The entries of a kind as `cache ls` names them: directories, except the distfiles."""
    folder = cache / "chrootforge" / kind
    if not folder.is_dir():
        return set()
    return {
        f"{kind}/{p.name}"
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or kind == "distfiles")
    }


@pytest.mark.parametrize("who", ["root", "user"])
def test_prune_during_a_forced_build_skips_what_the_build_uses(who, world_inputs, world_repo):
    identity = get_identity(who)
    tmp = identity.mkdtemp("holds.")
    try:
        ns = _namespace(tmp, world_repo)
        if not identity.is_root:
            for path in [ns, *ns.rglob("*")]:
                os.chown(path, identity.uid, identity.gid)
        cache = tmp / "cache"
        env = {**world_inputs.env(), "XDG_CACHE_HOME": str(cache), "SOURCE_DATE_EPOCH": ""}
        layout = tmp / "layout"
        build = ["build", "--json", "--layout", str(layout), str(ns)]
        first = identity.cf(*build, env=env, timeout=900)
        assert first.returncode == 0, first.stderr[-3000:]
        # what the forced build will use again: one of each, and every distfile
        in_use = set().union(
            *(_entries(cache, kind) for kind in ("binpkgs", "stages", "sources/blobs", "work", "distfiles"))
        )
        for kind in ("binpkgs/", "stages/", "sources/blobs/", "work/"):
            assert len([name for name in in_use if name.startswith(kind)]) == 1, (kind, in_use)
        assert any(name.startswith("distfiles/") for name in in_use)

        emerge_log = Path(f"{layout}.build") / "logs" / "busybox" / "emerge.log"
        emerge_log.unlink()
        forced = identity.popen(
            identity.cf_argv(*build[:-1], "--force", str(ns)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []  # the build's stderr as it comes
        reader = threading.Thread(target=lambda: lines.extend(iter(forced.stderr.readline, "")), daemon=True)
        reader.start()

        def said(text: str) -> bool:
            return any(text in line for line in list(lines))

        rounds, during_emerge, held, removed = 0, 0, set(), set()
        try:
            # from the moment the build has its inputs ready (it holds them from before then)
            while forced.poll() is None and not said("stage ready in"):
                time.sleep(0.05)
            while forced.poll() is None:
                emerging = emerge_log.exists() and not said("    emerge ")
                pruned = identity.cf("cache", "prune", "--older-than", "0", "--json", env=env, timeout=120)
                if forced.poll() is not None:
                    break  # the build ended meanwhile: this round may have run after it
                assert pruned.returncode == 0, pruned.stderr
                result = json.loads(pruned.stdout)
                rounds += 1
                during_emerge += emerging and not said("    emerge ")  # (emerge ran all along)
                held |= {e["name"] for e in result["held"]}
                removed |= {e["name"] for e in result["removed"]}
            forced.wait(900)
            reader.join(60)
            out = forced.stdout.read()
            err = "".join(lines)
        finally:
            if forced.poll() is None:
                forced.kill()
        assert forced.returncode == 0, f"the build failed while prune ran:\n{err[-3000:]}"
        report = json.loads(out)
        assert [r["status"] for r in report["images"]] == ["built"]
        assert rounds >= 2 and during_emerge >= 1, (rounds, during_emerge, err[-2000:])
        assert "Emerging binary" in emerge_log.read_text()  # emerge took the binpkg, as it should
        # what the build used was held every time, and never removed
        assert in_use <= held, f"not held: {in_use - held}"
        assert not removed & in_use, f"removed while in use: {removed & in_use}"

        # once the build has ended, they are ordinary entries that prune removes (the round that
        # overlapped the build's end may have done so already)
        after = identity.cf("cache", "prune", "--older-than", "0", "--json", env=env, timeout=120)
        assert after.returncode == 0 and not json.loads(after.stdout)["held"], after.stdout
        left = set().union(
            *(_entries(cache, kind) for kind in ("binpkgs", "stages", "sources/blobs", "work", "distfiles"))
        )
        assert not left & in_use, left
    finally:
        remove_as(identity, tmp)
