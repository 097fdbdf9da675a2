"""Benchmark chrootforge.sources: extraction against GNU `tar -xpf`, and the warm start.

    .venv/bin/python bench/bench_sources.py [--size-mb 350] [--runs 2]

1. A large generated tree (~350 MB, ~30k files, text-like so it compresses about 3x), packed with
   `tar` and compressed with `xz -T0` and `zstd -T0`. Generating them takes minutes, so these two
   tarballs are kept in /var/tmp/chrootforge-bench ($CHROOTFORGE_BENCH_DIR) for the next run, and the
   script says so; everything else it makes (extractions, stage caches) is removed before it exits.
   For each: best-of-N wall time of `tar -xpf T -C d` vs chrootforge's extract(T, d), side by side.
2. The synthetic stage tarball (tests/world), when one is found; otherwise a note.
3. Warm start: from "the stage is in the stage cache" to "the sandbox ran /bin/true in a fresh
   pristine builder" (pristine_root hit + fresh_builder + run_sandboxed).
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chrootforge import log
from chrootforge.sources.extract import extract
from chrootforge.sources.mapped_run import remove_under_mapping

WORK = Path(os.environ.get("CHROOTFORGE_BENCH_DIR", "/var/tmp/chrootforge-bench"))
VERSION = "v1"


def make_tree(root: Path, size_mb: int) -> None:
    rng = random.Random(42)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(20000)]
    base = " ".join(rng.choices(vocab, k=12_000_000)).encode()[: 64 << 20]  # > xz's dictionary
    total, target, n = 0, size_mb << 20, 0
    while total < target:
        folder = root / f"usr/share/d{n // 200:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = min(int(rng.lognormvariate(8.6, 1.3)), 4 << 20)
        start = rng.randrange(0, len(base) - size)
        (folder / f"f{n:06d}").write_bytes(base[start : start + size])
        total += size
        n += 1
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in ("true", "sh"):
        os.symlink("busybox", root / "bin" / applet)
    for name in ("dev", "proc", "sys", "tmp", "etc", "root", "run"):
        (root / name).mkdir(exist_ok=True)


def generated_tarballs(size_mb: int) -> dict[str, Path]:
    out = {"xz": WORK / f"big-{VERSION}-{size_mb}.tar.xz", "zst": WORK / f"big-{VERSION}-{size_mb}.tar.zst"}
    if all(p.exists() for p in out.values()):
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix="tree.", dir=WORK))
    plain = tree.with_suffix(".tar")
    try:
        print(f"generating a {size_mb} MB tree (once; cached in {WORK}) ...", flush=True)
        make_tree(tree, size_mb)
        subprocess.run(["tar", "-C", str(tree), "--numeric-owner", "-cf", str(plain), "."], check=True)
        subprocess.run(["xz", "-T0", "-6", "-kf", str(plain)], check=True)
        subprocess.run(["zstd", "-T0", "-q", "-3", "-f", str(plain), "-o", str(plain) + ".zst"], check=True)
        os.replace(str(plain) + ".xz", out["xz"])
        os.replace(str(plain) + ".zst", out["zst"])
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        for leftover in (plain, Path(f"{plain}.xz"), Path(f"{plain}.zst")):
            leftover.unlink(missing_ok=True)
    return out


def synthetic_stage() -> Path | None:
    candidates = [os.environ.get("CHROOTFORGE_SYNTHETIC_STAGE", "")]
    for pattern in (
        "/var/tmp/chrootforge-tests/world/stage-*/stage3-*.tar.*",  # tests/helpers/world.py
        f"/var/tmp/chrootforge-tests/world-{os.getuid()}/stage-*/stage3-*.tar.*",
        "/var/tmp/chrootforge-tests/**/*stage*.tar.zst",
        "/var/tmp/chrootforge-tests/**/*stage*.tar.xz",
        os.path.expanduser("~/.cache/chrootforge/**/*synthetic*stage*.tar*"),
        "/var/tmp/**/synthetic-stage*.tar*",
    ):
        candidates += sorted(glob.glob(pattern, recursive=True))
    for item in candidates:
        if (
            item
            and os.path.isfile(item)
            and os.path.getsize(item) > 10 << 20
            and not item.endswith((".asc", ".DIGESTS"))
        ):
            return Path(item)
    return None


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_now() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def compare(label: str, tarball: Path, runs: int, dest_root: Path) -> None:
    """Best-of-N wall and CPU seconds, alternating tools; the tarball is pre-read into the page cache."""
    results: dict[str, list[tuple[float, float]]] = {"tar": [], "cf": []}
    for _ in range(runs):
        for which in ("tar", "cf"):
            subprocess.run(["cat", str(tarball)], stdout=subprocess.DEVNULL, check=True)
            subprocess.run(["sync"], check=False)
            dest = Path(tempfile.mkdtemp(prefix="x.", dir=dest_root))
            cpu0 = cpu_now()
            if which == "tar":
                wall = timed(
                    lambda d=dest: subprocess.run(["tar", "-xpf", str(tarball), "-C", str(d)], check=True)
                )
            else:
                dest.rmdir()
                wall = timed(lambda d=dest: extract(tarball, d))
            results[which].append((wall, cpu_now() - cpu0))
            remove_under_mapping(dest)
    (tw, tc), (cw, cc) = min(results["tar"]), min(results["cf"])
    tc, cc = min(c for _, c in results["tar"]), min(c for _, c in results["cf"])
    mb = tarball.stat().st_size / 1e6
    print(
        f"{label:<36} {mb:7.1f} MB | wall: tar -xpf {tw:6.2f}s  chrootforge {cw:6.2f}s  ratio {cw / tw:4.2f}x"
        f" | cpu: {tc:6.2f}s vs {cc:6.2f}s  ratio {cc / tc:4.2f}x",
        flush=True,
    )


def warm_start(tarball: Path, runs: int, scratch: Path) -> None:
    from chrootforge.sandbox import SandboxConfig, run_sandboxed
    from chrootforge.sources.stage_cache import fresh_builder, pristine_root, remove_builder, unverified_stage

    cache = scratch / "stage-cache"
    tarball = unverified_stage(tarball)
    cold = timed(lambda: pristine_root(tarball, cache_dir=cache))
    times = []
    for i in range(runs + 2):
        work = scratch / f"builder-{i}"

        def start(work=work):
            root = fresh_builder(pristine_root(tarball, cache_dir=cache), work)
            code = run_sandboxed(SandboxConfig(root=root, argv=["/bin/true"]))
            assert code == 0, code

        times.append(timed(start))
        remove_builder(work)
    print(
        f"{'warm start, root':<38} stage {tarball.path.name}: first extraction {cold:.2f}s, "
        f"warm start best {min(times):.3f}s, median {sorted(times)[len(times) // 2]:.3f}s (goal <= 0.5s)"
    )


ROOTLESS_SNIPPET = """
import json, os, sys, time
from pathlib import Path
from chrootforge import log
from chrootforge.sandbox import SandboxConfig, run_sandboxed
from chrootforge.sources.stage_cache import fresh_builder, pristine_root, remove_builder, unverified_stage
log.set_quiet(True)
tarball, cache, runs = unverified_stage(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter(); pristine_root(tarball, cache_dir=cache); cold = time.perf_counter() - t
times = []
for i in range(runs):
    work = cache.parent / f"builder-{os.getpid()}-{i}"
    t = time.perf_counter()
    code = run_sandboxed(SandboxConfig(root=fresh_builder(pristine_root(tarball, cache_dir=cache), work),
                                       argv=["/bin/true"]))
    times.append(time.perf_counter() - t)
    remove_builder(work)
    assert code == 0, code
print(json.dumps({"cold": cold, "times": times}))
"""


def warm_start_rootless(tarball: Path, runs: int, scratch: Path, user: str = "cftest") -> None:
    """The same measurement as an unprivileged user with a subuid range (when run as root)."""
    import json
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        print(f"warm start (rootless): no user {user}; skipped")
        return
    home = scratch / f"rootless-{user}"  # root removes it with the rest, sub-id owned files too
    home.mkdir()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    repo = Path(__file__).resolve().parents[1]
    site = next(repo.glob(".venv/lib/python3*/site-packages"), None)
    env = [
        "env",
        "-i",
        f"HOME={entry.pw_dir}",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        f"PYTHONPATH={repo}" + (f":{site}" if site else ""),
    ]
    argv = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--init-groups",
        "--",
        *env,
        "/usr/bin/python3",
        "-c",
        ROOTLESS_SNIPPET,
        str(tarball),
        str(home / "stages"),
        str(runs + 2),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"warm start (rootless): failed: {done.stderr.strip().splitlines()[-1:]}")
        return
    data = json.loads(done.stdout.strip().splitlines()[-1])
    times = sorted(data["times"])
    print(
        f"{'warm start, rootless (' + user + ')':<38} first extraction {data['cold']:.2f}s, "
        f"warm start best {times[0]:.3f}s, median {times[len(times) // 2]:.3f}s (goal <= 0.5s)"
    )


def default_dest(size_mb: int) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 4 * (size_mb << 20):
        return Path(tempfile.mkdtemp(prefix="cf-bench.", dir=shm))
    WORK.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="dest.", dir=WORK))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=350)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dest",
        default=None,
        help="where to extract (default /dev/shm when it has room: disk writeback is noise)",
    )
    args = parser.parse_args()
    log.set_quiet(True)
    print(f"bench_sources: uid {os.getuid()}, {os.cpu_count()} cpus")
    big = generated_tarballs(args.size_mb)
    dest_root = (
        Path(tempfile.mkdtemp(prefix="cf-bench.", dir=args.dest)) if args.dest else default_dest(args.size_mb)
    )
    dest_root.chmod(0o755)  # as root the extraction runs as an unprivileged range, which enters it
    scratch = Path(tempfile.mkdtemp(prefix="scratch.", dir=WORK))
    scratch.chmod(0o755)
    try:
        with open("/proc/loadavg") as handle:
            load = handle.read().split()[0]
        print(
            f"extracting into {dest_root}; load average {load} (other work on the machine skews wall times)"
        )
        for kind, path in big.items():
            compare(f"generated tree ({args.size_mb} MB), {kind}", path, args.runs, dest_root)
        stage = synthetic_stage()
        if stage:
            compare(f"synthetic stage {stage.name}", stage, args.runs, dest_root)
        else:
            print(
                "synthetic stage: not found (build it with the tests/world suite, or set "
                "CHROOTFORGE_SYNTHETIC_STAGE=PATH); skipped"
            )
        warm_start(stage or big["zst"], args.runs, scratch)
        if os.getuid() == 0:
            warm_start_rootless(stage or big["zst"], args.runs, scratch)
    finally:
        for path in (dest_root, scratch):
            remove_under_mapping(path)
    kept = sum(p.stat().st_size for p in big.values())
    print(
        f"kept {WORK} ({kept / 1e6:.0f} MB): the generated tarballs, reused by the next run "
        f"(delete it to regenerate them)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
