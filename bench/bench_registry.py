"""Benchmark: `chrootforge push` against `skopeo copy oci:… docker://…`, same images, same registry.

    .venv/bin/python bench/bench_registry.py [--rounds N]

A small hierarchy of 4 images sharing layers (busybox -> + shared libraries -> + part of the Python
stdlib -> + one config file) is committed once. Each round starts a fresh docker-registry (TLS +
htpasswd, new storage, new port, so no tool finds anything from an earlier round) and fresh blob
caches (skopeo's is keyed by registry host:port, so the new port makes it cold), then pushes the 4
images one command at a time with each tool, in alternating order, to repositories of their own;
shared layers are mounted across repositories by both tools. Medians are reported; goal (issue 11):
chrootforge / skopeo <= 1.0x.
Also shown: the same 4 pushes through the Python API in one process (what `build --push` pays), and
the blob bytes a re-push uploads (goal 0).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chrootforge import oci  # noqa: E402
from tests.helpers.oci import make_busybox_rootfs  # noqa: E402
from tests.helpers.registry import PASSWORD, USER, Pki, Registry  # noqa: E402

IMAGES = ("bench/base:1", "bench/libs:1", "bench/py:1", "bench/app:1")
LIBS = Path("/usr/lib/x86_64-linux-gnu")
PYLIB = Path("/usr/lib/python3.11")


def build_hierarchy(work: Path) -> Path:
    layout = work / "layout"
    root = make_busybox_rootfs(work / "root")
    oci.commit(root, layout, IMAGES[0], quiet=True)
    libs = sorted(p for p in LIBS.glob("*.so*") if p.is_file() and not p.is_symlink())
    dest, total = root / "usr/lib", 0
    dest.mkdir(parents=True)
    for lib in libs:
        if total > 40 << 20:
            break
        shutil.copy2(lib, dest / lib.name)
        total += lib.stat().st_size
    oci.commit(root, layout, IMAGES[1], parent=IMAGES[0], quiet=True)
    for sub in ("email", "json", "http", "urllib", "xml", "asyncio", "importlib", "concurrent", "logging"):
        if (PYLIB / sub).is_dir():
            shutil.copytree(
                PYLIB / sub, root / "usr/lib/python3" / sub, ignore=shutil.ignore_patterns("__pycache__")
            )
    oci.commit(root, layout, IMAGES[2], parent=IMAGES[1], quiet=True)
    (root / "etc/app.conf").write_text("listen = 8080\n")
    oci.commit(root, layout, IMAGES[3], parent=IMAGES[2], quiet=True)
    return layout


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])} failed:\n{out.stderr[-2000:]}")
    return out


def ours_cli(layout: Path, host: str, prefix: str, certs: Path, env: dict) -> list[dict]:
    return [
        json.loads(
            run(
                [
                    sys.executable,
                    "-m",
                    "chrootforge",
                    "push",
                    f"{layout}:{img}",
                    f"docker://{host}/{prefix}/{img.split('/')[1]}",
                    "--cert-dir",
                    str(certs),
                    "--creds",
                    f"{USER}:{PASSWORD}",
                    "--json",
                ],
                env,
            ).stdout
        )
        for img in IMAGES
    ]


def skopeo(layout: Path, host: str, prefix: str, certs: Path, env: dict) -> None:
    for img in IMAGES:
        run(
            [
                "skopeo",
                "copy",
                "-q",
                "--dest-cert-dir",
                str(certs),
                "--dest-creds",
                f"{USER}:{PASSWORD}",
                f"oci:{layout}:{img}",
                f"docker://{host}/{prefix}/{img.split('/')[1]}",
            ],
            env,
        )


def ours_api(layout: Path, host: str, prefix: str, certs: Path) -> None:
    from chrootforge.registry import RegistryOptions, push

    options = RegistryOptions(cert_dir=str(certs), creds=f"{USER}:{PASSWORD}", quiet=True)
    for img in IMAGES:
        push(layout, img, f"docker://{host}/{prefix}/{img.split('/')[1]}", options)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and the commands it ran): CPU time is what a
    loaded machine cannot blur."""

    def cpu() -> float:
        return sum(
            getattr(resource.getrusage(who), f)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for f in ("ru_utime", "ru_stime")
        )

    start, start_cpu = time.monotonic(), cpu()
    fn()
    return time.monotonic() - start, cpu() - start_cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("skopeo") or not Path("/usr/bin/docker-registry").exists():
        print("bench_registry: skopeo or docker-registry is missing; skipped")
        return 0
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")
    # Measure what an installed package runs: compiled bytecode (a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "chrootforge")], check=True)
    work = Path(tempfile.mkdtemp(prefix="cf-bench-registry.", dir="/var/tmp"))
    try:
        layout = build_hierarchy(work)
        sizes = [sum(d["size"] for d in oci.resolve(layout, img).manifest["layers"]) for img in IMAGES]
        print(
            f"hierarchy: {len(IMAGES)} images, layers {sizes[-1] / 1e6:.1f} MB in all (shared), "
            f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
        )
        (work / "pki").mkdir()
        pki = Pki(work / "pki")
        certs = pki.cert_dir(work / "certs")
        subprocess.run(
            ["htpasswd", "-B", "-b", "-c", str(work / "htpasswd"), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        times: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        repushed = None
        for r in range(args.rounds):
            (work / f"r{r}").mkdir()
            registry = Registry(
                work / f"r{r}", pki, {"htpasswd": {"realm": "bench", "path": str(work / "htpasswd")}}
            ).start()
            env = {
                **os.environ,
                "XDG_CACHE_HOME": str(work / f"r{r}" / "cache"),
                # `python -m chrootforge` runs this checkout's code, not what the venv has installed
                "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}".rstrip(":"),
            }
            os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"] + "-api"
            try:
                contenders = {
                    "chrootforge push": functools.partial(
                        ours_cli, layout, registry.host, f"cf{r}", certs, env
                    ),
                    "skopeo copy": functools.partial(skopeo, layout, registry.host, f"sk{r}", certs, env),
                    "push API": functools.partial(ours_api, layout, registry.host, f"api{r}", certs),
                }
                order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
                for name in order:
                    wall, used = timed(contenders[name])
                    times.setdefault(name, []).append(wall)
                    cpus.setdefault(name, []).append(used)
                print(
                    f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()), flush=True
                )
                if r == args.rounds - 1:
                    again = ours_cli(layout, registry.host, f"cf{r}", certs, env)
                    repushed = sum(res["uploaded_bytes"] for res in again)
            finally:
                registry.stop()
        med = {n: statistics.median(t) for n, t in times.items()}
        cpu = {n: statistics.median(t) for n, t in cpus.items()}
        print("\nmedian seconds: " + ", ".join(f"{n} {t:.2f}" for n, t in med.items()))
        print("median CPU seconds (client side): " + ", ".join(f"{n} {t:.2f}" for n, t in cpu.items()))
        print(
            f"  chrootforge push / skopeo copy (4 commands each; goal <= 1.0): "
            f"{med['chrootforge push'] / med['skopeo copy']:.2f}x"
        )
        print(f"  push API in one process / skopeo copy: {med['push API'] / med['skopeo copy']:.2f}x")
        print(f"  bytes uploaded by a re-push of all {len(IMAGES)} images (goal 0): {repushed}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
