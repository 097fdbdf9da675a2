"""Benchmark of the build pipeline on the synthetic test world.

    .venv/bin/python bench/bench_build.py [--rootless] [--cold-stage]

Measures, side by side in one process:
  1. the synthetic stage (cached per machine; --cold-stage rebuilds it in a fresh cache),
  2. the cold build of the example hierarchy busybox -> glibc -> s6 -> {hello, greeter} from clean
     caches (stage extraction, every emerge, every commit): the cold demo minus podman, with
     --jobs 1 and with --jobs 2 (the two leaves build side by side), each from its own clean caches,
  3. the warm no-op rebuild (goal <= 1 s),
  4. the leaf rebuild (`--force hello`), which reuses binpkgs for everything,
  5. the image sizes (compressed layers, and the slim root vs the builder stage).
Peer: no daemon-based builder (podman build / docker build) can run here offline on a Gentoo stage,
so the peer is the hand-rolled minimum for the last step of the leaf rebuild: `tar -C ROOT -c . |
gzip` of hello's full root (what a shell script would do to package it, without diffing against the
parent, layer sharing, determinism or verification). The ratio shows what our whole leaf rebuild
costs relative to just packaging its root by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
NS = REPO / "examples" / "world"


def timed(argv, env, user=None) -> tuple[float, subprocess.CompletedProcess]:
    if user is not None:
        argv = [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--",
            "env",
            "-i",
            *[f"{k}={v}" for k, v in env.items()],
            *argv,
        ]
        env = None
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/", check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[-6:])} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rootless", action="store_true", help="build as the test user cftest")
    parser.add_argument("--cold-stage", action="store_true", help="also rebuild the synthetic stage")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-build.", dir="/var/tmp"))
    os.chmod(base, 0o755)
    user = pwd.getpwnam("cftest") if args.rootless else None
    try:
        return _measure(args, base, user)
    finally:  # layouts, caches, extracted stages: sub-id owned files too (root, or under the mapping)
        from chrootforge.sources.mapping import remove_under_mapping

        remove_under_mapping(base)


def _measure(args, base: Path, user) -> int:
    from tests.world.distfiles import ensure_distfiles
    from tests.world.stage import ensure_stage

    world_cache = base / "world" if args.cold_stage else Path("/var/tmp/chrootforge-tests/world")
    t0 = time.monotonic()
    stage = ensure_stage(world_cache, quiet=True)
    distfiles = ensure_distfiles(world_cache, quiet=True)
    stage_s = time.monotonic() - t0
    work = base / "out"
    work.mkdir()
    if user:
        os.chown(work, user.pw_uid, user.pw_gid)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": user.pw_dir if user else "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "XDG_CACHE_HOME": str(work / "cache"),
        "SOURCE_DATE_EPOCH": "1700000000",
        "CHROOTFORGE_WORLD_STAGE": str(stage.tarball),
        "CHROOTFORGE_WORLD_KEYRING": str(stage.keyring),
        "CHROOTFORGE_WORLD_DISTFILES": str(distfiles),
    }
    if not user:
        env = {**os.environ, **env}
    # --jobs 2 first, in caches of its own, so that the --jobs 1 build's layout stays for the rest
    parallel = work / "jobs2"
    parallel.mkdir()
    if user:
        os.chown(parallel, user.pw_uid, user.pw_gid)
    env2 = {**env, "XDG_CACHE_HOME": str(parallel / "cache")}
    layout2 = parallel / "layout"
    cold2_s, proc = timed(
        [PY, "-m", "chrootforge", "build", "--json", "--jobs", "2", "--layout", str(layout2), str(NS)],
        env2,
        user,
    )
    report2 = json.loads(proc.stdout)
    layout = work / "layout"
    cf = [PY, "-m", "chrootforge", "build", "--json", "--layout", str(layout)]
    cold_s, proc = timed([*cf, "--jobs", "1", str(NS)], env, user)
    report = json.loads(proc.stdout)
    same = {r["image"]: r["digest"] for r in report["images"]} == {
        r["image"]: r["digest"] for r in report2["images"]
    }
    noop = [timed([*cf, str(NS)], env, user)[0] for _ in range(3)]
    leaf_s, proc = timed([*cf, "--force", str(NS / "hello")], env, user)
    leaf = next(r for r in json.loads(proc.stdout)["images"] if r["image"] == "hello")
    assert leaf["status"] == "built"
    log = (layout.parent / "layout.build/logs/hello/emerge.log").read_text()

    # The peer: package hello's full root by hand (unpacked with umoci, then tar | gzip).
    bundle = base / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:localhost/chrootforge/hello:latest", str(bundle)],
        check=True,
        capture_output=True,
    )
    start = time.monotonic()
    subprocess.run(f"tar -C {bundle}/rootfs -c . | gzip > {base}/peer.tar.gz", shell=True, check=True)
    peer_s = time.monotonic() - start
    stage_tar = stage.tarball.stat().st_size

    print(f"bench_build ({'rootless as cftest' if user else 'root'}, {os.cpu_count()} cores)")
    print(f"  synthetic stage ({'cold' if args.cold_stage else 'cached'}):       {stage_s:7.2f} s")
    print(f"  cold hierarchy build, --jobs 1:      {cold_s:7.2f} s   (goal for the whole demo: 240 s)")
    for r in report["images"]:
        steps = " ".join(f"{k}={v:.1f}" for k, v in r["steps"].items())
        print(f"      {r['image']:<8} {r['seconds']:6.2f} s  [{steps}]")
    print(
        f"  cold hierarchy build, --jobs 2:      {cold2_s:7.2f} s   "
        f"ratio jobs2/jobs1 = {cold2_s / cold_s:.2f}x; digests {'identical' if same else 'DIFFER'}"
    )
    print(f"  warm no-op rebuild:                  {min(noop):7.3f} s   (best of 3; goal 1 s)")
    print(
        f"  leaf rebuild (hello, binpkgs):       {leaf_s:7.2f} s   binary merges: "
        f"{log.count('>>> Emerging binary')}, compiles: {log.count('>>> Compiling source')}"
    )
    print(
        f"  peer: tar | gzip of hello's root:    {peer_s:7.2f} s   ratio leaf/peer = {leaf_s / peer_s:.1f}x"
    )
    print("  image sizes (compressed layers):")
    for r in report["images"]:
        print(f"      {r['image']:<8} {r['size'] / 1048576:6.2f} MiB in {r['layers']} layer(s)")
    print(f"      (the builder stage tarball: {stage_tar / 1048576:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
