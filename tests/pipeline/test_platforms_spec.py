"""[build] platforms: validation, the per-platform views of a namespace (stage3 arch, profile,
${VAR_<ARCH>}), keys that include the platform, and the lock's stage per arch. Pure: no builds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chrootforge import lockfile
from chrootforge.errors import UsageError
from chrootforge.gentoo import inputs as inp
from chrootforge.platforms import host_platform, parse_platform
from chrootforge.spec.namespace import load_namespace, platform_profile

TWO = """\
name = "t"
[stage3]
path = "${STAGE}"
[tree]
path = "repo"
profile = "default/linux/amd64/23.0"
[build]
platforms = ["linux/amd64", "linux/arm64"]
"""


@pytest.fixture
def two(ns, monkeypatch):
    for arch in ("amd64", "arm64"):
        (ns.root / "repo" / "profiles" / "default" / "linux" / arch / "23.0").mkdir(parents=True)
    ns.write("chrootforge.toml", TWO)
    monkeypatch.setenv("STAGE", "/stages/stage3-amd64-openrc-20240101T000000Z.tar.xz")
    return ns


def _err(func, *args) -> UsageError:
    with pytest.raises(UsageError) as info:
        func(*args)
    return info.value


def test_default_is_this_machines_platform(ns):
    loaded = load_namespace(ns.root)
    assert loaded.platforms == (host_platform(),) and loaded.platform == host_platform()
    assert loaded.stage3.arch == host_platform().arch.gentoo


def test_each_platform_has_its_view(two, monkeypatch):
    first = load_namespace(two.root)
    assert [str(p) for p in first.platforms] == ["linux/amd64", "linux/arm64"]
    assert (str(first.platform), first.stage3.arch, first.tree.profile) == (
        "linux/amd64",
        "amd64",
        "default/linux/amd64/23.0",
    )
    assert first.stage3.path == Path("/stages/stage3-amd64-openrc-20240101T000000Z.tar.xz")
    arm = load_namespace(two.root, parse_platform("linux/arm64"))
    assert (arm.stage3.arch, arm.tree.profile) == ("arm64", "default/linux/arm64/23.0")
    # without $STAGE_ARM64, ${STAGE} is $STAGE (identify() then refuses the amd64 stage)
    assert arm.stage3.path == first.stage3.path
    monkeypatch.setenv("STAGE_ARM64", "/stages/stage3-arm64-openrc-20240101T000000Z.tar.xz")
    arm = load_namespace(two.root, parse_platform("linux/arm64"))
    assert arm.stage3.path == Path("/stages/stage3-arm64-openrc-20240101T000000Z.tar.xz")
    assert load_namespace(two.root).stage3.path == first.stage3.path  # amd64 keeps $STAGE


def test_an_unset_variable_names_both(two, monkeypatch):
    monkeypatch.delenv("STAGE")
    err = _err(load_namespace, two.root, parse_platform("linux/arm64"))
    assert "${STAGE} is not set in the environment (nor ${STAGE_ARM64})" in str(err)
    assert f"{two.root / 'chrootforge.toml'}:3:" in str(err)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["linux/sparc"]', "'platforms': platform 'linux/sparc': unknown architecture 'sparc'"),
        ('["linux/amd64", "amd64"]', "'platforms' names linux/amd64 twice"),
        ("[]", "'platforms' is empty"),
        ('"linux/arm64/v9"', "arm64 has no variant 'v9'"),
        ("3", "'platforms' must be a list of strings"),
    ],
)
def test_bad_platforms_point_at_their_line(two, value, message):
    two.write("chrootforge.toml", TWO.replace('["linux/amd64", "linux/arm64"]', value))
    err = _err(load_namespace, two.root)
    assert f"{two.root / 'chrootforge.toml'}:8:" in str(err) and message in str(err), str(err)


def test_stage3_arch_and_platforms(two):
    text = TWO.replace("[stage3]\n", '[stage3]\narch = "arm64"\n')
    two.write("chrootforge.toml", text)
    err = _err(load_namespace, two.root)
    assert "[stage3] arch = 'arm64' pins one architecture" in str(err) and "remove [stage3] arch" in (
        err.hint or ""
    )
    # alone, [stage3] arch chooses the platform (what a namespace said before platforms existed)
    two.write("chrootforge.toml", text.replace('[build]\nplatforms = ["linux/amd64", "linux/arm64"]\n', ""))
    assert [str(p) for p in load_namespace(two.root).platforms] == ["linux/arm64"]
    two.write("chrootforge.toml", text.replace('"linux/amd64", "linux/arm64"', '"linux/arm64"'))
    assert load_namespace(two.root).stage3.arch == "arm64"


def test_a_missing_profile_for_a_platform_is_a_spec_error(two):
    (two.root / "repo/profiles/default/linux/arm64/23.0").rmdir()
    err = _err(load_namespace, two.root, parse_platform("linux/arm64"))
    assert f"{two.root / 'chrootforge.toml'}:6:" in str(err)
    assert "linux/arm64 needs the profile default/linux/arm64/23.0" in str(err)


def test_each_arch_has_its_stage3_on_the_mirror(two):
    from chrootforge.sources.mirrorlayout import dated_stage, latest_relpath

    arm = load_namespace(two.root, parse_platform("linux/arm64"))
    stamp = "20240101T000000Z"
    ref = dated_stage(arm.stage3.arch, arm.stage3.variant, stamp)
    assert ref.relpath == f"releases/arm64/autobuilds/{stamp}/stage3-arm64-openrc-{stamp}.tar.xz"
    assert latest_relpath("arm64", "openrc") == "releases/arm64/autobuilds/latest-stage3-arm64-openrc.txt"
    armv7 = parse_platform("linux/arm/v7").arch.gentoo
    assert latest_relpath(armv7, "openrc") == "releases/arm/autobuilds/latest-stage3-armv7a_hardfp-openrc.txt"


def test_profile_substitution():
    arm = parse_platform("linux/arm/v7")
    assert (
        platform_profile("default/linux/amd64/23.0/no-multilib", arm) == "default/linux/arm/23.0/no-multilib"
    )
    assert platform_profile("default/linux/arm64", parse_platform("amd64")) == "default/linux/amd64"
    assert platform_profile("my/own/profile", arm) == "my/own/profile"  # no arch named: as written
    assert platform_profile(None, arm) is None


def test_a_stage_of_another_arch_is_refused(two, monkeypatch, tmp_path):
    stage = tmp_path / "stage3-amd64-openrc-20240101T000000Z.tar.xz"
    stage.write_bytes(b"x")
    monkeypatch.setenv("STAGE", str(stage))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    arm = load_namespace(two.root, parse_platform("linux/arm64"))
    err = _err(inp.identify, arm)
    assert (
        "stage3 stage3-amd64-openrc-20240101T000000Z.tar.xz is a stage for amd64, but the build is for linux/arm64"
        in str(err)
    )
    assert "${VAR_ARM64}" in (err.hint or "")


def test_keys_include_the_platform(two, monkeypatch, tmp_path):
    from chrootforge.build.engine import image_key
    from chrootforge.spec.model import Project

    ns_amd = load_namespace(two.root)
    ns_arm = dataclasses.replace(ns_amd, platform=parse_platform("linux/arm64"))
    fake = inp.Inputs("stage:ab", "tree:cd", None)
    assert inp.binpkg_key(ns_amd, fake) != inp.binpkg_key(ns_arm, fake)
    image = two.image("a", 'parent = "scratch"\n')
    from chrootforge.spec.image import load_image

    assert image.exists()
    keys = set()
    for view in (ns_amd, ns_arm):
        project = Project(view, {"a": load_image(view, "a")})
        keys.add(image_key(project, "a", "", fake))
    assert len(keys) == 2


def test_lock_keeps_a_stage_per_arch(tmp_path):
    lock = lockfile.Lock(
        lockfile.LockedStage(
            "stage3-amd64-openrc-20240101T000000Z.tar.xz", "ab" * 64, "F" * 40, "20240101T000000Z", "amd64"
        ),
        lockfile.LockedTree(id="sha256:" + "0" * 64),
        more_stages=(
            lockfile.LockedStage(
                "stage3-arm64-openrc-20240101T000000Z.tar.xz",
                "cd" * 64,
                "F" * 40,
                "20240101T000000Z",
                "arm64",
            ),
        ),
    )
    text = lockfile.render(lock, "t")
    assert "[stage3.arm64]" in text
    back = lockfile.parse(text, tmp_path / "chrootforge.lock")
    assert back == lock
    assert back.stage_for("arm64").sha512 == "cd" * 64 and back.stage_for("riscv") is None
    # a lock from before platforms: its one stage serves whatever arch the namespace has
    old = lockfile.parse(
        text.split("[stage3.arm64]")[0].replace('arch = "amd64"\n', "")
        + f'[tree]\nid = "sha256:{"0" * 64}"\n',
        tmp_path,
    )
    assert old.stage_for("arm64") is old.stage3


def test_lock_checks_each_arch_table_and_reports_its_changes(tmp_path):
    stage = lockfile.LockedStage(
        "stage3-amd64-openrc-20240101T000000Z.tar.xz", "ab" * 64, "F" * 40, "20240101T000000Z", "amd64"
    )
    arm = lockfile.LockedStage(
        "stage3-arm64-openrc-20240101T000000Z.tar.xz", "cd" * 64, "F" * 40, "20240101T000000Z", "arm64"
    )
    one = lockfile.Lock(stage, lockfile.LockedTree(id="sha256:" + "0" * 64))
    two = dataclasses.replace(one, more_stages=(arm,))
    text = lockfile.render(two, "t")
    path = tmp_path / "chrootforge.lock"
    # a further arch's table is checked as [stage3] is, and the error names its line
    bad = text.replace('sha512 = "' + "cd" * 64, 'sha512 = "' + "cd" * 63)
    with pytest.raises(UsageError) as err:
        lockfile.parse(bad, path)
    line = bad.splitlines().index('sha512 = "' + "cd" * 63 + '"') + 1
    assert f"{path}:{line}: [stage3.arm64] sha512 is wrong" in str(err.value)
    with pytest.raises(UsageError, match=r"\[stage3\.ARM\] is wrong"):
        lockfile.parse(text.replace("[stage3.arm64]", "[stage3.ARM]"), path)
    with pytest.raises(UsageError, match=r"\[stage3\.arm64\] name is wrong"):
        lockfile.parse(text.replace("stage3-arm64-openrc-20240101T000000Z", "stage3-arm64-openrc-2024"), path)
    assert lockfile.changes(one, two) == ["[stage3.arm64] written"]
    assert lockfile.changes(two, one) == ["[stage3.arm64] removed"]


def test_plan_and_graph_have_every_platforms_view(two, monkeypatch, tmp_path):
    """--plan and --plan --json load the namespace once per platform: each view's stage3, profile,
    emulation and build key."""
    from chrootforge.build import engine as build
    from chrootforge.build import plangraph as buildplan

    stages = {}
    for arch in ("amd64", "arm64"):
        stages[arch] = tmp_path / f"stage3-{arch}-openrc-20240101T000000Z.tar.xz"
        stages[arch].write_bytes(arch.encode())
    monkeypatch.setenv("STAGE", str(stages["amd64"]))
    monkeypatch.setenv("STAGE_ARM64", str(stages["arm64"]))
    two.image("a", 'parent = "scratch"\n')
    layout = str(tmp_path / "layout")
    text = build.plan([str(two.root)], layout)
    assert (
        "platform: linux/amd64 (this machine's CPU), stage3 amd64, profile default/linux/amd64/23.0" in text
    )
    assert "platform: linux/arm64 (every step under QEMU's qemu-aarch64-static" in text
    assert "stage3 arm64, profile default/linux/arm64/23.0" in text
    doc = buildplan.graph([str(two.root)], layout)
    assert doc["platform"] == "linux/amd64" and doc["platforms"] == ["linux/amd64", "linux/arm64"]
    [image] = doc["images"]
    keys = {p["platform"]: p["key"] for p in image["platforms"]}
    assert list(keys) == ["linux/amd64", "linux/arm64"] and image["key"] == keys["linux/amd64"]
    assert doc["keys"] == "complete" and len(set(keys.values())) == 2
