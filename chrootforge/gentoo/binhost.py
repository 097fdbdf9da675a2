"""A binhost for the build (`[build] binhost = URL`, `build --binhost URL`): the pure part.

What a binhost is here: the directory that holds chrootforge's binpkgs caches, served over HTTP.
Every build writes the binary packages it compiles into `<cache>/binpkgs/<binpkgs key>/`, a
PKGDIR with its portage-maintained `Packages` index; the key (gentoo.inputs.binpkg_key) covers
what makes packages interchangeable: stage, tree, profile, make.conf (CHOST, CFLAGS, -march with
native resolved) and an image's package.env. A build with a binhost reads `URL/<binpkgs key>/`
only, so builds that differ in any of that never exchange a package: portage itself checks USE
(--binpkg-respect-use) but never the compiler flags.

How emerge reaches it while the build sandbox has no network (the default, and kept): portage's
own binhost protocol over a file:// binrepo that chrootforge fills from the host side.
  1. host: GET URL/KEY/Packages into this build's binrepo directory, bound read-only at MOUNT;
  2. sandbox: binrepos.conf names file://MOUNT; `emerge --fetchonly --pretend --getbinpkg ...`
     with the image's own arguments prints the binary packages portage would take from it: its
     own resolution (USE, slots, package.provided, multi-instance), no network needed;
  3. host: downloads exactly those files into the mirror `<cache>/binhost/<url id>/KEY/` (kept
     for the next builds), each checked against the index (size and every digest it lists; paths
     must stay inside the directory), and links them into the binrepo directory;
  4. sandbox: `emerge --getbinpkg ...` copies them from the binrepo, checks them again, merges.
Why not `network = "host"` and an http binrepo: the whole build (hooks, ebuild phases where
portage's network-sandbox is off) would reach the network, the stage's FETCHCOMMAND (wget, or
none in a minimal stage) and CA bundle would decide, and a registry-style TLS setup (certs.d)
would not apply. Here only files the index lists cross, fetched by chrootforge.
Portage keeps its copies in DOWNLOADS, inside the throwaway builder: the runner's own PKGDIR
holds only what it compiled, which is what it publishes; the mirror keeps the downloads for the
next build on this runner.

If the binhost cannot be used (unreachable, no index for this key, a refused file), the image
is built without it, with a notice: a binhost makes builds faster, never different.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MOUNT = "/var/cache/chrootforge-binhost"
DOWNLOADS = "/var/tmp/chrootforge-binhost"
REPO = "chrootforge-binhost"
DIGESTS = {"SHA1": "sha1", "MD5": "md5", "SHA256": "sha256", "SHA512": "sha512", "BLAKE2B": "blake2b"}
MAX_PACKAGE = 16 << 30
_PATH_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_+.,@=-]*(?:/[A-Za-z0-9_+][A-Za-z0-9_+.,@=-]*)*\Z")
_FIELD_RE = re.compile(r"^([A-Z][A-Z0-9_]*): ?(.*)\Z")


def key_url(base: str, key: str) -> str:
    """The binhost directory a build with binpkgs key `key` reads."""
    return f"{base.rstrip('/')}/{key}/"


def binrepos_conf() -> str:
    """/etc/portage/binrepos.conf: the only binrepo is ours (a stage's own, e.g. Gentoo's
    official binhost, is moved aside: its packages were built with other flags). Packages that
    builds make are not OpenPGP-signed, so the signature check portage's defaults ask of a
    binrepo is off; FEATURES=binpkg-request-signature in make_conf still forces it."""
    return (
        f"[{REPO}]\nsync-uri = file://{MOUNT}\nlocation = {DOWNLOADS}\npriority = 10\n"
        "verify-signature = false\n"
    )


def with_getbinpkg(emerge_argv) -> list[str]:
    argv = list(emerge_argv)
    return [argv[0], "--getbinpkg", *argv[1:]]


def pretend_argv(emerge_argv) -> list[str]:
    """The image's emerge, asked which binary packages it would fetch (prints their URIs)."""
    argv = list(emerge_argv)
    return [argv[0], "--fetchonly", "--pretend", "--getbinpkg", *argv[1:]]


def wanted_paths(output: str) -> list[str]:
    """The index PATHs of the binary packages a pretend run would fetch from the binrepo."""
    prefix = f"file://{MOUNT}/"
    out = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(prefix) and line[len(prefix) :] not in out:
            out.append(line[len(prefix) :])
    return out


def safe_path(path: str) -> bool:
    """A relative path of plain components (no '..', no absolute path, no odd characters)."""
    return bool(_PATH_RE.fullmatch(path)) and ".." not in path.split("/") and len(path) <= 1024


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    digests: dict[str, str]  # hashlib name -> lower-case hex


class BadIndex(ValueError):
    pass


def parse_index(text: str) -> dict[str, Entry]:
    """The packages of a `Packages` index, by PATH (entries without PATH or SIZE are left out:
    portage cannot fetch those either). BadIndex when it is no index at all."""
    blocks = [b for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    if not blocks:
        raise BadIndex("the Packages index is empty")
    header = _fields(blocks[0])
    if "TIMESTAMP" not in header:
        raise BadIndex("the Packages index has no TIMESTAMP header")
    entries = {}
    for block in blocks[1:]:
        fields = _fields(block)
        path, size = fields.get("PATH"), fields.get("SIZE", "")
        if not path or not size.isdigit():
            continue
        digests = {DIGESTS[k]: v.lower() for k, v in fields.items() if k in DIGESTS}
        entries[path] = Entry(path, int(size), digests)
    return entries


def _fields(block: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        match = _FIELD_RE.match(line)
        if match:
            out[match.group(1)] = match.group(2).strip()
    return out


def check_entry(entry: Entry) -> str | None:
    """None when `entry` may be downloaded, else why not."""
    if not safe_path(entry.path):
        return f"its path {entry.path[:80]!r} leaves the binhost directory or is malformed"
    if entry.size > MAX_PACKAGE:
        return f"{entry.path}: {entry.size} bytes is more than a binary package may have"
    if not entry.digests:
        return f"{entry.path}: the index lists no digest for it"
    for name, value in entry.digests.items():
        if not re.fullmatch(r"[0-9a-f]{16,128}", value):  # (fullmatch: no trailing newline either)
            return f"{entry.path}: its {name} in the index is malformed"
    return None
