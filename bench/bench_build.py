"""Benchmark of the build pipeline on the synthetic test world.

    .venv/bin/python bench/bench_build.py [--rootless] [--cold-stage] [--rounds N] [--wide-only]

Measures, side by side in one process:
  1. the synthetic stage (cached per machine; --cold-stage rebuilds it in a fresh cache),
  2. the cold build of the example hierarchy busybox -> glibc -> s6 -> {hello, greeter} from clean
     caches (stage extraction, every emerge, every commit): the cold demo minus podman, with
     --jobs 1 and with --jobs 2 (the two leaves build side by side), each from its own clean caches,
  3. the same for the wide bench namespace bench/namespaces/wide (busybox -> glibc -> six leaves),
     where --jobs 2 has siblings to overlap: the ratio jobs2/jobs1 there is the one that shows
     whether images really build side by side (the world has only two leaves, built last);
     with --rounds N each pair runs N times, in alternating order; the ratio is the median of the
     rounds' ratios (each pair ran under about the same load),
  4. the warm no-op rebuild (goal <= 1 s),
  5. the leaf rebuild (`--force hello`), which reuses binpkgs for everything,
  6. the image sizes (compressed layers, and the slim root vs the builder stage).
--wide-only measures item 3 alone.
Peer: no daemon-based builder (podman build / docker build) can run here offline on a Gentoo stage,
so the peer is the hand-rolled minimum for the last step of the leaf rebuild: `tar -C ROOT -c . |
gzip` of hello's full root (what a shell script would do to package it, without diffing against the
parent, layer sharing, determinism or verification). The ratio shows what our whole leaf rebuild
costs relative to just packaging its root by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pwd
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
NS = REPO / "examples" / "world"
WIDE = REPO / "bench" / "namespaces" / "wide"


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
    parser.add_argument("--rounds", type=int, default=1, help="cold --jobs 1/--jobs 2 pairs per namespace")
    parser.add_argument("--wide-only", action="store_true", help="only the wide namespace's cold pairs")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-build.", dir="/var/tmp"))
    os.chmod(base, 0o755)
    user = pwd.getpwnam("cftest") if args.rootless else None
    try:
        return _measure(args, base, user)
    finally:  # layouts, caches, extracted stages: sub-id owned files too (root, or under the mapping)
        from chrootforge.sources.mapped_run import remove_under_mapping

        remove_under_mapping(base)


@dataclasses.dataclass
class Pairs:
    """Cold builds of one namespace with --jobs 1 and --jobs 2, each from clean caches."""

    jobs1: list[float]
    jobs2: list[float]
    cpu1: list[float]  # CPU seconds of each build and everything it ran
    cpu2: list[float]
    overlap2: list[float]  # the images' own seconds summed, over the wall time: images in flight
    bound2: list[float]  # for each --jobs 1 build: what its graph allows --jobs 2 (graph_bound)
    same: bool  # every build gave the same digests
    layout: Path  # the last --jobs 1 build's layout, and its caches (kept for the warm measurements)
    cache: Path
    report: dict  # its --json report
    load: list[float]  # the 1-minute load average before each build


def cold_pairs(ns: Path, work: Path, env: dict, user, rounds: int) -> Pairs:
    """`rounds` pairs of cold builds, alternating which of the two goes first, so that a change of
    the machine's load hits both alike."""
    pairs = Pairs([], [], [], [], [], [], True, Path(), Path(), {}, [])
    digests = None
    for r in range(rounds):
        for jobs in (2, 1) if r % 2 == 0 else (1, 2):
            run = work / f"r{r}-jobs{jobs}"
            run.mkdir(parents=True)
            if user:
                os.chown(run, user.pw_uid, user.pw_gid)
            layout = run / "layout"
            argv = [PY, "-m", "chrootforge", "build", "--json", "--jobs", str(jobs), "--layout", str(layout)]
            pairs.load.append(os.getloadavg()[0])
            cache = run / "cache"
            cpu = children_cpu()
            seconds, proc = timed([*argv, str(ns)], {**env, "XDG_CACHE_HOME": str(cache)}, user)
            cpu = children_cpu() - cpu
            report = json.loads(proc.stdout)
            got = {i["image"]: i["digest"] for i in report["images"]}
            digests = digests or got
            pairs.same = pairs.same and got == digests
            (pairs.jobs2 if jobs == 2 else pairs.jobs1).append(seconds)
            (pairs.cpu2 if jobs == 2 else pairs.cpu1).append(cpu)
            if jobs == 2:
                pairs.overlap2.append(sum(i["seconds"] for i in report["images"]) / seconds)
            print(
                f"  {ns.name} round {r + 1} --jobs {jobs}: {seconds:.1f} s, {cpu:.1f} CPU-s, "
                f"load {pairs.load[-1]:.1f}",
                file=sys.stderr,
                flush=True,
            )
            if jobs == 1:
                pairs.layout, pairs.cache, pairs.report = layout, cache, report
                pairs.bound2.append(graph_bound(report, parents_of(ns), seconds) / seconds)
    return pairs


