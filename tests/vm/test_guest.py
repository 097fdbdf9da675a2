"""The QEMU guest for real: the air gap, exit statuses, the blocked-namespace matrix, timeouts and
kills that leave no QEMU behind. Every test boots a real guest (TCG unless KVM's probe passes)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.helpers.identity import REPO, get_identity
from tests.helpers.vm import marker_dir, qemu_processes, vm_env

pytestmark = pytest.mark.slow
BOOT_TIMEOUT = 300


def test_air_gap_ids_and_status(identity, vm_artifacts):
    """Only `lo` exists in the guest; the job runs as the unprivileged user, with the environment and
    working directory asked for; a read-write share reaches the host; the status comes back."""
    out = identity.mkdtemp("vmout.")
    out.chmod(0o777)  # the guest user of root is uid 1000; 9p keeps the host's permissions
    script = (
        'ls /sys/class/net; id -u; id -g; pwd; echo "$GREETING" > /mnt/out/file; test -t 1 || echo no-tty; '
        "echo oops >&2; exit 3"
    )
    proc = identity.cf(
        "vm",
        "run",
        "--share",
        f"{out}:/mnt/out",
        "--env",
        "GREETING=hello there",
        "--cwd",
        "/tmp",
        "--",
        "sh",
        "-c",
        script,
        env=vm_env(),
        timeout=BOOT_TIMEOUT,
    )
    assert proc.returncode == 3, proc.stderr
    uid, gid = (1000, 1000) if identity.is_root else (identity.uid, identity.gid)
    assert proc.stdout.splitlines() == ["lo", str(uid), str(gid), "/tmp", "no-tty"]
    assert "oops" in proc.stderr
    written = out / "file"
    assert written.read_text() == "hello there\n"
    # QEMU writes as the caller; as root, it also gives new files the guest user's ids
    assert (written.stat().st_uid, written.stat().st_gid) == (uid, gid)


MATRIX = r"""
as_user() { setpriv --reuid=cf --regid=cf --init-groups -- "$@"; }
case_run() {
    echo "== $1"; shift
    as_user "$@" 2>&1
    echo "rc=$?"
}
cd /tmp
PROBE="from chrootforge.sandbox.blocked import probe_userns; print('probe', probe_userns())"
case_run control python3 -c "$PROBE"
old=$(sysctl -n user.max_user_namespaces)
sysctl -q -w user.max_user_namespaces=0
case_run max_user_namespaces python3 -m chrootforge run /tmp -- true
sysctl -q -w user.max_user_namespaces="$old"
sysctl -q -w kernel.unprivileged_userns_clone=0
case_run unprivileged_userns_clone python3 -m chrootforge run /tmp -- true
sysctl -q -w kernel.unprivileged_userns_clone=1
case_run seccomp python3 /mnt/helpers/seccomp.py python3 -m chrootforge run /tmp -- true
case_run after python3 -c "$PROBE"
"""


def parse_cases(text: str) -> dict[str, tuple[str, int]]:
    cases = {}
    for block in text.split("== ")[1:]:
        name, _, rest = block.partition("\n")
        body, _, code = rest.rpartition("rc=")
        cases[name.strip()] = (body, int(code.split()[0]))
    return cases


def test_blocked_namespace_matrix_in_one_boot(vm_artifacts):
    """Each way of blocking user namespaces gives chrootforge's matching diagnosis and exit status."""
    user = get_identity("user")
    helpers = f"{REPO / 'tests' / 'helpers'}:/mnt/helpers:ro"
    proc = user.cf(
        "vm",
        "run",
        "--root",
        "--share",
        helpers,
        "--",
        "sh",
        "-c",
        MATRIX,
        env=vm_env(),
        timeout=BOOT_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    cases = parse_cases(proc.stdout)
    assert cases["control"] == ("probe None\n", 0) and cases["after"] == ("probe None\n", 0)
    expected = {
        "max_user_namespaces": "user namespaces are disabled or exhausted (user.max_user_namespaces=0)",
        "unprivileged_userns_clone": "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)",
        "seccomp": "a seccomp filter refuses unshare",
    }
    for name, cause in expected.items():
        text, code = cases[name]
        assert code == 1, (name, text)
        assert text.startswith("chrootforge: error: cannot create a user namespace: ") and cause in text, (
            name,
            text,
        )
        assert "--vm on" in text and "Traceback" not in text, (name, text)


def test_timeout_is_a_clear_error_and_leaves_no_qemu(identity, vm_artifacts):
    marker = marker_dir(identity)
    proc = identity.cf(
        "vm",
        "run",
        "--timeout",
        "20",
        "--share",
        f"{marker}:/mnt/marker:ro",
        "--",
        "sleep",
        "600",
        env=vm_env(),
        timeout=BOOT_TIMEOUT,
    )
    assert proc.returncode == 1
    assert (
        "chrootforge: error: the guest reported no status: sleep 600 was still running after 20s"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert qemu_processes(str(marker)) == []


def test_guest_panic_is_a_clear_error(vm_artifacts):
    user = get_identity("user")
    proc = user.cf(
        "vm",
        "run",
        "--root",
        "--",
        "sh",
        "-c",
        "echo c > /proc/sysrq-trigger; sleep 60",
        env=vm_env(),
        timeout=BOOT_TIMEOUT,
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        "chrootforge: error: the guest reported no status: its kernel panicked (not syncing: sysrq "
        "triggered crash) while running sh -c"
    ) in proc.stderr
    assert "Kernel Offset" in proc.stderr and "Traceback" not in proc.stderr  # the console's tail is shown


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_chrootforge_leaves_no_qemu(sig, vm_artifacts):
    user = get_identity("user")
    marker = marker_dir(user)
    child = user.popen(
        user.cf_argv("vm", "run", "--share", f"{marker}:/mnt/marker:ro", "--", "sleep", "600"),
        env=vm_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not qemu_processes(str(marker)):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "QEMU never started"
            time.sleep(0.2)
        os.kill(child.pid, sig)
        child.wait(timeout=60)
        deadline = time.monotonic() + 15
        while qemu_processes(str(marker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_processes(str(marker)) == []
        if sig != signal.SIGKILL:
            assert child.returncode == 130 and b"interrupted" in child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in qemu_processes(str(marker)):
            os.kill(pid, signal.SIGKILL)


EMULATION = r"""
as_user() { setpriv --reuid=cf --regid=cf --init-groups -- "$@"; }
cd /tmp
RUN="python3 -m chrootforge run --platform linux/arm64 /mnt/root -- /bin/uname -m"
echo "== no emulator in the guest"
cat /proc/sys/fs/binfmt_misc/qemu-aarch64
as_user $RUN 2>&1
echo "rc=$?"
echo "== refused"
cp /cf/emulators/0/qemu-aarch64-static /usr/bin/
as_user $RUN 2>&1
echo "rc=$?"
echo "== none"
echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
as_user $RUN 2>&1
echo "rc=$?"
echo "== no emulator at all"
rm /usr/bin/qemu-aarch64-static
as_user $RUN 2>&1
echo "rc=$?"
"""


def test_emulation_on_a_kernel_before_6_7(vm_artifacts, arm64_rootfs_of):
    """The guest's 6.1 kernel refuses binfmt_misc in a user namespace. With `vm run --binfmt`, the
    guest's root registers the emulator and chrootforge's sandbox in the guest takes that
    registration, saying so; without one, the error names the ways out."""
    user = get_identity("user")
    root = arm64_rootfs_of(user)
    proc = user.cf(
        "vm",
        "run",
        "--root",
        "--binfmt",
        "linux/arm64",
        "--share",
        f"{root}:/mnt/root:ro",
        "--",
        "sh",
        "-c",
        EMULATION,
        env=vm_env(),
        timeout=BOOT_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    cases = parse_cases(proc.stdout)
    text, code = cases["no emulator in the guest"]
    assert code == 0, text
    assert "interpreter /cf/emulators/0/qemu-aarch64-static\nflags: POCF\n" in text
    lines = text.splitlines()
    assert "aarch64" in lines
    assert (
        "chrootforge: notice: running linux/arm64 programs with the host's binfmt_misc registration "
        "qemu-aarch64 (no /usr/bin/qemu-aarch64-static here)"
    ) in lines, text
    text, code = cases["refused"]
    assert code == 0, text
    assert sorted(text.splitlines()) == [
        "aarch64",
        "chrootforge: notice: this kernel does not let a user namespace mount binfmt_misc "
        "(Operation not permitted); running linux/arm64 programs with the host's registration "
        "qemu-aarch64 (/cf/emulators/0/qemu-aarch64-static)",
    ], text
    text, code = cases["none"]
    assert code == 1, text
    assert text.startswith(
        "chrootforge: error: cannot run linux/arm64 programs: this kernel does not let a user "
        "namespace mount binfmt_misc (Operation not permitted), and the host has no registration "
        "for aarch64 with the F flag\n"
    ), text
    assert "--vm on" in text and "Traceback" not in text
    text, code = cases["no emulator at all"]
    assert code == 1, text
    assert text == (
        "chrootforge: error: cannot run linux/arm64 programs on this amd64 machine: no emulator "
        "/usr/bin/qemu-aarch64-static\n  hint: install QEMU's static emulators: apt-get install "
        "qemu-user-static (Debian, Ubuntu; dnf install qemu-user-static on Fedora)\n"
    ), text
