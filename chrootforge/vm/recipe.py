"""What the guest artifacts are made of, and the hash that names their cache entry.

The guest files (init scripts, package and module lists) live in the checkout's top-level `vm/`.
The recipe is a pure value: the resolved kernel and busybox package versions, the package and module
lists, the digests of the guest files and chrootforge's runtime requirements. Any change to one of
them gives another key, so a stale guest is never used.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from chrootforge import untrusted
from chrootforge.cache.kinds import bookkeeping
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write

SOURCE_ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = SOURCE_ROOT / "vm"
GUEST_FILES = ("initramfs-init", "guest-init", "packages.txt", "modules.txt")
SUITE = "bookworm"
GUEST_PYTHON = "3.11"  # bookworm's python3: the wheelhouse is downloaded for it
KERNEL_META = "linux-image-amd64"  # the generic flavour: -cloud has no 9p
BUSYBOX = "busybox-static"
RECIPE_VERSION = 1  # bump when the build steps change in a way the inputs do not show


@dataclass(frozen=True)
class Recipe:
    kernel_package: str
    kernel_version: str
    busybox_version: str
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    requirements: tuple[str, ...]
    guest_files: tuple[tuple[str, str], ...]  # (name, sha256)
    suite: str = SUITE
    python: str = GUEST_PYTHON
    version: int = RECIPE_VERSION

    def key(self) -> str:
        data = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(data).hexdigest()[:24]

    @property
    def kernel_release(self) -> str:
        """The module directory name: linux-image-6.1.0-57-amd64 -> 6.1.0-57-amd64."""
        return self.kernel_package.removeprefix("linux-image-")


def read_list(text: str) -> tuple[str, ...]:
    """The non-comment words of a list file (one item a line, `#` comments)."""
    return tuple(line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip())


def guest_dir() -> Path:
    if not all((GUEST_DIR / name).is_file() for name in GUEST_FILES):
        raise CfError(
            f"the guest files are missing from {GUEST_DIR}",
            hint="run chrootforge from a checkout: the VM is built from its vm/ folder",
        )
    return GUEST_DIR


def runtime_requirements(root: Path = SOURCE_ROOT) -> tuple[str, ...]:
    """chrootforge's own dependencies, from pyproject.toml (else from the installed metadata)."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        return tuple(untrusted.loads_toml(pyproject.read_text())["project"]["dependencies"])

    return tuple(r for r in metadata.requires("chrootforge") or () if "extra ==" not in r)


def _apt_cache(*args: str) -> str:
    try:
        proc = subprocess.run(["apt-cache", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise CfError(
            "apt-cache is not installed: the VM guest is built from Debian's packages",
            hint="run chrootforge vm on a Debian or Ubuntu host (apt, dpkg, mmdebstrap)",
        ) from err
    if proc.returncode != 0 or not proc.stdout.strip():
        raise CfError(
            f"apt-cache {' '.join(args)} found nothing: {proc.stderr.strip()}",
            hint="sudo apt-get update (the guest needs Debian's package lists)",
        )
    return proc.stdout


def parse_depends(text: str, prefix: str) -> str:
    """The first `Depends:` package of `apt-cache depends` output that starts with `prefix`."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "Depends:" and fields[1].startswith(prefix):
            return fields[1]
    raise CfError(f"no {prefix}* dependency in apt-cache output", hint="sudo apt-get update")


def parse_version(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise CfError("apt-cache show printed no Version", hint="sudo apt-get update")


APT_LISTS = Path("/var/lib/apt/lists")


def apt_stamp() -> str:
    """Changes whenever `apt-get update` changes what apt-cache would answer."""
    try:
        entries = [entry.stat() for entry in APT_LISTS.iterdir() if entry.is_file()]
    except OSError:
        return ""
    return (
        f"{len(entries)}:{max((e.st_mtime_ns for e in entries), default=0)}:{sum(e.st_size for e in entries)}"
    )


def _apt_packages() -> dict[str, str]:
    kernel = parse_depends(_apt_cache("depends", KERNEL_META), "linux-image-")
    return {
        "kernel_package": kernel,
        "kernel_version": parse_version(_apt_cache("show", "--no-all-versions", kernel)),
        "busybox_version": parse_version(_apt_cache("show", "--no-all-versions", BUSYBOX)),
    }


def apt_packages() -> dict[str, str]:
    """The kernel and busybox package versions apt would download, memoized per state of the apt
    lists: apt-cache takes seconds on a loaded host, and every `vm run` needs the answer."""
    stamp = apt_stamp()
    memo = bookkeeping("vm-apt.json")
    try:
        known = untrusted.read_json(memo)
    except (OSError, ValueError):
        known = {}
    if stamp and known.get("stamp") == stamp:
        return known["packages"]
    packages = _apt_packages()
    if stamp:
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, json.dumps({"stamp": stamp, "packages": packages}, sort_keys=True))
    return packages


def resolve() -> Recipe:
    """The recipe for this host: the newest kernel of the generic flavour apt knows about."""
    folder = guest_dir()
    files = tuple((name, hashlib.sha256((folder / name).read_bytes()).hexdigest()) for name in GUEST_FILES)
    apt = apt_packages()
    return Recipe(
        kernel_package=apt["kernel_package"],
        kernel_version=apt["kernel_version"],
        busybox_version=apt["busybox_version"],
        packages=read_list((folder / "packages.txt").read_text()),
        modules=read_list((folder / "modules.txt").read_text()),
        requirements=runtime_requirements(),
        guest_files=files,
    )
