"""Turn a fresh Debian rootfs into a Gentoo-like stage3 (run as mmdebstrap's customize hook).

Usage (inside mmdebstrap's namespace, as its root):
    python3 stage_setup.py ROOTFS WHEEL REPO_NAME PROFILE CHOST

Stdlib only: it runs with the host's /usr/bin/python3, outside the chroot, writing into ROOTFS; the
commands that must see the rootfs (its pip, its python) run under `chroot`. Every edit checks that
the text it expects is there and fails loudly otherwise, so a different portage wheel cannot
produce a silently broken stage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PORTAGE_UID = PORTAGE_GID = 250
SITE = "usr/lib/python3/dist-packages"  # where DEB_PYTHON_INSTALL_LAYOUT=deb_system puts modules

MAKE_CONF = """\
# Synthetic chrootforge test stage: a Debian userland with the real portage.
# Gentoo's sandbox binary does not exist here.
FEATURES="-sandbox -usersandbox"
# Air-gapped: a build may never fetch; distfiles are provided by the test fixtures.
FETCHCOMMAND=false
RESUMECOMMAND=false
"""

# The stock repos.conf names /var/db/repos/gentoo as the `gentoo` repo; ours is the test repo there.
REPOS_CONF = """\
[DEFAULT]
main-repo = {name}