def parents_of(ns: Path) -> dict[str, str]:
    specs = ns.glob("*/image.toml")
    return {spec.parent.name: tomllib.loads(spec.read_text()).get("parent", "scratch") for spec in specs}


def graph_bound(report: dict, parents: dict[str, str], wall: float, jobs: int = 2) -> float:
    """How long a --jobs 1 build would take with `jobs` slots if every image ran as fast side by side
    as it did alone: the part outside the images (the stage's preparation) plus the images placed
    as the scheduler places them (in build order, each once its parent is done and a slot is free).
    The gap between this and the measured --jobs 2 time is images slowing each other down (CPU), not
    the graph or a lock."""
    done: dict[str, float] = {}
    slots = [0.0] * jobs
    for image in report["images"]:  # in build order
        slot = min(range(jobs), key=slots.__getitem__)
        start = max(slots[slot], done.get(parents[image["image"]], 0.0))
        done[image["image"]] = slots[slot] = start + image["seconds"]
    outside = wall - sum(i["seconds"] for i in report["images"])
    return outside + max(done.values())


def children_cpu() -> float:
    """CPU seconds of the commands run so far (a build's sandboxes and emerges included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def print_pairs(name: str, pairs: Pairs) -> None:
    one, two = statistics.median(pairs.jobs1), statistics.median(pairs.jobs2)
    cpu1, cpu2 = statistics.median(pairs.cpu1), statistics.median(pairs.cpu2)
    rounds = len(pairs.jobs1)
    ratios = [b / a for a, b in zip(pairs.jobs1, pairs.jobs2, strict=True)]
    print(
        f"  cold {name} build ({len(pairs.report['images'])} images, {rounds} round(s), medians; "
        f"load {min(pairs.load):.1f}-{max(pairs.load):.1f}):"
    )
    print(f"      --jobs 1: {one:7.2f} s, {cpu1:6.1f} CPU-s   (goal for the whole demo: 240 s)")
    for r in pairs.report["images"]:
        steps = " ".join(f"{k}={v:.1f}" for k, v in r["steps"].items())
        print(f"        {r['image']:<12} {r['seconds']:6.2f} s  [{steps}]")
    print(
        f"      --jobs 2: {two:7.2f} s, {cpu2:6.1f} CPU-s   ratio jobs2/jobs1 = "
        f"{statistics.median(ratios):.2f}x (median of the rounds: {' '.join(f'{x:.2f}' for x in ratios)}); "
        f"digests {'identical' if pairs.same else 'DIFFER'}"
    )
    # A build cannot finish before its CPU time spread over every core; when the machine is shared,
    # fewer cores are ours, and --jobs 2 gains only as far as the build was not using them already.
    bound, flight = statistics.median(pairs.bound2), statistics.median(pairs.overlap2)
    print(
        f"      the graph allows jobs2/jobs1 = {bound:.2f}x (images as fast side by side as alone); "
        f"images in flight with --jobs 2: {flight:.2f} on average"
    )
    print(f"      cores used: --jobs 1 {cpu1 / one:.2f}, --jobs 2 {cpu2 / two:.2f} of {os.cpu_count()}")


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
        "SOURCE_DATE_EPOCH": "1700000000",
        "CHROOTFORGE_WORLD_STAGE": str(stage.tarball),
        "CHROOTFORGE_WORLD_KEYRING": str(stage.keyring),
        "CHROOTFORGE_WORLD_DISTFILES": str(distfiles),
    }
    if not user:
        env = {**os.environ, **env}
    world = None if args.wide_only else cold_pairs(NS, work / "world", env, user, args.rounds)
    wide = cold_pairs(WIDE, work / "wide", env, user, args.rounds)
    print(f"bench_build ({'rootless as cftest' if user else 'root'}, {os.cpu_count()} cores)")
    if world is None:
        print_pairs("wide", wide)
        return 0
    layout, report = world.layout, world.report
    env = {**env, "XDG_CACHE_HOME": str(world.cache)}
    cf = [PY, "-m", "chrootforge", "build", "--json", "--layout", str(layout)]
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

    print(f"  synthetic stage ({'cold' if args.cold_stage else 'cached'}):       {stage_s:7.2f} s")
    print_pairs("world", world)
    print_pairs("wide", wide)
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
