"""Benchmark: chrootforge commit against peer tools, run side by side, as ratios.

    .venv/bin/python bench/bench_oci.py [TREE] [--rounds N] [--baseline CHECKOUT] [--zstd-only]

TREE defaults to $CF_BENCH_TREE or /usr/lib/x86_64-linux-gnu (a real, ~650 MB tree of libraries).
Each round runs every contender once, interleaved, so machine load hits all of them alike; medians
are reported, wall and CPU (CPU seconds are steadier when other work loads the machine). Goals:
zstd <= 1.1x of `tar | zstd -3 -T2 | sha256sum`; gzip >= 1.7x faster than `tar | gzip -6 | sha256sum`;
>= 2x faster than umoci insert / buildah commit (issue 2); gzip commit no slower than umoci insert's
gzip, with a layer no bigger than umoci's Go gzip (issue 13). Everything written goes to one temp dir,
removed at the end. --baseline adds the zstd commit of another checkout of chrootforge (e.g. a
`git worktree` of main), run in a child process that times only its commit, in the same rounds: a
before/after that the machine's load hits alike. --zstd-only leaves out gzip, umoci and buildah, so
more rounds fit in one stretch of load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chrootforge import oci


def cpu_now() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of fn; fn may return its own (wall, CPU) for the part that counts."""
    start, cpu = time.monotonic(), cpu_now()
    own = fn()
    return own if own is not None else (time.monotonic() - start, cpu_now() - cpu)


def layer_size(layout: Path) -> int:
    """The compressed size of the (single) layer: the biggest blob."""
    return max(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())


def sh(cmd: str, **kw) -> None:
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def tar_peer(tree: Path, compressor: str) -> None:
    sh(f"tar -C {tree.parent} --sort=name -cf - {tree.name} | {compressor} | sha256sum")


def ours(tree: Path, work: Path, compression: str) -> None:
    layout = work / f"ours-{compression}"
    shutil.rmtree(layout, ignore_errors=True)
    oci.commit(tree, layout, "bench", compression=compression, quiet=True)


_BASELINE = """
import os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from chrootforge import oci
def cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime
start, used = time.monotonic(), cpu()
oci.commit(sys.argv[2], sys.argv[3], "bench", compression=sys.argv[4], quiet=True)
print(time.monotonic() - start, cpu() - used)
"""


