"""Benchmark of the QEMU guest (vm/).

    .venv/bin/python bench/bench_vm.py [--cold] [--no-build]

Measures, side by side in one process:
  1. the guest artifacts: their build time (recorded when they were built; --cold rebuilds them in
     a fresh cache) and their sizes;
  2. QEMU start -> the job's first output byte, under TCG and, where the probe boot passes, KVM
     (best of 3; a job that only prints);
  3. a `build --vm on` of the busybox image of examples/world against the host build of the same
     inputs (fresh caches each), as a ratio; both must give the same manifest digest.
The artifacts are the test suite's (/var/tmp/chrootforge-tests/vm-artifacts) unless --cold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
SHARED_ARTIFACTS = Path(os.environ.get("CHROOTFORGE_TEST_TMP", "/var/tmp/chrootforge-tests")) / "vm-artifacts"


def boot_to_job(accel: str, artifacts) -> float:
    from chrootforge.vm import guestrun as runner
    from chrootforge.vm.job import Job

    with open(os.devnull, "wb") as sink:
        result = runner.run_job(
            Job(argv=("echo", "running"), uid=1000, gid=1000),
            runner.Resources(timeout=120),
            artifacts=artifacts,
            stdout=sink,
            stderr=sink,
            accel=accel,
        )
    return result.first_output


def timed_build(argv: list[str], env: dict) -> tuple[float, dict]:
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/", check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[-5:])} failed:\n{proc.stderr[-3000:]}")
    return elapsed, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true", help="build the guest artifacts in a fresh cache")
    parser.add_argument("--no-build", action="store_true", help="skip the --vm build against the host build")
    args = parser.parse_args()
    from chrootforge.vm import artifacts as art
    from chrootforge.vm import guestrun as runner

    base = Path(tempfile.mkdtemp(prefix="bench-vm.", dir="/var/tmp"))
    os.chmod(base, 0o755)
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    if args.cold:
        os.environ["CHROOTFORGE_VM_ARTIFACTS"] = str(base / "artifacts")
    elif SHARED_ARTIFACTS.is_dir():
        os.environ["CHROOTFORGE_VM_ARTIFACTS"] = str(SHARED_ARTIFACTS)
    started = time.monotonic()
    artifacts = art.ensure()
    ensure_s = time.monotonic() - started
    manifest = artifacts.manifest
    print(f"bench_vm ({os.cpu_count()} cores)")
    built = manifest["seconds"]
    print(
        f"  guest artifacts: built in {sum(built.values()):.1f} s (kernel+initramfs {built['kernel']:.1f} s, "
        f"root image {built['rootfs']:.1f} s, mmdebstrap --mode={manifest['mode']})"
        f"{'' if args.cold else f'; found in cache in {ensure_s:.2f} s'}"
    )
    for name, size in sorted(manifest["sizes"].items()):
        print(f"      {name:15} {size / 1048576:7.1f} MiB")

    kvm, why = runner.choose_accel(artifacts)
    tcg = min(boot_to_job("tcg", artifacts) for _ in range(3))
    print(f"  QEMU start -> job running, TCG:      {tcg:6.2f} s   (best of 3)")
    if kvm == "kvm":
        fast = min(boot_to_job("kvm", artifacts) for _ in range(3))
        print(f"  QEMU start -> job running, KVM:      {fast:6.2f} s   ratio TCG/KVM = {tcg / fast:.1f}x")
    else:
        print(f"  QEMU start -> job running, KVM:      not usable here ({why})")

    if not args.no_build:
        from tests.world.distfiles import ensure_distfiles
        from tests.world.stage import ensure_stage

        world = Path("/var/tmp/chrootforge-tests/world")
        stage, distfiles = ensure_stage(world, quiet=True), ensure_distfiles(world, quiet=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SOURCE_DATE_EPOCH": "1700000000",
            "CHROOTFORGE_WORLD_STAGE": str(stage.tarball),
            "CHROOTFORGE_WORLD_KEYRING": str(stage.keyring),
            "CHROOTFORGE_WORLD_DISTFILES": str(distfiles),
        }
        target = str(REPO / "examples" / "world" / "busybox")
        results = {}
        for mode in ("off", "on"):
            run_env = {**env, "XDG_CACHE_HOME": str(base / f"cache-{mode}")}
            layout = base / f"layout-{mode}"
            results[mode] = timed_build(
                [PY, "-m", "chrootforge", "build", "--json", "--vm", mode, "--layout", str(layout), target],
                run_env,
            )
        host_s, vm_s = results["off"][0], results["on"][0]
        same = results["off"][1]["images"][0]["digest"] == results["on"][1]["images"][0]["digest"]
        print(f"  busybox build, host:                 {host_s:6.1f} s")
        print(
            f"  busybox build, --vm on (TCG):        {vm_s:6.1f} s   ratio vm/host = {vm_s / host_s:.1f}x; "
            f"same manifest digest: {'yes' if same else 'NO'}"
        )
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
