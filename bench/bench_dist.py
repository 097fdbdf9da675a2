"""Benchmark: a CI runner with a warm remote cache against a cold one (issue 11), on the test world.

    .venv/bin/python bench/bench_dist.py [--rounds N]

Side by side in one process, against one fresh docker-registry (TLS + htpasswd) on 127.0.0.1:
  A. runner A's cold build of examples/world (busybox -> glibc -> s6 -> hello) from clean caches,
     with --remote-cache and --push: stage extraction, every emerge, every commit, and the uploads;
  B. runner B's build of the same with the same flags, from clean caches and an empty layout: every
     image is pulled from the cache (and pushed again, which uploads nothing).
Each round uses fresh caches and a new cache repository; the medians are reported. Goal: B/A <= 10%.
Also shown: the leaf rebuild (`--force hello`) of a fresh runner from source vs from A's binpkgs
served by `python3 -m http.server` as a binhost. Runs as the current user.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable

from tests.helpers.registry import PASSWORD, USER, Pki, Registry, free_port  # noqa: E402 - after the sys.path line above


def timed(argv, env) -> tuple[float, dict]:
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/", check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, argv[-4:]))} failed:\n{proc.stderr[-3000:]}")
    return took, json.loads(proc.stdout)


def statuses(report: dict) -> list[str]:
    return [r["status"] for r in report["images"]]


def serve(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from chrootforge.sources.mapped_run import remove_under_mapping
    from tests.world.distfiles import ensure_distfiles
    from tests.world.stage import ensure_stage

    world = Path("/var/tmp/chrootforge-tests") / ("world" if os.getuid() == 0 else f"world-{os.getuid()}")
    stage = ensure_stage(world, quiet=True)
    distfiles = ensure_distfiles(world, quiet=True)
    work = Path(tempfile.mkdtemp(prefix="bench-dist.", dir="/var/tmp"))
    work.chmod(0o711)  # root's sandbox range must pass through to the caches below
    registry = http = None
    try:
        (work / "pki").mkdir()
        pki = Pki(work / "pki")
        subprocess.run(
            ["htpasswd", "-B", "-b", "-c", str(work / "htpasswd"), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        registry = Registry(
            work / "registry", pki, {"htpasswd": {"realm": "bench", "path": str(work / "htpasswd")}}
        )
        registry.start()
        certs = pki.cert_dir(work / "certs")
        ns = work / "world"
        shutil.copytree(REPO / "examples" / "world", ns, ignore=shutil.ignore_patterns("greeter"))
        text = (
            (ns / "chrootforge.toml")
            .read_text()
            .replace('path = "../repo"', f'path = "{REPO / "examples/repo"}"')
        )
        (ns / "chrootforge.toml").write_text(
            text.replace("[output]\n", f'[output]\nregistry = "docker://{registry.host}/bench"\n')
        )
        base_env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SOURCE_DATE_EPOCH": "",
            "CHROOTFORGE_WORLD_STAGE": str(stage.tarball),
            "CHROOTFORGE_WORLD_KEYRING": str(stage.keyring),
            "CHROOTFORGE_WORLD_DISTFILES": str(distfiles),
        }
        auth = ["--cert-dir", str(certs), "--creds", f"{USER}:{PASSWORD}"]
        cold, warm, leaf_src, leaf_bin = [], [], [], []
        for rnd in range(args.rounds):
            runs = {}
            for runner in ("a", "b", "c", "d"):
                home = work / f"r{rnd}{runner}"
                home.mkdir()
                env = {**base_env, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
                runs[runner] = (
                    env,
                    [PY, "-m", "chrootforge", "build", "--json", "--layout", str(home / "layout")],
                )
            flags = ["--push", "--remote-cache", f"docker://{registry.host}/bench-cache{rnd}", *auth]
            env, cf = runs["a"]
            took, report = timed([*cf, *flags, str(ns)], env)
            assert statuses(report) == ["built"] * 4, report
            cold.append(took)
            env, cf = runs["b"]
            took, report = timed([*cf, *flags, str(ns)], env)
            assert statuses(report) == ["pulled"] * 4, report
            warm.append(took)
            # the leaf of a runner that has its parents (from the cache): from source, then from A's binpkgs
            cache_only = ["--remote-cache", f"docker://{registry.host}/bench-cache{rnd}", *auth]
            http, url = serve(work / f"r{rnd}a" / "cache" / "chrootforge" / "binpkgs")
            for runner, extra, out in (("c", [], leaf_src), ("d", ["--binhost", url], leaf_bin)):
                env, cf = runs[runner]
                timed([*cf, *cache_only, str(ns / "s6")], env)
                took, report = timed([*cf, "--force", *extra, str(ns / "hello")], env)
                assert report["images"][-1]["status"] == "built", report
                out.append(took)
            http.terminate()
            http.wait()
            http = None
        a, b = statistics.median(cold), statistics.median(warm)
        print(
            f"bench_dist (as {'root' if os.getuid() == 0 else 'uid ' + str(os.getuid())}, "
            f"{os.cpu_count()} cores, {args.rounds} round(s), medians)"
        )
        print(f"  runner A: cold build + cache + push of 4 images   {a:7.2f} s")
        print(
            f"  runner B: the same, every image pulled           {b:7.2f} s   "
            f"ratio B/A {100 * b / a:5.1f}%  (goal <= 10%)"
        )
        ls, lb = statistics.median(leaf_src), statistics.median(leaf_bin)
        print(f"  leaf rebuild (hello --force), from source        {ls:7.2f} s")
        print(f"  leaf rebuild (hello --force), from the binhost   {lb:7.2f} s   ratio {lb / ls:5.2f}x")
    finally:
        if http is not None:
            http.terminate()
        if registry is not None:
            registry.stop()
        if os.getuid() == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            remove_under_mapping(work)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
