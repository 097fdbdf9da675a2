"""Platforms and binfmt_misc registrations as pure values (no privileges, no namespaces)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from chrootforge.errors import CfError, UsageError
from chrootforge.platforms import ARCHES, Platform, machine_platform, parse_platform, runs_natively
from chrootforge.sandbox import binfmt, emulation

DEBIAN_CONFS = Path("/usr/lib/binfmt.d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", "linux/arm64"),
        ("arm64", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("LINUX/AMD64", "linux/amd64"),
        ("x86_64", "linux/amd64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("armhf", "linux/arm/v7"),
        ("linux/386", "linux/386"),
        ("x86", "linux/386"),
        ("linux/riscv64", "linux/riscv64"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("linux/s390x", "linux/s390x"),
    ],
)
def test_platforms_parse_and_normalize(text, expected):
    assert str(parse_platform(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("windows/amd64", "linux images only"),
        ("linux/sparc", "unknown architecture 'sparc'"),
        ("linux/arm64/v9", "arm64 has no variant 'v9'"),
        ("linux/amd64/v3", "amd64 has no variant 'v3'"),
        ("linux//arm64", "expected OS/ARCH"),
        ("a/b/c/d", "expected OS/ARCH"),
        ("", "expected OS/ARCH"),
    ],
)
def test_bad_platforms_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_platform(text, "--platform")


def test_platform_fields():
    arm = parse_platform("linux/arm/v7")
    assert arm.oci() == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert parse_platform("linux/arm64").oci() == {"architecture": "arm64", "os": "linux"}
    assert (arm.slug, arm.env_suffix, arm.arch.gentoo, arm.arch.qemu) == (
        "linux-arm-v7",
        "ARM_V7",
        "arm",
        "arm",
    )
    assert parse_platform("arm64").env_suffix == "ARM64"
    assert machine_platform("aarch64") == Platform("linux", "arm64")
    assert machine_platform("armv6l") == Platform("linux", "arm", "v6")
    assert machine_platform("x86_64") == Platform("linux", "amd64")


def test_what_runs_natively():
    amd64 = parse_platform("linux/amd64")
    assert runs_natively(parse_platform("linux/386"), amd64)
    assert runs_natively(amd64, amd64)
    assert not runs_natively(parse_platform("linux/arm64"), amd64)
    assert not runs_natively(amd64, parse_platform("linux/arm64"))


def test_every_arch_has_a_registration():
    assert {a.qemu for a in ARCHES.values()} == set(binfmt.MAGIC)
    for qemu, (magic, mask) in binfmt.MAGIC.items():
        assert len(bytes.fromhex(magic)) == len(bytes.fromhex(mask)) == 20, qemu


def _debian_conf(qemu: str) -> tuple[bytes, bytes] | None:
    path = DEBIAN_CONFS / f"qemu-{qemu}.conf"
    if not path.exists():
        return None
    fields = path.read_text().strip().split(":")
    decode = lambda text: bytes(int(h, 16) for h in text.split("\\x")[1:])  # noqa: E731
    return decode(fields[4]), decode(fields[5])


def test_registrations_are_debians_bytes():
    """Our magic and mask are the ones Debian's qemu-user-static ships (for every arch it has a
    file for on this host: not the host's own)."""
    compared = 0
    for qemu in binfmt.MAGIC:
        debian = _debian_conf(qemu)
        if debian is None:
            continue
        ours = binfmt.registration(qemu)
        assert (ours.magic, ours.mask) == debian, qemu
        compared += 1
    if not compared:
        pytest.fail("no /usr/lib/binfmt.d/qemu-*.conf: install qemu-user-static (scripts/bootstrap)")


def test_registration_line():
    line = binfmt.registration("aarch64", "/usr/bin/qemu-aarch64-static").line()
    assert line == (
        rb":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:"
        rb"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:"
        rb"/usr/bin/qemu-aarch64-static:POCF"
    )
    for bad in ("relative/qemu", "/a:b/qemu", "/a\nb"):
        with pytest.raises(ValueError):
            binfmt.registration("aarch64", bad).line()


def test_each_registration_takes_its_arch_and_no_other():
    for qemu, (magic, mask) in binfmt.MAGIC.items():
        entry = binfmt.HostEntry("x", True, "/e", "F", 0, bytes.fromhex(magic), bytes.fromhex(mask))
        for other in binfmt.MAGIC:
            assert entry.handles(other) == (other == qemu), (qemu, other)


KERNEL_TEXT = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def test_parse_a_kernel_entry_and_choose_a_usable_one():
    entry = binfmt.parse_entry("qemu-aarch64", KERNEL_TEXT)
    assert entry.enabled and entry.flags == "POF" and entry.interpreter.endswith("aarch64-binfmt-P")
    assert entry.handles("aarch64") and not entry.handles("arm")
    assert binfmt.usable_entry([entry], "aarch64") == (entry, "")
    without_f = binfmt.parse_entry("q", KERNEL_TEXT.replace("flags: POF", "flags: PO"))
    found, why = binfmt.usable_entry([without_f], "aarch64")
    assert found is None and "lacks the F flag" in why
    disabled = binfmt.parse_entry("q", KERNEL_TEXT.replace("enabled", "disabled"))
    assert binfmt.usable_entry([disabled], "aarch64")[1] == "the host's registration q is disabled"
    extension = binfmt.parse_entry("exe", "enabled\ninterpreter /usr/bin/wine\nflags: \nextension .exe\n")
    assert not extension.handles("aarch64")
    # an entry that only takes ET_EXEC (no PIE) does not do: most programs are PIE
    exec_only = binfmt.parse_entry("q", KERNEL_TEXT.replace("feffffff\n", "ffffffff\n"))
    assert not exec_only.handles("aarch64")


def test_emulation_plan():
    amd64 = parse_platform("linux/amd64")
    assert emulation.plan(amd64, amd64) is None
    assert emulation.plan(parse_platform("linux/386"), amd64) is None
    plan = emulation.plan(parse_platform("linux/arm64"), amd64)
    assert plan is not None and plan.registration is not None
    assert plan.registration.interpreter == "/usr/bin/qemu-aarch64-static"
    assert os.path.isfile(plan.registration.interpreter)


def test_a_missing_emulator_names_the_package(tmp_path):
    if emulation.host_registration("aarch64")[0] is not None:
        pytest.skip("this host has its own aarch64 registration, which would serve")
    with pytest.raises(CfError) as err:
        emulation.plan(parse_platform("linux/arm64"), parse_platform("linux/amd64"), str(tmp_path))
    assert f"no emulator {tmp_path}/qemu-aarch64-static" in str(err.value)
    assert "apt-get install qemu-user-static" in (err.value.hint or "")
