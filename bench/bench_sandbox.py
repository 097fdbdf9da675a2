"""Start-up cost of `chrootforge run ROOT -- /bin/true` against its floors, side by side.

Run: .venv/bin/python bench/bench_sandbox.py [--rounds R] [--runs N]
Compares, side by side in one process (R rounds of N interleaved runs each; per round the median
wall time of each command; reported: the median over the rounds of each round's ratio, so a burst
of load on a shared machine moves one round, not the verdict):
  python -c pass                  the interpreter's own start (our floor)
  chrootforge run (net none)      user+mount+pid+uts+ipc+net namespaces, full map, pivot_root
  chrootforge run --network host  the same without a net namespace
  bwrap                           Debian's bubblewrap with equivalent namespaces and mounts
  unshare + chroot                util-linux unshare (single-id map) and chroot, no mounts
Goal: chrootforge run <= 1.5x python -c pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_rootfs(base: Path) -> Path:
    root = base / "rootfs"
    for d in (
        "bin",
        "proc",
        "dev",
        "sys",
        "run",
        "tmp",
        "etc",
        "var/tmp/portage",
        "var/db/repos/gentoo",
        "root",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    if os.getuid() == 0:
        # Root's sandbox is an unprivileged range: give it the tree, as extracting a stage does.
        sys.path.insert(0, str(REPO))
        from chrootforge.sandbox.idmap import detect_idmap

        owner = detect_idmap().to_host(0, 0)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [".", *dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), *owner)
    return root


def commands(root: Path, repo: Path) -> dict[str, list[str]]:
    py = sys.executable
    cf = [py, "-m", "chrootforge", "run", str(root), "--repo", f"gentoo={repo}", "--portage-tmpfs", "64M"]
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "chrootforge run": [*cf, "--", "/bin/true"],
        "chrootforge run --network host": [*cf, "--network", "host", "--", "/bin/true"],
    }
    if shutil.which("bwrap"):
        cmds["bwrap"] = [
            "bwrap",
            "--unshare-all",
            "--unshare-user",
            "--uid",
            "0",
            "--gid",
            "0",
            "--die-with-parent",
            "--bind",
            str(root),
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/run",
            "--ro-bind",
            str(repo),
            "/var/db/repos/gentoo",
            "--tmpfs",
            "/var/tmp/portage",
            "/bin/true",
        ]
    sbin = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    chroot = shutil.which("chroot", path=sbin)
    if shutil.which("unshare", path=sbin) and chroot:
        cmds["unshare + chroot"] = [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--pid",
            "--fork",
            "--net",
            "--uts",
            "--ipc",
            chroot,
            str(root),
            "/bin/true",
        ]
    return cmds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10, help="interleaved runs per round")
    args = parser.parse_args()
    # Measure what an installed package runs: compiled bytecode. (A checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every start.)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "chrootforge")], check=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO}:{env.get('PYTHONPATH', '')}".rstrip(":")
    with tempfile.TemporaryDirectory(prefix="cf-bench.") as tmp:
        os.chmod(tmp, 0o755)  # as root, the sandbox is an unprivileged range that must reach it
        root = make_rootfs(Path(tmp))
        repo = Path(tmp) / "repo"
        repo.mkdir()
        cmds = commands(root, repo)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for name, argv in cmds.items():  # warm-up, and a check that each one works
            result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print(f"{name}: failed ({result.returncode}): {result.stderr.strip()}")
                times.pop(name)
        rounds: list[dict[str, float]] = []  # per round: each command's median
        for _ in range(args.rounds):
            this: dict[str, list[float]] = {name: [] for name in times}
            for _ in range(args.runs):
                for name, values in this.items():
                    start = time.perf_counter()
                    subprocess.run(cmds[name], env=env, stdout=subprocess.DEVNULL, check=False)
                    values.append(time.perf_counter() - start)
            rounds.append({name: statistics.median(values) for name, values in this.items()})
            for name, values in this.items():
                times[name] += values
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = "python -c pass"
    ratios = {name: sorted(r[name] / r[floor] for r in rounds) for name in medians}
    print(
        f"uid {os.getuid()}, {args.rounds} rounds of {args.runs} interleaved runs each, "
        f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus"
    )
    print(f"{'command':34} {'median':>9} {'x python':>9}  {'rounds (min..max)':>17}")
    for name, value in medians.items():
        ratio = statistics.median(ratios[name])
        spread = f"{ratios[name][0]:.2f}..{ratios[name][-1]:.2f}"
        print(f"{name:34} {value * 1000:7.1f}ms {ratio:8.2f}x  {spread:>17}")
    if "chrootforge run" in medians:
        cf = medians["chrootforge run"]
        for peer in ("bwrap", "unshare + chroot"):
            if peer in medians:
                print(f"chrootforge run / {peer}: {cf / medians[peer]:.1f}x")
        ratio = statistics.median(ratios["chrootforge run"])
        verdict = "meets" if ratio <= 1.5 else "misses"
        print(f"goal (<= 1.5x python -c pass, median of the rounds' ratios): {verdict} ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
