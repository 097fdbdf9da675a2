"""The test ebuild repository: pkgcheck-clean, and its Manifests match the distfiles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.world import distfiles as df
from tests.world.cache import EXAMPLES

REPO = EXAMPLES / "repo"


def pkgcheck(repo: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.world.pkgcheck_scan",
            "--exit=error,warning,style,info",
            *extra,
            str(repo),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLES.parent,
    )


def scan_copy(tmp_path: Path) -> Path:
    """pkgcore writes a metadata/md5-cache into a writable repo: scan a copy, not the checkout."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("md5-cache"))
    return repo


def test_pkgcheck_scan_is_clean(tmp_path):
    result = pkgcheck(scan_copy(tmp_path))
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_pkgcheck_catches_a_broken_ebuild(tmp_path):
    """The scan above can fail: the same repo with a damaged ebuild is reported."""
    repo = scan_copy(tmp_path)
    ebuild = next((repo / "app-misc/hello").glob("*.ebuild"))
    ebuild.write_text(
        ebuild.read_text().replace('KEYWORDS="amd64 arm64"', 'KEYWORDS="amd64 arm64 nosucharch"')
    )
    result = pkgcheck(repo)
    assert result.returncode != 0
    assert "UnknownKeywords" in result.stdout, result.stdout + result.stderr


def profile_of(arch: str) -> str:
    return f"default/linux/{arch}/23.0"


def profile_chain(profile: str) -> list[str]:
    """The profile's stack as PMS defines it: each directory after its parents (depth first, in
    the order of its parent file), paths relative to profiles/."""
    base = REPO / "profiles"
    out: list[str] = []

    def visit(path: Path) -> None:
        parent = path / "parent"
        if parent.exists():
            for line in parent.read_text().split():
                visit((path / line).resolve())
        rel = path.relative_to(base.resolve()).as_posix()
        if rel not in out:
            out.append(rel)

    visit((base / profile).resolve())
    return out


def test_profile_and_layout():
    assert (REPO / "profiles/repo_name").read_text().strip() == "cfworld"
    layout = (REPO / "metadata/layout.conf").read_text()
    assert re.search(r"^masters =\s*$", layout, re.MULTILINE)
    assert "thin-manifests = true" in layout and "manifest-hashes = BLAKE2B SHA512" in layout
    desc = [line.split() for line in (REPO / "profiles/profiles.desc").read_text().splitlines()]
    assert desc == [[arch, profile_of(arch), "stable"] for arch in df.ARCHES]
    assert (REPO / "profiles/arch.list").read_text().split() == list(df.ARCHES)


@pytest.mark.parametrize("arch", df.ARCHES)
def test_profile_is_a_gentoo_shaped_chain(arch):
    """Like default/linux/ARCH/23.0 (amd64, arm64): base, the arch, the releases and a features
    profile, each with its eapi file; the variables and the mask/force files where Gentoo keeps
    them."""
    chain = profile_chain(profile_of(arch))
    assert chain == [
        "base",
        "default/linux",
        "arch/base",
        f"arch/{arch}",
        f"default/linux/{arch}",
        "releases/23.0",
        "features/container",
        profile_of(arch),
    ]
    for rel in chain:
        assert (REPO / "profiles" / rel / "eapi").read_text().strip() == "8", rel

    def defaults(rel: str) -> str:
        return (REPO / "profiles" / rel / "make.defaults").read_text()

    for var in (
        "USE_EXPAND",
        "USE_EXPAND_HIDDEN",
        "USE_EXPAND_IMPLICIT",
        "USE_EXPAND_UNPREFIXED",
        "USE_EXPAND_VALUES_ARCH",
        "USE_EXPAND_VALUES_ELIBC",
        "USE_EXPAND_VALUES_KERNEL",
        "IUSE_IMPLICIT",
        "ACCEPT_LICENSE",
        "NGINX_MODULES_HTTP",
    ):
        assert re.search(rf"^{var}=", defaults("base"), re.MULTILINE), var
    assert (
        arch in re.search(r'^USE_EXPAND_VALUES_ARCH="(.*)"$', defaults("base"), re.MULTILINE).group(1).split()
    )
    for var in ("ARCH", "ACCEPT_KEYWORDS", "CHOST", "CFLAGS", f"LIBDIR_{arch}"):
        assert re.search(rf"^{var}=", defaults(f"arch/{arch}"), re.MULTILINE), var
    assert f'ARCH="{arch}"' in defaults(f"arch/{arch}")
    assert re.search(r'^ELIBC="glibc"$', defaults("default/linux"), re.MULTILINE)
    files = {p.relative_to(REPO / "profiles").as_posix() for p in (REPO / "profiles").rglob("*")}
    assert {
        "base/use.mask",
        "arch/base/use.mask",
        f"arch/{arch}/use.mask",
        f"arch/{arch}/use.force",
        "arch/base/package.use.mask",
        f"arch/{arch}/package.use.mask",
        "features/container/package.use.mask",
        "features/container/package.use.force",
        "base/packages",
        "default/linux/packages",
    } <= files
    assert arch in (REPO / "profiles/arch/base/use.mask").read_text().split()
    assert (REPO / f"profiles/arch/{arch}/use.force").read_text().split()[-1] == arch
    system = {
        line[1:]
        for rel in chain
        if (REPO / "profiles" / rel / "packages").exists()
        for line in (REPO / "profiles" / rel / "packages").read_text().splitlines()
        if line.startswith("*")
    }
    assert system == {"sys-devel/binutils", "sys-devel/gcc", "sys-devel/make", "sys-libs/glibc"}


