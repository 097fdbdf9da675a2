"""Upstream source tarballs from Debian's source archive, for the from-source ebuilds of examples/repo.

Debian keeps each package's upstream tarball as `<source>_<version>.orig.tar.*`; for hello, busybox,
skalibs and nginx it is upstream's file, byte for byte, so the ebuilds name upstream's file
(`hello-2.10.tar.gz`); pcre2 and zlib are repacked, so their ebuilds name Debian's file
(`zlib_1.2.13.dfsg.orig.tar.bz2`). Which Debian file a distfile is follows from its name:
`NAME-VERSION.tar.EXT` is `NAME_VERSION.orig.tar.EXT` of source package NAME, and a `*.orig.tar.*`
name is itself, of the source package before the `_`.

`apt-get source --download-only` fetches them (apt checks each file against the signed Sources
index) with a private APT_CONFIG: a deb-src list for the suite's main component, Signed-By the
Debian archive keyring, no sources.list.d, and its own state and cache under `<cache>/apt-src`.
The machine's apt configuration is never read or changed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_UPSTREAM = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9+.]*?)-(?P<version>\d[^-/]*)\.(?P<ext>tar\.(gz|bz2|xz))"
)
_ORIG = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]*)_(?P<version>[^_/]+)\.orig\.(?P<ext>tar\.(gz|bz2|xz))")


class SourceArchiveError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Orig:
    distfile: str  # the name the ebuild's SRC_URI gives it
    source: str  # the Debian source package
    orig: str  # Debian's file name


def orig_of(distfile: str) -> Orig | None:
    """The Debian orig tarball a distfile name stands for, or None for other kinds of files."""
    match = _ORIG.fullmatch(distfile)
    if match:
        return Orig(distfile, match["name"], distfile)
    match = _UPSTREAM.fullmatch(distfile)
    if match:
        return Orig(
            distfile, match["name"].lower(), f"{match['name'].lower()}_{match['version']}.orig.{match['ext']}"
        )
    return None


def apt_config(base: Path, suite: str) -> Path:
    """Write the private apt configuration under `base`; returns the APT_CONFIG file."""
    for sub in ("state/lists/partial", "cache/archives/partial", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    # apt's methods run as the user _apt when apt runs as root: their temp files go here, not to a
    # /tmp that may be closed to them
    (base / "tmp").chmod(0o1777)
    sources = base / "sources.list"
    sources.write_text(f"deb-src [signed-by={KEYRING}] {MIRROR} {suite} main\n")
    config = base / "apt.conf"
    config.write_text(
        f'Dir::Etc::SourceList "{sources}";\n'
        'Dir::Etc::SourceParts "-";\n'
        f'Dir::State "{base / "state"}";\n'
        'Dir::State::status "/dev/null";\n'
        f'Dir::Cache "{base / "cache"}";\n'
        # the state is ours alone (under the world cache's lock): no need for the system's lock
        'Debug::NoLocking "true";\n'
    )
    return config


def _apt(argv: list[str], config: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "APT_CONFIG": str(config),
        "TMPDIR": str(config.parent / "tmp"),
        "LC_ALL": "C.UTF-8",
    }
    return subprocess.run(argv, cwd=cwd, env=env, check=False, capture_output=True, text=True)


def fetch(origs: list[Orig], dest: Path, apt_dir: Path, suite: str, step=print) -> None:
    """Download every orig tarball into dest under its distfile name; a file the archive lacks is
    one error naming it."""
    if not KEYRING.is_file():
        raise SourceArchiveError(f"{KEYRING} is missing (apt-get install debian-archive-keyring)")
    config = apt_config(apt_dir, suite)
    step(f"apt-get update (deb-src {suite} main, private APT_CONFIG {config})")
    proc = _apt(["apt-get", "update", "-q"], config)
    if proc.returncode != 0:
        raise SourceArchiveError(f"apt-get update of Debian's source index failed: {proc.stderr.strip()}")
    for source in sorted({o.source for o in origs}):
        wanted = [o for o in origs if o.source == source]
        step(f"apt-get source --download-only {source} ({', '.join(o.orig for o in wanted)})")
        work = Path(tempfile.mkdtemp(prefix=f".{source}.", dir=dest))
        try:
            proc = _apt(["apt-get", "source", "--download-only", "-q", source], config, cwd=work)
            got = sorted(p.name for p in work.iterdir())
            for orig in wanted:
                if not (work / orig.orig).is_file():
                    detail = proc.stderr.strip().splitlines()[-1:] if proc.returncode else [f"it gave {got}"]
                    raise SourceArchiveError(
                        f"Debian's source archive ({MIRROR} {suite} main) has no {orig.orig} for "
                        f"{orig.distfile}: apt-get source {source}: {' '.join(detail)}"
                    )
                os.replace(work / orig.orig, dest / orig.distfile)
        finally:
            shutil.rmtree(work, ignore_errors=True)
