"""The distfiles of the test repository: Debian .debs fetched with apt, upstream tarballs from Debian's
source archive (tests/world/debsrc.py), and our source tarballs (examples/src).

    python -m tests.world.distfiles --cache-dir DIR [--write-manifests]

prints the distfiles directory. The ebuilds are the single source of truth: each `-bin` ebuild names
its Debian version (DEB_PV) and its .deb files (SRC_URI); this module downloads exactly those with
`apt-get download PKG=VERSION` and renames them to their pool names. The repo ships Manifests that
match the pinned versions; a fetched file whose size or hashes differ fails loudly. When Debian
drops a pinned version, bump DEB_PV (and the ebuild's version) and run with --write-manifests.

apt-get download works as root and, as long as apt's package lists exist, as any user. The .debs of
another architecture (`--arch arm64`: the ebuilds' `arm64? ( ... )` groups) come through a private
apt state (tests/world/foreign.py); each arch has its own distfiles directory, and the Manifests
hold the DIST lines of every arch.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.world import debsrc
from tests.world.cache import EXAMPLES, SUITE, Step, keyed_build, source_digests, tree_digest

REPO = EXAMPLES / "repo"
SRC = EXAMPLES / "src"
ARCHES = ("amd64", "arm64")  # the arches the repo's profiles and -bin ebuilds cover
HOST_ARCH = "amd64"  # whose .debs the machine's own apt fetches
MTIME = 1700000000  # fixed mtime in the source tarball, so its Manifest hashes are stable


class DistfilesError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Deb:
    package: str  # Debian package name
    version: str  # Debian version without the epoch, as in pool file names
    filename: str  # the distfile name the ebuild expects (the pool file name)
    ebuild: str  # category/pn, for messages


def _ebuild_var(text: str, name: str) -> str:
    match = re.search(rf'^{name}="(.*?)"', text, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def gentoo_version(debian_version: str) -> str:
    """The ebuild version for a Debian version: no epoch, each revision number becomes a `_p`.

    `1:1.35.0-4+deb12u1+b1` -> `1.35.0_p4_p12_p1_p1`; `2.11.3.2-1` -> `2.11.3.2_p1`.
    """
    version = debian_version.split(":", 1)[-1]
    upstream, _, revision = version.rpartition("-") if "-" in version else (version, "", "")
    if not re.fullmatch(r"\d+(\.\d+)*[a-z]?", upstream):
        raise DistfilesError(
            f"Debian version {debian_version}: upstream part {upstream!r} is not a valid Gentoo version"
        )
    return upstream + "".join(f"_p{int(n)}" for n in re.findall(r"\d+", revision))


def arch_uris(src_uri: str, arch: str) -> list[str]:
    """The URIs of a SRC_URI that a build for `arch` fetches: the unconditional ones and those
    inside `arch? ( ... )` groups (of this arch; another flag's group is left out)."""
    out, stack, flag = [], [], None
    for token in src_uri.split():
        if token.endswith("?"):
            flag = token[:-1]
        elif token == "(":
            stack.append(flag)
            flag = None
        elif token == ")":
            stack.pop()
        elif all(f == arch for f in stack):
            out.append(token)
    return out


def pinned_debs(repo: Path = REPO, arch: str = HOST_ARCH) -> list[Deb]:
    """The .deb distfiles every ebuild of the repo names for `arch`, with their pinned Debian
    versions."""
    debs = []
    for ebuild in sorted(repo.glob("*/*/*.ebuild")):
        text = ebuild.read_text()
        deb_pv = _ebuild_var(text, "DEB_PV")
        if not deb_pv:
            continue
        for uri in arch_uris(_ebuild_var(text, "SRC_URI").replace("${DEB_PV}", deb_pv), arch):
            name = uri.rsplit("/", 1)[-1]
            package, version, _arch = name[: -len(".deb")].split("_")
            debs.append(Deb(package, version, name, f"{ebuild.parent.parent.name}/{ebuild.parent.name}"))
    if not debs:
        raise DistfilesError(f"no -bin ebuild with DEB_PV under {repo}")
    return debs


def expected_names(arch: str = HOST_ARCH) -> set[str]:
    """The files of `arch`'s distfiles directory."""
    debs = {d.filename for d in pinned_debs(arch=arch)}
    return debs | {f"{s.name}.tar" for s in source_tarballs()} | {o.distfile for o in upstream_origs()}


def source_tarballs(src: Path = SRC) -> list[Path]:
    return sorted(p for p in src.iterdir() if p.is_dir())


def write_source_tarball(src_dir: Path, out: Path) -> None:
    """`<name>.tar` of src_dir: sorted, fixed owner and mtime, so the bytes are reproducible.

    Uncompressed on purpose: the bytes then do not depend on the zlib version.
    """
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        paths = [src_dir, *sorted(src_dir.rglob("*"))]
        for path in paths:
            arcname = path.relative_to(src_dir.parent).as_posix()
            info = tar.gettarinfo(path, arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = MTIME
            info.mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
            if info.isreg():
                with open(path, "rb") as handle:
                    tar.addfile(info, io.BytesIO(handle.read()))
            else:
                tar.addfile(info)


def _epoch_version(package: str, version: str) -> str:
    """The full apt version (with epoch) for `version`, or a clear error naming what apt offers."""
    out = subprocess.run(["apt-cache", "madison", package], check=False, capture_output=True, text=True)
    offered = [line.split("|")[1].strip() for line in out.stdout.splitlines() if line.count("|") >= 2]
    for full in offered:
        if full.split(":", 1)[-1] == version:
            return full
    raise DistfilesError(
        f"apt offers {package} {', '.join(offered) or 'in no version'}, but the repo pins {version}. "
        f"Bump DEB_PV and the version of the ebuild that names {package}, then run "
        f"`python -m tests.world.distfiles --cache-dir DIR --write-manifests`"
    )


def apt_download(debs: list[Deb], dest: Path, arch: str = HOST_ARCH, cache_dir: Path | None = None) -> None:
    """Download the pinned .debs into dest under their pool names (another arch's through the
    private apt state under cache_dir)."""
    if arch != HOST_ARCH:
        from tests.world.foreign import ForeignAptError, download

        try:
            got = download(
                Path(cache_dir or dest.parent), arch, [(d.package, d.version) for d in debs], dest / ".apt"
            )
        except ForeignAptError as err:
            raise DistfilesError(str(err)) from None
        for deb in debs:
            got[deb.package].rename(dest / deb.filename)
        shutil.rmtree(dest / ".apt")
        return
    work = dest / ".apt"
    work.mkdir()
    specs = [f"{d.package}={_epoch_version(d.package, d.version)}" for d in debs]
    # As root apt drops to _apt, which cannot write into a private temp dir: it then says so on
    # stderr and downloads as root anyway. Keep stderr for the error case only.
    proc = subprocess.run(
        ["apt-get", "download", "-q", *specs], cwd=work, check=False, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise DistfilesError(f"apt-get download failed ({proc.returncode}): {proc.stderr.strip()}")
    for deb in debs:
        found = [
            p
            for p in work.iterdir()
            if p.name.startswith(f"{deb.package}_") and p.name.endswith(f"_{arch}.deb")
        ]
        if len(found) != 1:
            raise DistfilesError(f"apt-get download left {found} for {deb.package}")
        found[0].rename(dest / deb.filename)
    shutil.rmtree(work)


def file_hashes(path: Path) -> tuple[int, str, str]:
    b2, sha = hashlib.blake2b(), hashlib.sha512()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            b2.update(chunk)
            sha.update(chunk)
    return path.stat().st_size, b2.hexdigest(), sha.hexdigest()


def dist_line(path: Path) -> str:
    size, b2, sha = file_hashes(path)
    return f"DIST {path.name} {size} BLAKE2B {b2} SHA512 {sha}"


def manifest_entries(repo: Path = REPO) -> dict[str, tuple[Path, str]]:
    """{distfile name: (Manifest path, its DIST line)} over the whole repo."""
    entries = {}
    for manifest in sorted(repo.glob("*/*/Manifest")):
        for line in manifest.read_text().splitlines():
            if line.startswith("DIST "):
                entries[line.split()[1]] = (manifest, line)
    return entries


def src_uri_names(ebuild: Path) -> list[str]:
    """The distfile names an ebuild's SRC_URI gives: ${P}, ${PN}, ${PV} and the ebuild's own global
    assignments (DEB_PV, MY_P, ...) expanded in order, a `-> NAME` rename and USE-conditional groups
    understood."""
    text = ebuild.read_text()
    pn = ebuild.parent.name
    pv = re.sub(r"-r\d+$", "", ebuild.stem[len(pn) + 1 :])
    values = {"P": f"{pn}-{pv}", "PN": pn, "PV": pv}
    for name, value in re.findall(r'^([A-Z][A-Z0-9_]*)="(.*?)"$', text, re.MULTILINE | re.DOTALL):
        values[name] = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), value)
    names, words = [], values.get("SRC_URI", "").split()
    for i, word in enumerate(words):
        if word in ("(", ")", "->") or word.endswith("?"):
            continue
        if i + 1 < len(words) and words[i + 1] == "->":
            continue  # renamed: the name follows the arrow
        names.append(word.rsplit("/", 1)[-1])
    return names


def distfiles_of(ebuild_dir: Path, names: set[str]) -> list[str]:
    """Which of `names` the ebuilds in ebuild_dir mention in SRC_URI."""
    used = [name for ebuild in ebuild_dir.glob("*.ebuild") for name in src_uri_names(ebuild)]
    return sorted(n for n in set(used) if n in names)


def upstream_origs(repo: Path = REPO, src: Path = SRC) -> list[debsrc.Orig]:
    """Every distfile of the repo that is neither a pinned .deb nor one of our source tarballs: an
    upstream tarball, taken from Debian's source archive (tests/world/debsrc.py). The same for
    every arch."""
    ours = {f"{p.name}.tar" for p in source_tarballs(src)}
    origs = {}
    for ebuild in sorted(repo.glob("*/*/*.ebuild")):
        if _ebuild_var(ebuild.read_text(), "DEB_PV"):
            continue
        for name in src_uri_names(ebuild):
            if name in ours:
                continue
            orig = debsrc.orig_of(name)
            if orig is None:
                raise DistfilesError(
                    f"{ebuild.relative_to(repo)}: distfile {name} is neither a .deb, one of "
                    "examples/src, nor an upstream tarball Debian's source archive has"
                )
            origs[name] = orig
    return [origs[name] for name in sorted(origs)]


def write_manifests(distdirs: list[Path], repo: Path = REPO) -> list[Path]:
    """(Re)write every package Manifest of the repo from the files in distdirs (one per arch)."""
    where = {p.name: p for d in distdirs for p in d.iterdir() if p.is_file() and not p.name.startswith(".")}
    written = []
    for pkg in sorted(p for p in repo.glob("*/*") if list(p.glob("*.ebuild"))):
        used = distfiles_of(pkg, set(where))
        if not used:
            continue
        text = "".join(dist_line(where[name]) + "\n" for name in used)
        manifest = pkg / "Manifest"
        if not manifest.exists() or manifest.read_text() != text:
            manifest.write_text(text)
            written.append(manifest)
    return written


def check_against_manifests(distdir: Path, repo: Path = REPO) -> None:
    entries = manifest_entries(repo)
    problems = []
    for path in sorted(distdir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name not in entries:
            problems.append(f"{path.name}: no DIST line in any Manifest")
        elif entries[path.name][1] != dist_line(path):
            problems.append(f"{path.name}: differs from {entries[path.name][0].relative_to(repo)}")
    if problems:
        raise DistfilesError(
            "the distfiles do not match the repo's Manifests:\n  "
            + "\n  ".join(problems)
            + "\n  (after changing examples/src or a pinned version run "
            "`python -m tests.world.distfiles --cache-dir DIR --write-manifests`)"
        )


def inputs(arch: str = HOST_ARCH) -> dict:
    out = {
        "recipe": source_digests("distfiles.py", "debsrc.py", "cache.py"),
        "debs": [dataclasses.astuple(d) for d in pinned_debs(arch=arch)],
        "sources": {p.name: tree_digest(p) for p in source_tarballs()},
        "origs": [dataclasses.astuple(o) for o in upstream_origs()],
        "suite": SUITE,
    }
    if arch != HOST_ARCH:
        out["recipe"] = source_digests("distfiles.py", "debsrc.py", "cache.py", "foreign.py")
        out["arch"] = arch
    return out


def build(
    dest: Path, apt_dir: Path, quiet: bool = False, arch: str = HOST_ARCH, cache_dir: Path | None = None
) -> None:
    step = Step("distfiles" if arch == HOST_ARCH else f"distfiles {arch}", quiet)
    debs = pinned_debs(arch=arch)
    step(f"apt-get download {len(debs)} {arch} .debs")
    apt_download(debs, dest, arch, cache_dir)
    origs = upstream_origs()
    if arch != HOST_ARCH and cache_dir is not None:  # the same tarballs as the host arch's: copied
        host = ensure_distfiles(cache_dir, quiet, check=False)
        step(f"{len(origs)} upstream tarballs from {host}")
        for orig in origs:
            shutil.copyfile(host / orig.distfile, dest / orig.distfile)
        origs = []
    try:
        if origs:
            debsrc.fetch(origs, dest, apt_dir, SUITE, step)
    except debsrc.SourceArchiveError as err:
        raise DistfilesError(str(err)) from None
    for src in source_tarballs():
        step(f"source tarball {src.name}.tar")
        write_source_tarball(src, dest / f"{src.name}.tar")
    for path in dest.iterdir():
        path.chmod(0o644)
    step("done")


def ensure_distfiles(cache_dir: Path, quiet: bool = False, check: bool = True, arch: str = HOST_ARCH) -> Path:
    """The cached distfiles directory of `arch` (built once per input key); checked against the
    Manifests."""
    kind = "distfiles" if arch == HOST_ARCH else f"distfiles-{arch}"
    cache_dir = Path(cache_dir)
    apt_dir = cache_dir / "apt-src"
    path = keyed_build(cache_dir, kind, inputs(arch), lambda tmp: build(tmp, apt_dir, quiet, arch, cache_dir))
    if check:
        check_against_manifests(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.world.distfiles", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument(
        "--write-manifests",
        action="store_true",
        help="rewrite examples/repo/*/*/Manifest from the fetched distfiles",
    )
    parser.add_argument("--arch", choices=ARCHES, default=HOST_ARCH, help="whose .debs (default amd64)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        path = ensure_distfiles(args.cache_dir, args.quiet, check=not args.write_manifests, arch=args.arch)
        if args.write_manifests:  # from every arch's distfiles: a Manifest holds them all
            dirs = [ensure_distfiles(args.cache_dir, args.quiet, check=False, arch=a) for a in ARCHES]
            for manifest in write_manifests(dirs):
                print(f"wrote {manifest}", file=sys.stderr)
    except DistfilesError as err:
        print(f"distfiles: error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