[{name}]
location = /var/db/repos/gentoo
auto-sync = no
"""


def die(message: str) -> None:
    sys.exit(f"stage_setup: {message}")


def replace_exactly(path: Path, old: str, new: str, count: int) -> None:
    text = path.read_text()
    found = text.count(old)
    if found != count:
        die(
            f"{path}: expected {count}x {old!r}, found {found}: the portage wheel changed; "
            "update tests/world/stage_setup.py"
        )
    path.write_text(text.replace(old, new))


def chroot(root: Path, *argv: str, env: dict[str, str] | None = None) -> None:
    # No .pyc written as a side effect of running Python: recompile_python makes them all.
    full = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "0"),
    }
    full.update(env or {})
    subprocess.run(["chroot", str(root), *argv], check=True, env=full, stdout=subprocess.DEVNULL)


def install_portage(root: Path, wheel: Path) -> None:
    target = root / "tmp" / wheel.name
    shutil.copy(wheel, target)
    try:
        chroot(
            root,
            "python3",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--break-system-packages",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            "--no-compile",
            "--no-warn-script-location",
            f"/tmp/{wheel.name}",
            env={"DEB_PYTHON_INSTALL_LAYOUT": "deb_system"},
        )
    finally:
        target.unlink()
    pkg = root / SITE / "portage"
    if not (pkg / "installation.py").is_file():
        die(f"portage was not installed under /{SITE} (is DEB_PYTHON_INSTALL_LAYOUT honoured?)")
    # The wheel is a MODULE install (EPREFIX=/usr); Gentoo's meson build makes a SYSTEM one.
    # In the wheel, meson's placeholder was filled with "MODULE" in the `if` and the `elif` tests.
    replace_exactly(pkg / "installation.py", '"MODULE" == "', '"SYSTEM" == "', 2)
    replace_exactly(
        pkg / "const.py", 'PORTAGE_BASE_PATH = """"""', 'PORTAGE_BASE_PATH = "/usr/lib/portage"', 1
    )
    replace_exactly(
        pkg / "const.py", 'PORTAGE_BIN_PATH = """"""', 'PORTAGE_BIN_PATH = "/usr/lib/portage/bin"', 1
    )
    chroot(
        root,
        "python3",
        "-c",
        "import portage.installation as i, portage.const as c\n"
        "assert i.TYPE == i.TYPES.SYSTEM, i.TYPE\n"
        "assert c.EPREFIX == '' and c.PORTAGE_BIN_PATH == '/usr/lib/portage/bin', c.PORTAGE_BIN_PATH\n"
        "assert c.GLOBAL_CONFIG_PATH == '/usr/share/portage/config'\n",
    )
    for must in (
        "usr/bin/emerge",
        "usr/bin/ebuild",
        "usr/lib/portage/bin/ebuild.sh",
        "usr/share/portage/config/make.globals",
    ):
        if not (root / must).exists():
            die(f"/{must} is missing after installing portage")


def recompile_python(root: Path) -> None:
    """Make the .pyc files of everything Python touched here reproducible.

    A default .pyc embeds its source's mtime (pip's install time for portage), and Python writes
    some as a side effect of running. With checked hashes (PEP 552), compiled in one process, the
    bytes depend only on the sources; portage still starts without compiling anything.
    """
    dirs = [f"/{SITE}", "/usr/share/python3", "/usr/lib/portage/bin"]
    for rel in dirs:
        for cache in sorted((root / rel.lstrip("/")).rglob("__pycache__")):
            shutil.rmtree(cache)
    chroot(root, "python3", "-m", "compileall", "-q", "-j1", "--invalidation-mode", "checked-hash", *dirs)


def chroot_output(root: Path, *argv: str) -> str:
    proc = subprocess.run(
        ["chroot", str(root), *argv],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )
    return proc.stdout.strip()


def chost_tools(root: Path, chost: str) -> list[str]:
    """${CHOST}-gcc, -ar, -ranlib, -nm, -strip, ... as gcc-config and binutils-config give a Gentoo
    stage: a symlink to Debian's tool of its own triplet (x86_64-linux-gnu-gcc), for every such tool.
    Build systems look for them (zlib's configure takes ${CHOST}-gcc, or else builds its shared
    library without -fPIC)."""
    triplet = chroot_output(root, "gcc", "-dumpmachine")
    bindir = root / "usr/bin"
    made = []
    for tool in sorted(bindir.glob(f"{triplet}-*")):
        name = chost + tool.name[len(triplet) :]
        link = bindir / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(tool.name)
            made.append(name)
    for needed in ("gcc", "cpp", "ar", "as", "ld", "nm", "ranlib", "strip", "objcopy", "objdump", "readelf"):
        if not (bindir / f"{chost}-{needed}").exists():
            die(f"/usr/bin/{chost}-{needed} is missing: Debian has no /usr/bin/{triplet}-{needed}")
    return made


# The builder's toolchain, which dpkg owns: listed in package.provided, so that emerge takes it as
# installed (the profile's @system names it, and ebuilds may depend on it).
TOOLCHAIN = {
    "gcc": "sys-devel/gcc",
    "binutils": "sys-devel/binutils",
    "libc6": "sys-libs/glibc",
    "make": "sys-devel/make",
}


def upstream_version(debian: str) -> str:
    """`4:12.2.0-3` -> `12.2.0`: no epoch, no Debian revision."""
    version = debian.split(":", 1)[-1].rsplit("-", 1)[0]
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        die(f"Debian version {debian!r} has no plain upstream version to provide")
    return version


def provide_toolchain(root: Path) -> None:
    lines = ["# The stage's toolchain, installed by dpkg (tests/world/stage_setup.py)"]
    for package, atom in sorted(TOOLCHAIN.items(), key=lambda item: item[1]):
        version = chroot_output(root, "dpkg-query", "-W", "-f", "${Version}", package)
        lines.append(f"{atom}-{upstream_version(version)}")
    profile = root / "etc/portage/profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "package.provided").write_text("\n".join(lines) + "\n")


# The loader's search path as a Gentoo stage has it: env-update writes /etc/ld.so.conf from the
# LDPATH of /etc/env.d. Gentoo's glibc and baselayout give these two files; here Debian's own
# multiarch directories come in through ld.so.conf.d, and ebuilds install into lib64. Without them
# the first merge's env-update would write an ld.so.conf without Debian's include line.
ENV_D = {
    "00glibc": 'LDPATH="include ld.so.conf.d/*.conf"\n',
    "50baselayout": 'LDPATH="/lib64:/usr/lib64:/usr/local/lib64:/lib:/usr/lib:/usr/local/lib"\n',
}


def library_path(root: Path) -> None:
    envd = root / "etc/env.d"
    envd.mkdir(exist_ok=True)
    for name, text in ENV_D.items():
        (envd / name).write_text(text)
    chroot(root, "env-update")
    conf = (root / "etc/ld.so.conf").read_text()
    if "include ld.so.conf.d/*.conf" not in conf or "/usr/lib64" not in conf:
        die(f"env-update wrote an unexpected /etc/ld.so.conf:\n{conf}")


def add_line(path: Path, name: str, line: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    if not any(entry.split(":")[0] == name for entry in lines):
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def add_portage_account(root: Path) -> None:
    etc = root / "etc"
    add_line(etc / "group", "portage", f"portage:x:{PORTAGE_GID}:")
    add_line(etc / "gshadow", "portage", "portage:!::")
    add_line(
        etc / "passwd",
        "portage",
        f"portage:x:{PORTAGE_UID}:{PORTAGE_GID}:portage:/var/lib/portage/home:/bin/false",
    )
    add_line(etc / "shadow", "portage", "portage:!:19000::::::")


def make_layout(root: Path, repo_name: str, profile: str) -> None:
    dirs = {  # path: (mode, uid, gid), as in a Gentoo stage3
        "var/db/pkg": (0o755, 0, 0),
        "var/db/repos": (0o755, 0, 0),
        "var/cache/distfiles": (0o2775, PORTAGE_UID, PORTAGE_GID),
        "var/cache/binpkgs": (0o755, 0, 0),
        "var/tmp/portage": (0o775, PORTAGE_UID, PORTAGE_GID),
        "var/log/portage": (0o2755, PORTAGE_UID, PORTAGE_GID),
        "var/lib/portage/home": (0o755, PORTAGE_UID, PORTAGE_GID),
        "etc/portage/repos.conf": (0o755, 0, 0),
        "etc/portage/env": (0o755, 0, 0),
        "etc/portage/package.use": (0o755, 0, 0),
        "etc/portage/profile": (0o755, 0, 0),
    }
    for rel, (mode, uid, gid) in dirs.items():
        path = root / rel
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, uid, gid)
        path.chmod(mode)
    gtar = root / "usr/bin/gtar"  # portage's unpack and binpkg code call gtar
    if not gtar.is_symlink():
        gtar.symlink_to("tar")
    if not (root / "usr/bin/python").exists():
        die("/usr/bin/python is missing: include python-is-python3")
    (root / "etc/portage/make.conf").write_text(MAKE_CONF)
    repos = REPOS_CONF.format(name=repo_name)
    (root / "usr/share/portage/config/repos.conf").write_text(repos)
    # Dangling until the repo is bound at /var/db/repos/gentoo, exactly like a fresh stage3.
    (root / "etc/portage/make.profile").symlink_to(f"../../var/db/repos/gentoo/profiles/{profile}")


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        die("usage: stage_setup.py ROOTFS WHEEL REPO_NAME PROFILE CHOST")
    root, wheel, repo_name, profile, chost = Path(argv[1]), Path(argv[2]), argv[3], argv[4], argv[5]
    install_portage(root, wheel)
    recompile_python(root)
    add_portage_account(root)
    make_layout(root, repo_name, profile)
    chost_tools(root, chost)
    provide_toolchain(root)
    library_path(root)
    for cache in ("root/.cache", "var/cache/apt/archives/partial"):
        shutil.rmtree(root / cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
