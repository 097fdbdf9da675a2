"""The synthetic stage3 has what a Gentoo stage3 has, and is signed like one."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from chrootforge.sources.digests import parse_digests

REQUIRED_FILES = [
    "usr/bin/emerge",
    "usr/bin/ebuild",
    "usr/bin/python",
    "usr/bin/gtar",
    "usr/lib/portage/bin/ebuild.sh",
    "usr/lib/portage/bin/misc-functions.sh",
    "usr/share/portage/config/make.globals",
    "usr/share/portage/config/repos.conf",
    "etc/portage/make.conf",
    "etc/portage/make.profile",
    "usr/bin/gcc",
    "usr/bin/make",
    "usr/bin/ar",
    "usr/bin/scanelf",
]
DIRS = {  # path: (uid, gid, mode or None)
    "var/db/pkg": (0, 0, None),
    "var/db/repos": (0, 0, None),
    "var/cache/distfiles": (250, 250, 0o2775),
    "var/cache/binpkgs": (0, 0, None),
    "var/tmp/portage": (250, 250, None),
    "var/log/portage": (250, 250, None),
    "var/lib/portage/home": (250, 250, None),
    "etc/portage/repos.conf": (0, 0, None),
    "etc/portage/env": (0, 0, None),
    "etc/portage/package.use": (0, 0, None),
}


@pytest.fixture(scope="module")
def members(world_stage) -> dict[str, tarfile.TarInfo]:
    """Every member of the stage tarball (streamed through zstd, as tar would)."""
    with (
        subprocess.Popen(["zstd", "-dcq", str(world_stage.tarball)], stdout=subprocess.PIPE) as proc,
        tarfile.open(fileobj=proc.stdout, mode="r|") as tar,
    ):
        found = {m.name.removeprefix("./").rstrip("/"): m for m in tar}
    assert proc.returncode == 0
    return found


@pytest.fixture(scope="module")
def extracted(world_stage, tmp_path_factory) -> Path:
    """The few text files whose content matters, extracted."""
    dest = tmp_path_factory.mktemp("stage-files")
    wanted = [
        "./etc/passwd",
        "./etc/group",
        "./etc/shadow",
        "./etc/gshadow",
        "./etc/portage/make.conf",
        "./usr/share/portage/config/repos.conf",
        "./usr/lib/python3/dist-packages/portage/const.py",
        "./usr/lib/python3/dist-packages/portage/installation.py",
    ]
    subprocess.run(["tar", "--zstd", "-xf", str(world_stage.tarball), "-C", str(dest), *wanted], check=True)
    return dest


def test_stage_has_portage_and_the_toolchain(members):
    missing = [path for path in REQUIRED_FILES if path not in members]
    assert not missing, f"not in the stage: {missing}"
    assert members["usr/bin/gtar"].issym() and members["usr/bin/gtar"].linkname == "tar"


def test_stage_layout_and_owners(members):
    for path, (uid, gid, mode) in DIRS.items():
        info = members.get(path)
        assert info is not None and info.isdir(), f"/{path} is not a directory in the stage"
        assert (info.uid, info.gid) == (uid, gid), f"/{path} is owned by {info.uid}:{info.gid}"
        if mode is not None:
            assert info.mode & 0o7777 == mode, f"/{path} has mode {oct(info.mode)}"
    profile = members["etc/portage/make.profile"]
    assert profile.issym()
    assert profile.linkname == "../../var/db/repos/gentoo/profiles/default/linux/amd64"
    assert not any(name.startswith(("root/.cache", "tmp/portage-")) for name in members)


def test_portage_is_a_system_install(extracted):
    site = extracted / "usr/lib/python3/dist-packages/portage"
    installation = (site / "installation.py").read_text()
    assert 'if "SYSTEM" == "MODULE"' in installation and 'elif "SYSTEM" == "SYSTEM"' in installation
    const = (site / "const.py").read_text()
    assert 'PORTAGE_BASE_PATH = "/usr/lib/portage"' in const
    assert 'PORTAGE_BIN_PATH = "/usr/lib/portage/bin"' in const


def test_portage_account_and_config(extracted):
    etc = extracted / "etc"
    assert "portage:x:250:250:" in (etc / "passwd").read_text()
    assert "portage:x:250:" in (etc / "group").read_text()
    assert any(line.startswith("portage:") for line in (etc / "shadow").read_text().splitlines())
    assert any(line.startswith("portage:") for line in (etc / "gshadow").read_text().splitlines())
    make_conf = (etc / "portage/make.conf").read_text()
    assert 'FEATURES="-sandbox -usersandbox"' in make_conf
    assert "FETCHCOMMAND=false" in make_conf and "RESUMECOMMAND=false" in make_conf
    repos = (extracted / "usr/share/portage/config/repos.conf").read_text()
    assert "main-repo = cfworld" in repos and "location = /var/db/repos/gentoo" in repos


def test_digests_match_the_tarball(world_stage):
    text = world_stage.digests.read_text()
    found = parse_digests(text, world_stage.tarball.name)
    b2, sha = hashlib.blake2b(), hashlib.sha512()
    with open(world_stage.tarball, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            b2.update(chunk)
            sha.update(chunk)
    assert found == {"BLAKE2B": b2.hexdigest(), "SHA512": sha.hexdigest()}
    assert text.splitlines()[0] == "# BLAKE2B HASH" and "# SHA512 HASH" in text


def test_signature_verifies_with_the_test_key_only(world_stage, tmp_path):
    import gnupg

    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    imported = gpg.import_keys(world_stage.keyring.read_text())
    assert world_stage.fingerprint in imported.fingerprints
    with open(world_stage.signature, "rb") as sig:
        good = gpg.verify_file(sig, str(world_stage.tarball))
    assert good.valid and good.status == "signature valid", good.stderr
    # The same signature over other bytes must fail.
    other = tmp_path / "other"
    other.write_bytes(world_stage.digests.read_bytes())
    with open(world_stage.signature, "rb") as sig:
        bad = gpg.verify_file(sig, str(other))
    assert not bad.valid
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


@pytest.fixture
def two_dirs(identity):
    cache, fake = identity.mkdtemp("srccache."), identity.mkdtemp("fakestage.")
    yield cache, fake
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(fake, ignore_errors=True)


def test_chrootforge_verifies_the_stage_like_a_real_one(world_stage, identity, two_dirs):
    """`chrootforge fetch stage3 --stage3 PATH --keyring KEY`: the air-gapped path of a real stage3."""
    cache, fake = two_dirs
    good = identity.cf(
        "fetch",
        "stage3",
        "--stage3",
        str(world_stage.tarball),
        "--keyring",
        str(world_stage.keyring),
        "--cache-dir",
        str(cache),
    )
    assert good.returncode == 0, good.stderr
    assert Path(good.stdout.strip()).is_file()

    # A DIGESTS file that does not belong to the tarball is refused, signature or not.
    tarball = fake / world_stage.tarball.name
    tarball.symlink_to(world_stage.tarball)
    shutil.copy(world_stage.signature, fake / world_stage.signature.name)
    digests = world_stage.digests.read_text()
    first = digests.splitlines()[1]
    flipped = ("0" if first[0] != "0" else "1") + first[1:]
    (fake / world_stage.digests.name).write_text(digests.replace(first, flipped))
    bad = identity.cf(
        "fetch",
        "stage3",
        "--stage3",
        str(tarball),
        "--keyring",
        str(world_stage.keyring),
        "--cache-dir",
        str(cache),
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "BLAKE2B mismatch" in bad.stderr
