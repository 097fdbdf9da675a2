"""NS/chrootforge.lock from the attacker's side: every field is checked against Gentoo's naming
grammar before it becomes a mirror URL or a cache name, the lock must fit the spec (a local stage's
name too), the verified signer must be the locked one; and from the user's side: `lock` run again
on an unchanged namespace says so and exits 0. Real mirror (HTTP), real OpenPGP, real CLI, as root
and as the unprivileged user; no sandbox is needed (each case stops before one would start)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from chrootforge import lockfile
from chrootforge.errors import UsageError
from tests.helpers.identity import shared_dir
from tests.helpers.mirror import STAMP, STAMP2, make_tar, stage_members

GOOD = lockfile.Lock(
    lockfile.LockedStage(f"stage3-amd64-openrc-{STAMP}.tar.xz", "ab" * 64, "A" * 40, STAMP),
    lockfile.LockedTree(name="gentoo-20240101.tar.xz", date="20240101", sha512="cd" * 64, signer="B" * 40),
)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("stage3", "release", "../../../../tmp/x"),
        ("stage3", "release", "x;id"),
        ("stage3", "release", "20241399T000000Z"),
        ("stage3", "name", f"../stage3-amd64-openrc-{STAMP}.tar.xz"),
        ("stage3", "name", f"stage3-amd64-openrc-{STAMP2}.tar.xz"),  # not of its release
        ("stage3", "name", f"stage3-amd64-openrc-{STAMP}.tar.xz?x=1"),
        ("stage3", "sha512", "ab" * 63),
        ("stage3", "sha512", "AB" * 64),
        ("stage3", "signer", "A" * 39),
        ("stage3", "signer", "evil"),
        ("tree", "name", "../gentoo-20240101.tar.xz"),
        ("tree", "name", "gentoo-20240102.tar.xz"),  # not of its date
        ("tree", "date", "2024-01-01"),
        ("tree", "sha512", "cd" * 65),
        ("tree", "signer", "B" * 41),
    ],
)
def test_every_lock_field_is_checked_against_gentoo_grammar(tmp_path, section, key, value):
    path = lockfile.write(tmp_path, GOOD, "t")
    assert lockfile.load(tmp_path) == GOOD
    text = re.sub(
        rf'(\[{section}\][^\[]*?\n{key} = )"[^"\n]*"',
        lambda m: m.group(1) + json.dumps(value),
        path.read_text(),
    )
    assert text != path.read_text()
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        lockfile.load(tmp_path)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key} = ") and value in t)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: [{section}] {key} ") and "\n" not in message, message


def test_other_lock_shapes_are_refused(tmp_path):
    def refused(text: str, pattern: str) -> None:
        (tmp_path / lockfile.FILENAME).write_text(text)
        with pytest.raises(UsageError, match=pattern):
            lockfile.load(tmp_path)

    head = lockfile.render(GOOD, "t").split("[tree]")[0]
    refused(head + '[tree]\nid = "sha256:' + "1" * 64 + '"\nname = "gentoo-20240101.tar.xz"\n', "both")
    refused(head + '[tree]\nid = "x"\n', r"\[tree\] id is wrong")
    refused(
        head + '[tree]\nid = "sha256:' + "1" * 64 + '"\n[repos]\n"../x" = "sha256:' + "2" * 64 + '"\n',
        "repos",
    )
    refused(lockfile.render(GOOD, "t") + "[extra]\nx = 1\n", "not a part of a lock file")
    local = lockfile.Lock(lockfile.LockedStage("../my-stage.tar", "ab" * 64, "UNVERIFIED"), GOOD.tree)
    refused(lockfile.render(local, "t"), r"\[stage3\] name is wrong")


# -- against a real mirror, through the CLI ------------------------------------------------------
def _namespace(base: Path, mirror_url: str | None, keyring: Path, stage: Path | None = None) -> Path:
    ns = base / "ns"
    (ns / "repo" / "profiles").mkdir(parents=True)
    (ns / "repo" / "profiles" / "repo_name").write_text("gentoo\n")
    (ns / "one").mkdir()
    (ns / "one" / "image.toml").write_text('parent = "scratch"\n')
    source = f'path = "{stage}"' if stage else f'mirror = "{mirror_url}"'
    (ns / "chrootforge.toml").write_text(
        f'name = "t"\n[stage3]\n{source}\nkeyring = "{keyring}"\n[tree]\npath = "repo"\n'
        '[output]\nlayout = "../layout"\n'
    )
    return ns


@pytest.fixture
def workdir(identity):
    base = identity.mkdtemp("lockfields.")
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _own(identity, root: Path) -> None:
    if not identity.is_root and os.getuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.chown(path, identity.uid, identity.gid)


def _locked(identity, workdir: Path, mirror_url: str | None, keyring: Path, stage: Path | None = None):
    """A namespace the identity owns, locked by `chrootforge lock` -> (ns, its lock file, env)."""
    ns = _namespace(workdir, mirror_url, keyring, stage=stage)
    _own(identity, workdir)
    env = {"XDG_CACHE_HOME": str(workdir / "cache")}
    locked = identity.cf("lock", str(ns), env=env)
    assert locked.returncode == 0, locked.stderr
    return ns, ns / lockfile.FILENAME, env


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("release", "../../../../../../tmp/cf-escape"),
        ("release", "x;id"),
        ("name", "../../../cf-escape.tar.xz"),
    ],
)
def test_a_hostile_lock_reaches_no_mirror_and_writes_nothing(
    identity, workdir, mirror_tree, mirror_server, gpg_keys, field, value
):
    mirror_tree.publish_stage(make_tar(stage_members(), "xz"))
    ns, lock, env = _locked(identity, workdir, mirror_server.url, gpg_keys.good.public_file)
    lock.write_text(
        re.sub(rf'\n{field} = "[^"]*"', f"\n{field} = {json.dumps(value)}", lock.read_text(), count=1)
    )
    shutil.rmtree(workdir / "cache" / "chrootforge" / "sources")  # nothing cached to fall back on
    before_files, before_requests = _snapshot(workdir), len(mirror_server.requests)
    for argv in (["build", str(ns)], ["lock", str(ns)]):
        done = identity.cf(*argv, env=env)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[0].startswith(f"chrootforge: error: {lock}:"), done.stderr
        assert f"[stage3] {field} is wrong" in lines[0] and "Traceback" not in done.stderr
    assert len(mirror_server.requests) == before_requests, mirror_server.requests[before_requests:]
    assert _snapshot(workdir) == before_files
    assert not Path("/tmp/cf-escape").exists() and not list(Path("/tmp").glob("cf-escape*"))


def test_the_locked_signer_and_a_local_stages_name_are_enforced(identity, workdir, mirror_tree, gpg_keys):
    rel = mirror_tree.publish_stage(make_tar(stage_members(), "xz"))
    stage = mirror_tree.root / rel
    ns, lock, env = _locked(identity, workdir, None, gpg_keys.good.public_file, stage=stage)
    good = lock.read_text()
    assert f'signer = "{gpg_keys.good.fingerprint}"' in good

    lock.write_text(good.replace(gpg_keys.good.fingerprint, gpg_keys.rogue.fingerprint))
    done = identity.cf("build", str(ns), env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    assert f"but {lock} pins the signer {gpg_keys.rogue.fingerprint}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    lock.write_text(good.replace(f'name = "{stage.name}"', 'name = "stage3-bogus.tar.xz"'))
    done = identity.cf("build", str(ns), env=env, timeout=300)
    assert done.returncode == 1 and "its name is" in done.stderr and "stage3-bogus.tar.xz" in done.stderr

    lock.write_text(good)  # and the lock as `lock` wrote it: running `lock` again changes nothing
    again = identity.cf("lock", str(ns), env=env)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stderr and lock.read_text() == good


def test_lock_again_keeps_the_pinned_release_and_update_takes_the_new_one(
    identity, workdir, mirror_tree, mirror_server, gpg_keys
):
    tarball = make_tar(stage_members(), "xz")
    mirror_tree.publish_stage(tarball, STAMP)
    ns, lock, env = _locked(identity, workdir, mirror_server.url, gpg_keys.good.public_file)
    text = lock.read_text()
    assert f'release = "{STAMP}"' in text

    again = identity.cf("lock", str(ns), env=env)
    assert again.returncode == 0 and "unchanged" in again.stderr and lock.read_text() == text

    mirror_tree.publish_stage(tarball, STAMP2)  # "latest" moves on
    kept = identity.cf("lock", str(ns), env=env)
    assert kept.returncode == 0 and "unchanged" in kept.stderr and lock.read_text() == text
    updated = identity.cf("lock", str(ns), "--update", env=env)
    assert updated.returncode == 0, updated.stderr
    assert f"[stage3] release {STAMP} -> {STAMP2}" in updated.stderr
    assert f'release = "{STAMP2}"' in lock.read_text()

    lock.write_text("garbage = [")  # a lock that cannot be read: --update replaces it
    assert identity.cf("lock", str(ns), env=env).returncode == 2
    replaced = identity.cf("lock", str(ns), "--update", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert f'release = "{STAMP2}"' in lock.read_text()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('arch = "../amd64"', "is not a Gentoo arch"),
        ('variant = "openrc/../../x"', "is not a stage3 variant"),
        ('date = "20240101T170000Z;id"', "is not a release stamp"),
        ('mirror = "https://mirror.example/gentoo?x=../../"', "must be a plain URL"),
        ('mirror = "https:///gentoo"', "names no host"),
    ],
)
def test_spec_values_that_become_urls_are_checked_where_they_enter(tmp_path, spec, message):
    from chrootforge.spec.namespace import load_namespace

    ns = tmp_path / "ns"
    (ns / "repo" / "profiles").mkdir(parents=True)
    (ns / "chrootforge.toml").write_text(f'name = "t"\n[stage3]\n{spec}\n[tree]\npath = "repo"\n')
    with pytest.raises(UsageError, match=re.escape(message)) as err:
        load_namespace(ns)
    assert str(err.value).startswith(f"{ns / 'chrootforge.toml'}:3: ")


def test_a_mirror_from_the_command_line_or_the_environment_is_checked_too(monkeypatch):
    from chrootforge.sources.mirrors import resolve_mirrors

    with pytest.raises(UsageError, match="must be a plain URL"):
        resolve_mirrors(["https://mirror.example/gentoo#x"])
    monkeypatch.setenv("GENTOO_MIRRORS", "https://mirror.example/g?y=1")
    with pytest.raises(UsageError, match="must be a plain URL"):
        resolve_mirrors(None)


def test_a_stage_ref_checks_itself_whatever_made_it():
    from chrootforge.sources.mirrorlayout import StageRef

    for stamp, name in (
        ("../x", f"stage3-amd64-openrc-{STAMP}.tar.xz"),
        (STAMP, "../../x.tar.xz"),
        (STAMP, f"stage3-amd64-openrc-{STAMP2}.tar.xz"),
    ):
        with pytest.raises(UsageError):
            StageRef("amd64", stamp, name)
    with pytest.raises(UsageError):
        StageRef("../amd64", STAMP, f"stage3-amd64-openrc-{STAMP}.tar.xz")


def test_no_cache_name_from_a_mirror_leaves_the_cache(tmp_path):
    """The source cache confines every name it writes (a .asc, a .DIGESTS, a blob)."""
    from chrootforge.rootpath import PathRefused
    from chrootforge.sources.cache import SourceCache

    cache = SourceCache(shared_dir("confine."))
    try:
        for name in ("../x.asc", "a/b", "..", ".hold"):
            with pytest.raises(PathRefused):
                cache.file_in(cache.root, name)
    finally:
        shutil.rmtree(cache.root, ignore_errors=True)
