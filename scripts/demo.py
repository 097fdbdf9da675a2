#!/usr/bin/env python3
"""`just demo`: build the synthetic stage, build the example hierarchy (rootless when possible),
export it, load it into podman, run hello and print the image sizes.

Rootless: as root, the build runs as a user with a /etc/subuid range ($SUDO_USER, else the tests'
user `cftest`), when one exists and can read this checkout; otherwise as root. Unprivileged, it runs
as you (which needs your own subuid range).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = REPO / ".venv" / "bin" / "python"
WORK = Path(os.environ.get("CHROOTFORGE_DEMO_DIR", "/var/tmp/chrootforge-demo"))
NS = REPO / "examples" / "world"
IMAGES = ("busybox", "glibc", "s6", "greeter", "hello")
PODMAN_RUN = ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def has_subuid(user: str) -> bool:
    try:
        lines = Path("/etc/subuid").read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":")[0] == user for line in lines)


def build_user() -> pwd.struct_passwd | None:
    """Who builds: None = this process's user."""
    if os.getuid() != 0:
        return None
    for name in (os.environ.get("SUDO_USER"), "cftest"):
        if not name or name == "root" or not has_subuid(name):
            continue
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
                str(PY),
                "-c",
                "import chrootforge",
            ],
            cwd="/",
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return entry
        print(f"demo: {name} has a subuid range but cannot run {PY}; building as root", file=sys.stderr)
    return None


def as_user(entry, argv: list[str]) -> list[str]:
    if entry is None:
        return argv
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", *argv]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$ " + " ".join(map(str, argv)), flush=True)
    return subprocess.run(argv, check=True, **kwargs)


def main() -> int:
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    if WORK.stat().st_uid == os.getuid():  # shared by root and the build user, like /tmp
        os.chmod(WORK, 0o1777)
    entry = build_user()
    who = entry.pw_name if entry else pwd.getpwuid(os.getuid()).pw_name
    rootless = entry is not None or os.getuid() != 0

    say("1. the synthetic Gentoo-like stage3 and the test distfiles (built once, then cached)")
    world = WORK / "world"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    stage = subprocess.run(
        [str(PY), "-m", "tests.world.stage", "--cache-dir", str(world)],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    distfiles = subprocess.run(
        [str(PY), "-m", "tests.world.distfiles", "--cache-dir", str(world)],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    for path in (world, *world.iterdir()):
        if path.is_dir():
            os.chmod(path, os.stat(path).st_mode | 0o755)
    keyring = Path(stage).parent / "world-test-key.asc"
    print(f"stage3: {stage}\ndistfiles: {distfiles}")

    say(f"2. build {' -> '.join(IMAGES)} as {who} ({'rootless' if rootless else 'root'})")
    out = WORK / f"out-{who}"
    out.mkdir(exist_ok=True)
    if entry is not None:
        os.chown(out, entry.pw_uid, entry.pw_gid)
    layout = out / "layout"
    build_env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": entry.pw_dir if entry else os.environ.get("HOME", "/root"),
        "XDG_CACHE_HOME": str(out / "cache"),
        "LANG": "C.UTF-8",
        "CHROOTFORGE_WORLD_STAGE": stage,
        "CHROOTFORGE_WORLD_KEYRING": str(keyring),
        "CHROOTFORGE_WORLD_DISTFILES": distfiles,
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "1700000000"),
    }
    cf = [str(PY), "-m", "chrootforge"]
    subprocess.run(
        as_user(
            entry,
            [
                "env",
                "-i",
                *[f"{k}={v}" for k, v in build_env.items()],
                *cf,
                "build",
                "--jobs",
                "2",
                "--layout",
                str(layout),
                str(NS),
            ],
        ),
        check=True,
        cwd="/",
    )

    say("3. export the images and load them into podman")
    archives = WORK / "archives"
    archives.mkdir(exist_ok=True)
    for image in IMAGES:
        archive = archives / f"{image}.tar"
        # podman load takes an archive of one image only: the SBOM referrer stays in the layout
        run(
            [
                *cf,
                "export",
                f"{layout}:localhost/chrootforge/{image}:latest",
                "--format",
                "oci-archive",
                "--no-referrers",
                "-o",
                str(archive),
            ],
            cwd="/",
        )
        run(["podman", *PODMAN_RUN, "load", "-i", str(archive)], stdout=subprocess.DEVNULL)

    say("4. run hello")
    run(
        [
            "podman",
            *PODMAN_RUN,
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "localhost/chrootforge/hello:latest",
            "hello",
        ]
    )

    say("5. image sizes")
    run(["podman", *PODMAN_RUN, "images", "--filter", "reference=localhost/chrootforge/*"])
    print(f"\ndemo done in {time.monotonic() - started:.0f}s (layout: {layout})")
    return 0


if __name__ == "__main__":
    if shutil.which("podman") is None:
        sys.exit("demo: podman is missing; run scripts/bootstrap first")
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as err:
        sys.exit(f"demo: failed: {' '.join(map(str, err.cmd))} (exit status {err.returncode})")
