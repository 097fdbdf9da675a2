"""Foreign-arch programs in the real sandbox: its own binfmt_misc, as root and rootless.

Every test here (and in the suite) also checks that the host's binfmt_misc is unchanged
(tests/helpers/binfmt.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.identity import REPO

SECCOMP = REPO / "tests" / "helpers" / "seccomp.py"
HOST_BUSYBOX = "/bin/busybox"


def test_run_platform_arm64(identity, arm64_rootfs):
    """arm64 busybox runs; the sandbox shows its own binfmt_misc with our registration; a user
    namespace the payload makes below its own (as portage's sandboxes do) inherits it."""
    script = (
        "uname -m; cat /proc/sys/fs/binfmt_misc/qemu-aarch64; echo argv0=$0;"
        " /host/busybox unshare -U -r /bin/busybox uname -m"
    )
    proc = identity.cf(
        "run",
        "--platform",
        "linux/arm64",
        "--bind",
        f"{Path(HOST_BUSYBOX).parent}:/host:ro",
        str(arm64_rootfs),
        "--",
        "/bin/sh",
        "-c",
        script,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "aarch64"
    assert "enabled" in lines and "interpreter /usr/bin/qemu-aarch64-static" in lines
    assert "flags: POCF" in lines
    assert "argv0=/bin/sh" in lines  # P: the program sees the argv[0] it was started with
    assert lines[-1] == "aarch64"  # from a user namespace nested below the payload's
    assert proc.stderr == ""  # no notice: our own registration, no fallback


def test_the_host_cpu_does_not_need_it(identity, busybox_rootfs):
    proc = identity.cf(
        "run", "--platform", "linux/amd64", str(busybox_rootfs), "--", "/bin/sh", "-c", "uname -m"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "x86_64\n"


def test_without_platform_the_hint_names_it(user_identity, arm64_rootfs):
    proc = user_identity.cf("run", str(arm64_rootfs), "--", "/bin/uname", "-m")
    assert proc.returncode == 126
    assert "Exec format error" in proc.stderr and "--platform linux/arm64" in proc.stderr


def test_bad_platform_is_a_usage_error(user_identity, arm64_rootfs):
    proc = user_identity.cf("run", "--platform", "linux/sparc", str(arm64_rootfs), "--", "/bin/true")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "chrootforge: error: --platform 'linux/sparc': unknown architecture 'sparc'"
    )


def test_a_kernel_that_refuses_gives_the_ways_out(identity, arm64_rootfs):
    """A seccomp filter answers fsopen with EPERM, as a kernel before 6.7 answers a user namespace
    asking for binfmt_misc. This host has no registration of its own: one error, with the remedies.
    Rootless runs --single-id: under a filter (no_new_privs), the set-uid newuidmap cannot work."""
    extra = [] if identity.is_root else ["--single-id"]
    argv = identity.cf_argv("run", *extra, "--platform", "linux/arm64", str(arm64_rootfs), "--", "/bin/uname")
    proc = identity.run([*identity.python, str(SECCOMP), "--fsopen", *argv])
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("chrootforge: error:")]
    assert errors == [
        "chrootforge: error: cannot run linux/arm64 programs: this kernel does not let a user namespace "
        "mount binfmt_misc (Operation not permitted), and the host has no registration for aarch64 "
        "with the F flag"
    ], proc.stderr
    hint = proc.stderr.split("hint: ", 1)[1]
    for way in (
        "Linux >= 6.7",
        "apt-get install qemu-user-static binfmt-support",
        "--vm on",
        "--binfmt linux/arm64",
    ):
        assert way in hint, (way, hint)
    assert "Traceback" not in proc.stderr


FAKE_HOST = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from chrootforge.platforms import parse_platform
    from chrootforge.sandbox import binfmt, emulation, syscalls

    # a binfmt_misc of this (throwaway) user namespace stands in for a host's
    fd = syscalls.detached_mount("binfmt_misc")
    where = f"/proc/self/fd/{fd}"
    def register(reg):
        with open(f"{where}/register", "wb") as handle:
            handle.write(reg.line())
    register(binfmt.registration("aarch64"))
    register(binfmt.Registration("qemu-arm", *[bytes.fromhex(h) for h in binfmt.MAGIC["arm"]],
                                 "/usr/bin/qemu-arm-static", "PO"))
    print(emulation.host_registration("aarch64", where))
    print(emulation.host_registration("arm", where))
    print(emulation.host_registration("riscv64", where))
    amd64 = parse_platform("linux/amd64")
    plan = emulation.plan(parse_platform("linux/arm64"), amd64, sys.argv[2], where)
    print(plan)
    notices = []
    print(emulation.install(plan, notices), notices)
    """
)


def test_a_host_registration_read_from_a_real_binfmt_misc(tmp_path):
    """The host-side reading, against the kernel's own text: an F registration serves (and the plan
    takes it when the emulator is not installed, with a notice), one without F does not."""
    empty = tmp_path / "no-emulators"
    empty.mkdir()
    proc = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            sys.executable,
            "-c",
            FAKE_HOST,
            str(REPO),
            str(empty),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    aarch64, arm, riscv, plan, installed = proc.stdout.splitlines()
    assert aarch64.startswith(
        "(HostEntry(name='qemu-aarch64', enabled=True, interpreter='/usr/bin/qemu-aarch64-static'"
    )
    assert arm == repr(
        (
            None,
            "the host's registration qemu-arm lacks the F flag: its emulator "
            "/usr/bin/qemu-arm-static would have to exist inside the root",
        )
    )
    assert riscv == "(None, '')"
    assert (
        plan
        == "Emulation(platform='linux/arm64', qemu='aarch64', registration=None, host_entry='qemu-aarch64')"
    )
    notice = (
        "running linux/arm64 programs with the host's binfmt_misc registration qemu-aarch64 "
        "(no /usr/bin/qemu-aarch64-static here)"
    )
    assert installed == f"None {[notice]!r}"


def test_run_without_platform_loads_no_emulation(user_identity, busybox_rootfs):
    probe = (
        "import sys\n"
        "from chrootforge.sandbox.cli import handle_words\n"
        f"code = handle_words('run', [{str(busybox_rootfs)!r}, '--', '/bin/true'])\n"
        "print(code, [m for m in ('chrootforge.platforms', 'chrootforge.sandbox.emulation',"
        " 'chrootforge.sandbox.binfmt') if m in sys.modules])\n"
    )
    proc = user_identity.run([*user_identity.python, "-c", probe])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0 []"


@pytest.mark.parametrize("command", ["shell"])
def test_shell_takes_platform_too(command):
    from chrootforge.sandbox.runoptions import parse

    assert parse(command, ["--platform", "linux/arm64", "/root"]).values["platform"] == "linux/arm64"
