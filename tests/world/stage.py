"""The synthetic stage3: a Debian bookworm rootfs with the real portage, laid out like a Gentoo stage3.

    python -m tests.world.stage --cache-dir DIR

prints the path of the signed `stage3-amd64-cfworld-<key>.tar.zst` (with `--arch arm64`, the arm64
one: tests/world/stage_foreign.py). Beside it: `.DIGESTS` (BLAKE2B and
SHA512, in the catalyst format) and a detached `.asc` made with the test release key, whose public
half is `<DIR>/world-test-key.asc` (and a copy in the stage's directory). The tarball is cached
under `<DIR>/stage-<key>/`, the key hashing every input (this recipe's source, the package list,
the portage wheel's sha256, the Debian suite); it is built once per machine, atomically and under
a lock. See /work/shared/notes/synthetic-stage.md for why each step is there.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.world.cache import HERE, SUITE, Step, cache_key, keyed_build, source_digests
from tests.world.signing import PUBLIC_KEY_NAME, SigningError, ensure_key, sign_release

PORTAGE_VERSION = "3.0.83"
REPO_NAME = "cfworld"  # must match examples/repo/profiles/repo_name
HOST_ARCH = "amd64"  # built by mmdebstrap natively; other arches by stage_foreign.py (emulated)
ARCH = HOST_ARCH
# Each arch's profile's CHOST (its arch/ make.defaults): the stage gets the tool names a Gentoo stage
# has for it (${CHOST}-gcc, -ar, ...), beside Debian's own triplet names.
CHOSTS = {"amd64": "x86_64-pc-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}
CHOST = CHOSTS[ARCH]
# What emerge and the test ebuilds need on top of minbase. binutils gives `ar` (the -bin ebuilds
# unpack .debs with it); pax-utils gives scanelf (NEEDED.ELF.2, stripping); file is used by the
# QA checks; python-is-python3 gives /usr/bin/python for portage's `#!/usr/bin/env python` helpers.
PACKAGES = (
    "bash",
    "binutils",
    "bzip2",
    "ca-certificates",
    "coreutils",
    "diffutils",
    "file",
    "findutils",
    "gawk",
    "gcc",
    "grep",
    "gzip",
    "libc6-dev",
    "make",
    "patch",
    "pax-utils",
    "procps",
    "python3",
    "python-is-python3",
    "python3-pip",
    "sed",
    "tar",
    "util-linux",
    "xz-utils",
    "zstd",
)


class StageError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class WorldStage:
    """The signed synthetic stage3, as a real one sits on a mirror."""

    tarball: Path
    digests: Path
    signature: Path
    keyring: Path  # the test release public key to pass as --keyring
    fingerprint: str


def portage_wheel(cache_dir: Path, step: Step | None = None) -> Path:
    """The portage wheel from PyPI, downloaded once into the cache with pip."""
    wheels = cache_dir / "wheels"
    wheel = wheels / f"portage-{PORTAGE_VERSION}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    if step:
        step(f"pip download portage=={PORTAGE_VERSION}")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            f"portage=={PORTAGE_VERSION}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not wheel.exists():
        raise StageError(f"pip download portage=={PORTAGE_VERSION} failed: {proc.stderr.strip()}")
    return wheel


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def profile_for(arch: str) -> str:
    """The profile of examples/repo that `arch`'s stage points make.profile at."""
    return f"default/linux/{arch}/23.0"


PROFILE = profile_for(ARCH)


def inputs(wheel: Path, arch: str = HOST_ARCH) -> dict:
    out = {
        "recipe": source_digests("stage.py", "stage_setup.py", "cache.py", "signing.py"),
        "packages": sorted(PACKAGES),
        "portage_wheel_sha256": sha256_file(wheel),
        "suite": SUITE,
        "repo_name": REPO_NAME,
        "profile": profile_for(arch),
        "chost": CHOSTS[arch],
    }
    if arch != HOST_ARCH:
        out["recipe"].update(source_digests("stage_foreign.py", "foreign.py"))
        out["arch"] = arch
    return out


def mmdebstrap_argv(wheel: Path, out: Path) -> list[str]:
    """unshare mode works rootless and as root, and gives the same numeric owners either way."""
    hook = f'python3 {HERE / "stage_setup.py"} "$1" {wheel} {REPO_NAME} {PROFILE} {CHOST}'
    return [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        "--customize-hook",
        hook,
        SUITE,
        str(out),
    ]


def _run_logged(argv: list[str], step: Step, env: dict[str, str]) -> None:
    """Run argv, turning its `I: ...` lines into progress; keep the tail of its output for errors."""
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-40:]
            if line.startswith("I: "):
                step(line[3:])
    if proc.returncode != 0:
        raise StageError(f"{argv[0]} failed ({proc.returncode}):\n" + "\n".join(tail))


def build(dest: Path, wheel: Path, cache_dir: Path, key: str, step: Step, arch: str = HOST_ARCH) -> None:
    if shutil.which("mmdebstrap") is None:
        raise StageError("mmdebstrap is not installed (apt-get install mmdebstrap uidmap zstd)")
    tarball = dest / f"stage3-{arch}-{REPO_NAME}-{key}.tar.zst"
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
    if arch == HOST_ARCH:
        _run_logged(mmdebstrap_argv(wheel, tarball), step, env)
    else:
        from tests.world import stage_foreign

        stage_foreign.build(dest, arch, wheel, REPO_NAME, profile_for(arch), CHOSTS[arch], tarball, step)
    step("signing: .DIGESTS and .asc with the test release key")
    fingerprint, public = ensure_key(cache_dir)
    sign_release(cache_dir, tarball)
    shutil.copy(public, dest / PUBLIC_KEY_NAME)
    (dest / "fingerprint").write_text(fingerprint + "\n")
    for path in dest.iterdir():
        path.chmod(0o644)


def locate(stage_dir: Path) -> WorldStage:
    tarball = next(stage_dir.glob("stage3-*.tar.zst"))
    return WorldStage(
        tarball=tarball,
        digests=tarball.with_name(tarball.name + ".DIGESTS"),
        signature=tarball.with_name(tarball.name + ".asc"),
        keyring=stage_dir / PUBLIC_KEY_NAME,
        fingerprint=(stage_dir / "fingerprint").read_text().strip(),
    )


def ensure_stage(cache_dir: Path, quiet: bool = False, arch: str = HOST_ARCH) -> WorldStage:
    """The signed synthetic stage3 of `arch` (amd64, arm64), built on first use."""
    cache_dir = Path(cache_dir)
    step = Step("stage" if arch == HOST_ARCH else f"stage {arch}", quiet)
    wheel = portage_wheel(cache_dir, step)
    key_inputs = inputs(wheel, arch)
    key = cache_key(key_inputs)
    kind = "stage" if arch == HOST_ARCH else f"stage-{arch}"  # its own lock: it takes long
    stage_dir = keyed_build(
        cache_dir, kind, key_inputs, lambda tmp: build(tmp, wheel, cache_dir, key, step, arch)
    )
    ensure_key(cache_dir)  # (re-)export <cache>/world-test-key.asc even for a stage built earlier
    step(f"ready: {stage_dir}")
    return locate(stage_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.world.stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--arch", default=HOST_ARCH, help="amd64 (default) or arm64 (built under emulation)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        stage = ensure_stage(args.cache_dir, args.quiet, args.arch)
    except (StageError, SigningError) as err:
        print(f"stage: error: {err}", file=sys.stderr)
        return 1
    print(stage.tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
