"""`cache prune` while a real build runs (the test world's stage, real emerge), as root and as the
unprivileged user: prune skips everything the build uses (its binpkgs, extracted stage, verified
stage3, distfiles and work dir; with --binhost the binhost mirror), the build succeeds, and once it
has ended the same prune removes those entries (they are real entries of their kinds, not
leftovers prune cannot see).

The first build is `build --force` of an image built before, so that emerge takes the binary
package the first build made (the moment the issue saw "File not found"); the second starts from
an empty cache with `--jobs 2 --binhost` (the image builds in a worker process, from the binhost).
Prune runs over and over, from the moment the build's inputs are ready until it ends."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.rootfs import remove_as
from tests.helpers.world_build import namespace, own

pytestmark = pytest.mark.slow


def _entries(cache: Path, kind: str) -> set[str]:
    """The entries of a kind as `cache ls` names them: directories (two levels down for the
    binhost mirrors: binhost/<url id>/<key>), except the distfiles."""
    folders = [cache / "chrootforge" / kind]
    if kind == "binhost":
        folders = [p for f in folders if f.is_dir() for p in f.iterdir() if p.is_dir() and p.name[0] != "."]
    return {
        p.relative_to(cache / "chrootforge").as_posix()
        for folder in folders
        if folder.is_dir()
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or kind == "distfiles")
    }


KINDS = ("binpkgs", "stages", "sources/blobs", "work", "distfiles")


def _all_entries(cache: Path, kinds=KINDS) -> set[str]:
    return set().union(*(_entries(cache, kind) for kind in kinds))


def _prune_during(identity, argv: list[str], env: dict, emerge_log: Path, cache: Path) -> dict:
    """Run `chrootforge ARGV` and `cache prune --older-than 0` over and over while it runs, from
    the moment its inputs are ready until it ends: what prune held and removed, and which entries
    there were while emerge ran."""
    emerge_log.unlink(missing_ok=True)
    build = identity.popen(
        identity.cf_argv(*argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []  # the build's stderr as it comes
    reader = threading.Thread(target=lambda: lines.extend(iter(build.stderr.readline, "")), daemon=True)
    reader.start()

    def said(text: str) -> bool:
        return any(text in line for line in list(lines))

    got = {"rounds": 0, "during_emerge": 0, "held": set(), "removed": set(), "present": set()}
    try:
        # from the moment the build has its inputs ready (it holds them from before then)
        while build.poll() is None and not said("stage ready in"):
            time.sleep(0.05)
        while build.poll() is None:
            emerging = emerge_log.exists() and not said("    emerge ")
            present = _all_entries(cache, (*KINDS, "binhost")) if emerging else set()
            pruned = identity.cf("cache", "prune", "--older-than", "0", "--json", env=env, timeout=120)
            if build.poll() is not None:
                break  # the build ended meanwhile: this round may have run after it
            assert pruned.returncode == 0, pruned.stderr
            result = json.loads(pruned.stdout)
            got["rounds"] += 1
            if emerging and not said("    emerge "):  # (emerge ran all along)
                got["during_emerge"] += 1
                got["present"] |= present
            got["held"] |= {e["name"] for e in result["held"]}
            got["removed"] |= {e["name"] for e in result["removed"]}
        build.wait(900)
        reader.join(60)
    finally:
        if build.poll() is None:
            build.kill()
    err = "".join(lines)
    assert build.returncode == 0, f"the build failed while prune ran:\n{err[-3000:]}"
    assert [r["status"] for r in json.loads(build.stdout.read())["images"]] == ["built"]
    assert got["rounds"] >= 2 and got["during_emerge"] >= 1, (got, err[-2000:])
    assert "Emerging binary" in emerge_log.read_text()  # emerge took the binpkg, as it should
    return got


def _check(got: dict, in_use: set[str], identity, env: dict, cache: Path) -> None:
    """What the build used was held every time and never removed; once the build has ended, they
    are ordinary entries that prune removes (the round at the build's end may have done so)."""
    assert in_use <= got["held"], f"not held: {in_use - got['held']}"
    assert not got["removed"] & in_use, f"removed while in use: {got['removed'] & in_use}"
    after = identity.cf("cache", "prune", "--older-than", "0", "--json", env=env, timeout=120)
    assert after.returncode == 0 and not json.loads(after.stdout)["held"], after.stdout
    left = _all_entries(cache, (*KINDS, "binhost"))
    assert not left & in_use, left


@pytest.mark.parametrize("who", ["root", "user"])
def test_prune_during_a_forced_build_skips_what_the_build_uses(who, world_inputs, world_repo):
    identity = get_identity(who)
    tmp = identity.mkdtemp("holds.")
    try:
        ns = namespace(tmp, world_repo, drop=("glibc", "s6", "hello", "greeter"))  # busybox alone
        own(identity, ns)
        cache = tmp / "cache"
        env = {**world_inputs.env(), "XDG_CACHE_HOME": str(cache), "SOURCE_DATE_EPOCH": ""}
        layout = tmp / "layout"
        build = ["build", "--json", "--layout", str(layout)]
        first = identity.cf(*build, str(ns), env=env, timeout=900)
        assert first.returncode == 0, first.stderr[-3000:]
        # what the forced build will use again: one of each, and every distfile
        in_use = _all_entries(cache)
        for kind in ("binpkgs/", "stages/", "sources/blobs/", "work/"):
            assert len([name for name in in_use if name.startswith(kind)]) == 1, (kind, in_use)
        assert any(name.startswith("distfiles/") for name in in_use)
        # the packages the first build made, served as a binhost (URL/<binpkgs key>/) for the last
        key = next(name for name in in_use if name.startswith("binpkgs/")).split("/", 1)[1]
        binhost = tmp / "binhost"
        assert identity.run(["mkdir", str(binhost)]).returncode == 0
        copied = identity.run(["cp", "-r", str(cache / "chrootforge" / "binpkgs" / key), str(binhost / key)])
        assert copied.returncode == 0, copied.stderr

        emerge_log = Path(f"{layout}.build") / "logs" / "busybox" / "emerge.log"
        got = _prune_during(identity, [*build, "--force", str(ns)], env, emerge_log, cache)
        assert got["present"] == in_use
        _check(got, in_use, identity, env, cache)

        # the cache is empty now: --jobs 2 (the image builds in a worker) with --binhost takes the
        # package from the binhost into the cache's binhost mirror, which is held as well
        argv = [*build, "--force", "--jobs", "2", "--binhost", binhost.as_uri(), str(ns)]
        got = _prune_during(identity, argv, env, emerge_log, cache)
        in_use = got["present"]  # all made by this build: the cache was empty
        mirrors = {name for name in in_use if name.startswith("binhost/")}
        assert len(mirrors) == 1 and next(iter(mirrors)).endswith(f"/{key}"), in_use
        assert {name.split("/", 1)[0] for name in in_use} >= {
            "binpkgs",
            "stages",
            "sources",
            "work",
            "distfiles",
        }
        _check(got, in_use, identity, env, cache)
    finally:
        remove_as(identity, tmp)
