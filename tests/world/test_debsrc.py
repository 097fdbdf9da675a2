"""Upstream tarballs from Debian's source archive (tests/world/debsrc.py): which file a distfile is,
the private apt configuration, and one clear error for a file the archive does not have."""

from __future__ import annotations

import os

import pytest

from tests.world import debsrc
from tests.world import distfiles as df
from tests.world.cache import SUITE


@pytest.mark.parametrize(
    ("distfile", "source", "orig"),
    [
        ("hello-2.10.tar.gz", "hello", "hello_2.10.orig.tar.gz"),
        ("busybox-1.35.0.tar.bz2", "busybox", "busybox_1.35.0.orig.tar.bz2"),
        ("skalibs-2.13.1.1.tar.gz", "skalibs", "skalibs_2.13.1.1.orig.tar.gz"),
        ("zlib_1.2.13.dfsg.orig.tar.bz2", "zlib", "zlib_1.2.13.dfsg.orig.tar.bz2"),
        ("pcre2_10.42.orig.tar.gz", "pcre2", "pcre2_10.42.orig.tar.gz"),
    ],
)
def test_which_debian_file_a_distfile_is(distfile, source, orig):
    assert debsrc.orig_of(distfile) == debsrc.Orig(distfile, source, orig)


@pytest.mark.parametrize("name", ["hello-1.0.tar", "libc6_2.36-9_amd64.deb", "notes.txt"])
def test_other_files_are_no_orig(name):
    assert debsrc.orig_of(name) is None


def test_the_repo_names_its_upstream_tarballs():
    """Every from-source ebuild's distfile is found, by name, in the ebuilds themselves."""
    assert {o.distfile for o in df.upstream_origs()} == {
        "busybox-1.35.0.tar.bz2",
        "hello-2.10.tar.gz",
        "nginx-1.22.1.tar.gz",
        "pcre2_10.42.orig.tar.gz",
        "skalibs-2.13.1.1.tar.gz",
        "zlib_1.2.13.dfsg.orig.tar.bz2",
    }


def test_the_apt_configuration_is_private(tmp_path):
    config = debsrc.apt_config(tmp_path / "apt", SUITE)
    text = config.read_text()
    assert 'Dir::Etc::SourceParts "-";' in text
    assert f'Dir::State "{tmp_path / "apt" / "state"}";' in text
    assert f'Dir::Cache "{tmp_path / "apt" / "cache"}";' in text
    assert "/etc/apt" not in text
    sources = (tmp_path / "apt/sources.list").read_text()
    assert sources == f"deb-src [signed-by={debsrc.KEYRING}] {debsrc.MIRROR} {SUITE} main\n"
    assert (tmp_path / "apt/tmp").stat().st_mode & 0o7777 == 0o1777


def test_a_file_the_archive_lacks_is_one_clear_error(tmp_path):
    """Debian has hello 2.10, not 9.99: the error names the file, and nothing is left behind."""
    dest = tmp_path / "dist"
    dest.mkdir()
    missing = debsrc.Orig("hello-9.99.tar.gz", "hello", "hello_9.99.orig.tar.gz")
    before = os.listdir("/etc/apt")
    with pytest.raises(debsrc.SourceArchiveError, match=r"has no hello_9\.99\.orig\.tar\.gz for hello-9\.99"):
        debsrc.fetch([missing], dest, tmp_path / "apt", SUITE, step=lambda _msg: None)
    assert list(dest.iterdir()) == []
    assert os.listdir("/etc/apt") == before