def baseline(checkout: Path, tree: Path, work: Path, compression: str) -> tuple[float, float]:
    """The commit of another checkout, timed inside its own process (its start-up left out)."""
    layout = work / f"baseline-{compression}"
    shutil.rmtree(layout, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", _BASELINE, str(checkout), str(tree), str(layout), compression],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def umoci_insert(tree: Path, work: Path) -> tuple[float, float]:
    layout = work / "umoci"
    shutil.rmtree(layout, ignore_errors=True)
    sh(f"umoci init --layout {layout} && umoci new --image {layout}:b")
    start, cpu = time.monotonic(), cpu_now()
    sh(f"umoci insert --image {layout}:b {tree} /")
    return time.monotonic() - start, cpu_now() - cpu


def buildah_commit(tree: Path, work: Path) -> tuple[float, float]:
    store = work / "buildah"
    shutil.rmtree(store, ignore_errors=True)
    g = f"--root {store}/root --runroot {store}/run --storage-driver vfs"
    ctr = subprocess.run(
        f"buildah {g} from scratch", shell=True, check=True, capture_output=True, text=True
    ).stdout.strip()
    mnt = subprocess.run(
        f"buildah {g} mount {ctr}", shell=True, check=True, capture_output=True, text=True
    ).stdout.strip()
    sh(f"cp -a {tree}/. {mnt}/")
    start, cpu = time.monotonic(), cpu_now()
    sh(f"buildah {g} commit --quiet {ctr} oci:{store}/out:b")
    elapsed = time.monotonic() - start, cpu_now() - cpu
    sh(f"buildah {g} rm -a; rm -rf {store}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", nargs="?", default=os.environ.get("CF_BENCH_TREE", "/usr/lib/x86_64-linux-gnu"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another checkout whose zstd commit runs beside ours")
    ap.add_argument("--zstd-only", action="store_true", help="only the zstd commits and their peer")
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")
    size = int(
        subprocess.run(["du", "-sb", str(tree)], capture_output=True, text=True, check=True).stdout.split()[0]
    )
    print(f"tree {tree}: {size / 1e6:.0f} MB, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    sh(f"tar -C {tree.parent} -cf - {tree.name} > /dev/null")  # warm the page cache
    work = Path(tempfile.mkdtemp(prefix="cf-bench-oci.", dir="/var/tmp"))
    times: dict[str, list[tuple[float, float]]] = {}
    contenders = {
        "ours zstd": lambda: timed(lambda: ours(tree, work, "zstd")),
        "tar|zstd -3 -T2": lambda: timed(lambda: tar_peer(tree, "zstd -3 -T2")),
    }
    if args.baseline:
        contenders["baseline zstd"] = lambda: baseline(args.baseline.resolve(), tree, work, "zstd")
    if not args.zstd_only:
        contenders |= {
            "ours gzip": lambda: timed(lambda: ours(tree, work, "gzip")),
            "tar|gzip -6": lambda: timed(lambda: tar_peer(tree, "gzip -6")),
        }
        if shutil.which("pigz"):
            contenders["tar|pigz -6 -p2"] = lambda: timed(lambda: tar_peer(tree, "pigz -6 -p 2"))
        if os.getuid() == 0 and shutil.which("umoci"):
            contenders["umoci insert"] = lambda: timed(lambda: umoci_insert(tree, work))
        if os.getuid() == 0 and shutil.which("buildah"):
            contenders["buildah commit"] = lambda: timed(lambda: buildah_commit(tree, work))
    try:
        for r in range(args.rounds):
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))  # no one always first
            for name in order:
                times.setdefault(name, []).append(contenders[name]())
            print(
                f"round {r + 1} (load {os.getloadavg()[0]:.1f}): "
                + ", ".join(f"{n} {t[-1][0]:.1f}s" for n, t in times.items()),
                flush=True,
            )
        med = {n: statistics.median(w for w, _ in t) for n, t in times.items()}
        cpu = {n: statistics.median(c for _, c in t) for n, t in times.items()}
        print("\nmedian wall seconds: " + ", ".join(f"{n} {t:.2f}" for n, t in med.items()))
        print("median CPU seconds: " + ", ".join(f"{n} {t:.2f}" for n, t in cpu.items()))

        def ratio(a: str, b: str, label: str) -> None:
            if a in med and b in med:
                rounds = statistics.median(x[0] / y[0] for x, y in zip(times[a], times[b], strict=True))
                print(
                    f"  {label}: {med[a] / med[b]:.2f}x (CPU {cpu[a] / cpu[b]:.2f}x; "
                    f"median of the rounds' ratios {rounds:.2f}x)"
                )

        ratio("ours zstd", "tar|zstd -3 -T2", "zstd commit / tar|zstd -3 -T2 (goal <= 1.1)")
        ratio("baseline zstd", "tar|zstd -3 -T2", "the baseline's zstd commit / tar|zstd -3 -T2")
        ratio("ours zstd", "baseline zstd", "zstd commit / the baseline's")
        ratio("tar|gzip -6", "ours gzip", "speed-up of gzip commit over tar|gzip -6 (goal >= 1.7)")
        ratio("tar|pigz -6 -p2", "ours gzip", "speed-up of gzip commit over tar|pigz -p2")
        # "the same commit" as the zstd line (issue 2); buildah commit writes UNcompressed layers by
        # default and umoci insert gzips with Go's faster deflate, so the gzip ratios are also shown.
        ratio("umoci insert", "ours zstd", "speed-up of zstd commit over umoci insert (goal >= 2)")
        ratio("buildah commit", "ours zstd", "speed-up of zstd commit over buildah commit (goal >= 2)")
        ratio("umoci insert", "ours gzip", "speed-up of gzip commit over umoci insert (gzip)")
        ratio("buildah commit", "ours gzip", "speed-up of gzip commit over buildah commit (no compression)")
        if "umoci insert" in med:
            ours_gz, umoci_gz = layer_size(work / "ours-gzip"), layer_size(work / "umoci")
            print(
                f"  gzip layer size: ours {ours_gz / 1e6:.1f} MB, umoci (Go gzip) {umoci_gz / 1e6:.1f} MB: "
                f"{ours_gz / umoci_gz:.3f}x (goal <= 1)"
            )
        # reproducibility: the same tree twice, in two layouts, gives one manifest digest
        a = oci.commit(tree, work / "r1", "x", compression="zstd", quiet=True).digest
        b = oci.commit(tree, work / "r2", "x", compression="zstd", quiet=True).digest
        print(f"  reproducible (zstd, two layouts): {a == b} ({a[:19]})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
