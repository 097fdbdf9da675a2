"""Benchmark of the test world: the synthetic stage, and real emerge in chrootforge's sandbox.

    .venv/bin/python bench/bench_world.py [--cold-stage]

Side by side in one process, each against a peer tool doing the nearest plain job:
  1. the synthetic stage build (only with --cold-stage, in a fresh cache) vs a bare
     `mmdebstrap --variant=minbase bookworm` (no extra packages, no portage, no signing);
  2. extracting the stage (chrootforge.sources.extract: checked stream, owners, xattrs)
     vs `tar --zstd -xpf` of the same tarball;
  3. `emerge --info` in `chrootforge run` vs the same in `bwrap` with the same binds;
  4. `emerge app-misc/hello` (with its acct-* dependencies) vs `make` of the same source with gcc;
  5. `ROOT=/emerge-root emerge --buildpkg sys-apps/s6-bin` vs `dpkg-deb -x` of the same .debs.
Runs as the current user: as root, under root's /etc/subuid range (or the default unprivileged range),
never the identity map; else under the user's subuid map.
"""

from __future__ import annotations

import argparse
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


def run(argv, **kw) -> float:
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(
            f"bench: {' '.join(map(str, argv))[:200]} failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return took


def line(label: str, ours: float, peer: float, peer_name: str) -> None:
    print(f"  {label:<34} {ours:7.2f} s   {peer_name:<26} {peer:7.2f} s   ratio {ours / peer:5.2f}x")


def cf_run(root: Path, repo: Path, dist: Path, script: str, binpkgs: Path | None = None) -> list[str]:
    argv = [
        PY,
        "-m",
        "chrootforge",
        "run",
        str(root),
        "--repo",
        f"gentoo={repo}",
        "--portage-tmpfs",
        "2G",
        "--distfiles",
        str(dist),
    ]
    if binpkgs:
        argv += ["--binpkgs", str(binpkgs)]
    return [*argv, "--", "bash", "-euc", script]


def bwrap_run(root: Path, repo: Path, dist: Path, script: str) -> list[str]:
    # No user namespace: bwrap maps a single id, and portage must chown to 250 (real root only).
    return [
        "bwrap",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
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
        "--bind",
        str(dist),
        "/var/cache/distfiles",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/sbin:/usr/bin:/sbin:/bin",
        "--setenv",
        "HOME",
        "/root",
        "bash",
        "-euc",
        script,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-stage", action="store_true", help="also build the stage cold (~1 min)")
    args = parser.parse_args()
    from tests.world.distfiles import ensure_distfiles
    from tests.world.stage import ensure_stage

    base = Path(tempfile.mkdtemp(prefix="bench-world.", dir="/var/tmp"))
    base.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        print("bench_world: the synthetic stage and real emerge in the sandbox")
        if args.cold_stage:
            start = time.monotonic()
            stage = ensure_stage(base / "cache", quiet=True)
            ours = time.monotonic() - start
            peer = run(
                [
                    "mmdebstrap",
                    "--mode=unshare",
                    "--variant=minbase",
                    "--quiet",
                    "bookworm",
                    str(base / "bare.tar.zst"),
                ]
            )
            line("stage build (cold)", ours, peer, "bare mmdebstrap minbase")
        else:
            stage = ensure_stage(
                Path("/var/tmp/chrootforge-tests/world")
                if os.getuid() == 0
                else Path(f"/var/tmp/chrootforge-tests/world-{os.getuid()}"),
                quiet=True,
            )
        distfiles = ensure_distfiles(stage.tarball.parents[1], quiet=True)
        repo = REPO / "examples" / "repo"

        root = base / "root"
        extract = "import sys; from chrootforge.sources.extract import extract; extract(*sys.argv[1:])"
        ours = run([PY, "-c", extract, str(stage.tarball), str(root)], env=env)
        peer_root = base / "tar-root"
        peer_root.mkdir()
        unshare = [] if os.getuid() == 0 else ["unshare", "--map-auto", "--map-root-user"]
        peer = run(
            [*unshare, "tar", "--zstd", "-xpf", str(stage.tarball), "-C", str(peer_root), "--exclude=./dev/*"]
        )
        line("extract the stage", ours, peer, "tar --zstd -xpf")

        dist = base / "distfiles"
        shutil.copytree(distfiles, dist, ignore=shutil.ignore_patterns(".*"))
        dist.chmod(0o755)
        ours = run(cf_run(root, repo, dist, "emerge --info >/dev/null"), env=env)
        if os.getuid() == 0 and shutil.which("bwrap"):
            peer = run(bwrap_run(root, repo, dist, "emerge --info >/dev/null"))
            line("emerge --info", ours, peer, "same in bwrap")
        else:
            print(f"  emerge --info                      {ours:7.2f} s   (bwrap peer: root only)")

        ours = run(cf_run(root, repo, dist, "emerge -q app-misc/hello"), env=env)
        src = base / "hello-src"
        shutil.copytree(REPO / "examples/src/hello-1.0", src)
        peer = run(["make", "-C", str(src), "CC=gcc", "CFLAGS=-O2 -pipe"])
        line("emerge app-misc/hello", ours, peer, "make (gcc) of the source")

        binpkgs = base / "binpkgs"
        binpkgs.mkdir()
        ours = run(
            cf_run(root, repo, dist, "ROOT=/emerge-root emerge -q --buildpkg sys-apps/s6-bin", binpkgs),
            env=env,
        )
        debs = [
            p
            for p in dist.glob("*.deb")
            if p.name.split("_")[0]
            in ("s6", "libs6-2.11", "execline", "libexecline2.9", "libskarnet2.13", "libc6")
        ]
        start = time.monotonic()
        for deb in debs:
            run(["dpkg-deb", "-x", str(deb), str(base / "dpkg-root")])
        peer = time.monotonic() - start
        line("ROOT= emerge --buildpkg s6-bin", ours, peer, f"dpkg-deb -x of {len(debs)} .debs")

        ours = run(
            cf_run(root, repo, dist, "ROOT=/other-root emerge -q -K sys-apps/s6-bin", binpkgs), env=env
        )
        line("ROOT= emerge -K s6-bin (binpkgs)", ours, peer, f"dpkg-deb -x of {len(debs)} .debs")
        size = stage.tarball.stat().st_size / 1048576
        print(f"  stage tarball: {size:.0f} MiB (zstd)")
    finally:
        from chrootforge.sources.mapped_run import remove_under_mapping

        for sub in ("root", "tar-root"):
            if os.getuid() == 0:
                shutil.rmtree(base / sub, ignore_errors=True)
            else:
                remove_under_mapping(base / sub)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
