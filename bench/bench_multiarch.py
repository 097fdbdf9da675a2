"""The cost of emulation: the example world built for linux/arm64 (under QEMU's static emulator, in
the sandbox's own binfmt_misc) against the same world built for linux/amd64 (this CPU).

    .venv/bin/python bench/bench_multiarch.py [--image hello]

Both builds are cold (fresh caches, nothing reused), one after the other, from the same stages'
caches (tests/world: `just world-env` and `just world-env arm64`; the arm64 stage takes tens of
minutes the first time), with SOURCE_DATE_EPOCH fixed. Each is a single-platform build of
examples/world (with its platform in [build] platforms), so the times compare one platform's
images with the other's. The ratio arm64/amd64 is what emulation costs. Also: the start of
`chrootforge run --platform linux/arm64 -- /bin/true` against the same native run (the price of
the binfmt_misc mount and registration, plus QEMU's start).
Runs as the current user (as root: root's unprivileged range).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable


def namespace(dest: Path, platform: str) -> Path:
    ns = dest / "world"
    shutil.copytree(REPO / "examples" / "world", ns)
    text = (
        (ns / "chrootforge.toml")
        .read_text()
        .replace('path = "../repo"', f'path = "{REPO / "examples/repo"}"')
    )
    (ns / "chrootforge.toml").write_text(
        text.replace("\n[build]\n", f'\n[build]\nplatforms = ["{platform}"]\n')
    )
    return ns


def build(base: Path, platform: str, image: str | None, env: dict) -> tuple[float, dict]:
    work = base / platform.replace("/", "-")
    work.mkdir()
    ns = namespace(work, platform)
    target = ns / image if image else ns
    start = time.monotonic()
    proc = subprocess.run(
        [PY, "-m", "chrootforge", "build", "--json", "--layout", str(work / "layout"), str(target)],
        env={**env, "XDG_CACHE_HOME": str(work / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"bench: the {platform} build failed:\n{proc.stderr[-4000:]}")
    return took, json.loads(proc.stdout)


def run_start(root: Path, platform: str | None, runs: int) -> float:
    argv = [
        PY,
        "-m",
        "chrootforge",
        "run",
        *(["--platform", platform] if platform else []),
        str(root),
        "--",
        "/bin/true",
    ]
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="build this image (and its parents) only, e.g. busybox")
    parser.add_argument("--runs", type=int, default=5, help="runs of each `chrootforge run` (median)")
    args = parser.parse_args()
    from tests.helpers.world import world_cache_dir
    from tests.world.env import variables

    cache = world_cache_dir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SOURCE_DATE_EPOCH": "1700000000"}
    env.update(variables(cache, "amd64"))
    env.update(variables(cache, "arm64"))
    base = Path(tempfile.mkdtemp(prefix="bench-multiarch.", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        print(
            f"bench_multiarch: examples/world{'/' + args.image if args.image else ''}, cold, "
            f"{os.cpu_count()} cores"
        )
        amd64, amd_report = build(base, "linux/amd64", args.image, env)
        arm64, arm_report = build(base, "linux/arm64", args.image, env)
        for name, took, report in (
            ("linux/amd64 (native)", amd64, amd_report),
            ("linux/arm64 (QEMU)", arm64, arm_report),
        ):
            images = ", ".join(f"{r['image']} {r['seconds']:.1f}s" for r in report["images"])
            print(f"  {name:<22} {took:8.1f} s   ({images})")
        print(f"  emulation cost: arm64 / amd64 = {arm64 / amd64:.2f}x")
        bb = base / "bb"
        from tests.helpers.oci import make_busybox_rootfs
        from tests.world.foreign import static_busybox

        native_root = make_busybox_rootfs(bb / "amd64")
        arm_root = make_busybox_rootfs(bb / "arm64", static_busybox(cache, "arm64"))
        if os.getuid() == 0:
            from chrootforge.sandbox.idmap import detect_idmap

            owner = detect_idmap().to_host(0, 0)
            for dirpath, dirnames, filenames in os.walk(bb):
                for name in [".", *dirnames, *filenames]:
                    os.lchown(os.path.join(dirpath, name), *owner)
        native = run_start(native_root, None, args.runs)
        emulated = run_start(arm_root, "linux/arm64", args.runs)
        print(
            f"  run -- /bin/true: native {native * 1000:.0f} ms, "
            f"--platform linux/arm64 {emulated * 1000:.0f} ms "
            f"(ratio {emulated / native:.2f}x)"
        )
    finally:
        from chrootforge.sources.mapped_run import remove_under_mapping

        remove_under_mapping(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