def test_every_ebuild_is_eapi8_and_every_distfile_has_a_manifest_line():
    entries = df.manifest_entries(REPO)
    for ebuild in REPO.glob("*/*/*.ebuild"):
        assert re.search(r"^EAPI=8$", ebuild.read_text(), re.MULTILINE), ebuild
    for pkg in {e.parent for e in REPO.glob("*/*/*.ebuild")}:
        if "SRC_URI" in "".join(e.read_text() for e in pkg.glob("*.ebuild")):
            assert df.distfiles_of(pkg, set(entries)), f"{pkg.name}: its distfiles have no DIST line"


@pytest.mark.parametrize("arch", df.ARCHES)
def test_manifests_match_the_fetched_distfiles(arch, world_cache):
    # ensure_distfiles already checked this; check again independently of it, and that every
    # DIST line of the repo has its file in one arch's distfiles.
    entries = df.manifest_entries(REPO)
    distfiles = df.ensure_distfiles(world_cache, quiet=True, arch=arch)
    present = {p.name for p in distfiles.iterdir() if not p.name.startswith(".")}
    assert present == df.expected_names(arch) and present <= set(entries)
    for name in present:
        line = entries[name][1]
        size, b2, sha = df.file_hashes(distfiles / name)
        assert line == f"DIST {name} {size} BLAKE2B {b2} SHA512 {sha}"


def test_a_changed_source_no_longer_matches(world_distfiles, tmp_path):
    """The Manifest check can fail: a modified hello source tarball is refused."""
    dist = tmp_path / "dist"
    shutil.copytree(world_distfiles, dist)
    src = tmp_path / "hello-1.0"
    shutil.copytree(EXAMPLES / "src/hello-1.0", src)
    (src / "hello.c").write_text((src / "hello.c").read_text() + "/* changed */\n")
    df.write_source_tarball(src, dist / "hello-1.0.tar")
    with pytest.raises(df.DistfilesError, match="hello-1.0.tar: differs"):
        df.check_against_manifests(dist)


def test_source_tarball_is_reproducible(tmp_path):
    src = tmp_path / "hello-1.0"
    shutil.copytree(EXAMPLES / "src/hello-1.0", src)
    df.write_source_tarball(src, tmp_path / "a.tar")
    os.utime(src / "hello.c", (1, 1))  # other mtimes must not change the bytes
    df.write_source_tarball(src, tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    entries = df.manifest_entries(EXAMPLES / "repo")
    assert entries["hello-1.0.tar"][1] == df.dist_line(tmp_path / "a.tar").replace("a.tar", "hello-1.0.tar")


def test_pins_come_from_the_ebuilds():
    debs = {d.package: d for d in df.pinned_debs(REPO)}
    assert set(debs) >= {
        "busybox-static",
        "s6",
        "libs6-2.11",
        "execline",
        "libexecline2.9",
        "libskarnet2.13",
        "libc6",
    }
    for deb in debs.values():
        assert deb.filename == f"{deb.package}_{deb.version}_amd64.deb"
        assert ":" not in deb.version
    arm64 = {d.package: d for d in df.pinned_debs(REPO, "arm64")}
    assert set(arm64) == set(debs)
    assert all(d.filename == f"{d.package}_{d.version}_arm64.deb" for d in arm64.values())
    # every DIST line is some arch's: nothing is fetched for no arch
    used = set().union(*(df.expected_names(a) for a in df.ARCHES))
    assert set(df.manifest_entries(REPO)) == used


def test_arch_conditional_src_uri():
    text = "a.tar amd64? ( x_amd64.deb y_amd64.deb ) arm64? ( x_arm64.deb ) other? ( z )"
    assert df.arch_uris(text, "amd64") == ["a.tar", "x_amd64.deb", "y_amd64.deb"]
    assert df.arch_uris(text, "arm64") == ["a.tar", "x_arm64.deb"]


def test_apt_version_mismatch_is_a_clear_error():
    with pytest.raises(df.DistfilesError, match=r"apt offers s6 .* but the repo pins 0\.0-0"):
        df._epoch_version("s6", "0.0-0")
