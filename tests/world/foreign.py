"""Debian packages of another architecture, fetched without touching the machine's apt setup.

apt runs with a private state and cache directory under the world cache (`<cache>/apt-<arch>/`), an
architecture list of just that arch, and an empty dpkg status: the machine's own lists, its
configured architectures and /var/lib/dpkg stay as they were (/work/shared/notes/multiarch.md). The
sources are the machine's (/etc/apt/sources.list*). The lists are fetched once and again only when
a pinned version is not in them. Works as root and as any user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from chrootforge.fsutil import file_lock


class ForeignAptError(RuntimeError):
    pass


def _state(cache_dir: Path, arch: str) -> Path:
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return Path(cache_dir) / f"apt-{arch}"


def apt_options(cache_dir: Path, arch: str) -> list[str]:
    state = _state(cache_dir, arch)
    # as root apt would drop to _apt, which cannot write into a private directory
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.getuid() == 0 else []
    return [
        *sandbox,
        "-o",
        f"Dir::State={state}/state",
        "-o",
        f"Dir::State::Lists={state}/lists",
        "-o",
        f"Dir::State::status={state}/status",
        "-o",
        f"Dir::Cache={state}/cache",
        "-o",
        f"APT::Architecture={arch}",
        "-o",
        f"APT::Architectures::={arch}",
        "-q",
    ]


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, check=False, capture_output=True, text=True)


def update(cache_dir: Path, arch: str, force: bool = False) -> None:
    """Fetch the package lists for `arch` (once; again with force)."""
    state = _state(cache_dir, arch)
    if not force and any((state / "lists").glob("*_Packages*")):
        return
    for sub in ("state", "lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    proc = _run(["apt-get", *apt_options(cache_dir, arch), "update"])
    if proc.returncode != 0 or not any((state / "lists").glob("*_Packages*")):
        raise ForeignAptError(f"apt-get update for {arch} failed: {proc.stderr.strip()[-2000:]}")


def candidate(cache_dir: Path, arch: str, package: str) -> str:
    """The version apt would take for package:arch."""
    with file_lock(_state(cache_dir, arch).parent / f".apt-{arch}.lock"):
        update(cache_dir, arch)
        proc = _run(["apt-cache", *apt_options(cache_dir, arch), "policy", f"{package}:{arch}"])
    for line in proc.stdout.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return version
    raise ForeignAptError(f"apt knows no {package}:{arch}: {proc.stdout.strip()} {proc.stderr.strip()}")


def _offered(cache_dir: Path, arch: str, package: str) -> list[str]:
    proc = _run(["apt-cache", *apt_options(cache_dir, arch), "madison", f"{package}:{arch}"])
    return [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.count("|") >= 2]


def download(cache_dir: Path, arch: str, pins: list[tuple[str, str]], dest: Path) -> dict[str, Path]:
    """Download package:arch=version for each (package, version without epoch) into dest ->
    {package: file}. A version apt does not offer refreshes the lists once, then is an error."""
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(_state(cache_dir, arch).parent / f".apt-{arch}.lock"):
        update(cache_dir, arch)
        specs = []
        for package, version in pins:
            offered = _offered(cache_dir, arch, package)
            full = [v for v in offered if v.split(":", 1)[-1] == version]
            if not full:
                update(cache_dir, arch, force=True)
                offered = _offered(cache_dir, arch, package)
                full = [v for v in offered if v.split(":", 1)[-1] == version]
            if not full:
                raise ForeignAptError(
                    f"apt offers {package}:{arch} {', '.join(offered) or 'in no version'}, not {version}"
                )
            specs.append(f"{package}:{arch}={full[0]}")
        work = dest / ".apt"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        proc = _run(["apt-get", *apt_options(cache_dir, arch), "download", *specs], cwd=work)
        if proc.returncode != 0:
            raise ForeignAptError(f"apt-get download ({arch}) failed: {proc.stderr.strip()[-2000:]}")
    out = {}
    for package, _version in pins:
        found = [
            p for p in work.iterdir() if p.name.startswith(f"{package}_") and p.name.endswith(f"_{arch}.deb")
        ]
        if len(found) != 1:
            raise ForeignAptError(f"apt-get download left {found} for {package}:{arch}")
        target = dest / found[0].name.replace("%3a", "_")
        found[0].rename(target)
        out[package] = target
    shutil.rmtree(work)
    return out


def static_busybox(cache_dir: Path, arch: str) -> Path:
    """Debian's static busybox for `arch` (busybox-static:ARCH), extracted once per version."""
    version = candidate(cache_dir, arch, "busybox-static")
    final = Path(cache_dir) / f"busybox-{arch}-{version.replace(':', '_')}"
    binary = final / "bin" / "busybox"
    if binary.is_file():
        return binary
    tmp = Path(f"{final}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        debs = download(cache_dir, arch, [("busybox-static", version.split(":", 1)[-1])], tmp / "debs")
        proc = _run(["dpkg-deb", "-x", str(debs["busybox-static"]), str(tmp)])
        if proc.returncode != 0:
            raise ForeignAptError(f"dpkg-deb -x failed: {proc.stderr.strip()}")
        shutil.rmtree(tmp / "debs")
        for dirpath, _dirs, _files in os.walk(tmp):
            os.chmod(dirpath, 0o755)
        os.rename(tmp, final)
    except FileExistsError:
        pass  # another session won
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary
