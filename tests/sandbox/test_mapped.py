"""run_mapped / remove_tree (host filesystem, full map) and blocked-namespace diagnosis."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    from chrootforge.sandbox import run_mapped
    base = sys.argv[1]
    code = run_mapped(["/bin/sh", "-c",
        "id -u; pwd; echo $MARK; mkdir d; touch d/f; chown -R 250:250 d; chmod 755 .; chown 1000 .; "
        "cat /proc/self/uid_map | wc -l; exit 5"], cwd=base, env={"PATH": "/usr/bin:/bin",
        "MARK": "marked"})
    print("code", code)
""")


def test_run_mapped_owners_cwd_env_status(scratch, identity):
    base = scratch(identity, "mapped.")
    from tests.helpers.rootfs import remove_as

    try:
        result = identity.run([*identity.python, "-c", SCRIPT, str(base)])
        assert result.returncode == 0, result.stderr
        lines = result.stdout.split()
        assert lines[:3] == ["0", str(base), "marked"]
        assert lines[-2:] == ["code", "5"]
        st = os.stat(base / "d/f")
        if identity.is_root:  # root's namespace is an unprivileged range: id N is host start+N
            from chrootforge.sandbox import detect_idmap

            start = detect_idmap().host_uid
            assert start != 0 and (st.st_uid, st.st_gid) == (start + 250, start + 250)
            assert os.stat(base).st_uid == start + 1000
        else:
            start = next(
                int(line.split(":")[1])
                for line in Path("/etc/subuid").read_text().splitlines()
                if line.startswith("cftest:")
            )
            assert st.st_uid == start + 249
            assert os.stat(base).st_uid == start + 999
            # the user itself can no longer delete it...
            plain = identity.run(["rm", "-rf", str(base / "d")])
            assert plain.returncode != 0 and (base / "d/f").exists()
        # ...but remove_tree, under the same mapping, can
        code = "import sys; from chrootforge.sandbox import remove_tree; remove_tree(sys.argv[1])"
        gone = identity.run([*identity.python, "-c", code, str(base)])
        assert gone.returncode == 0, gone.stderr
        assert not base.exists()
    finally:
        if base.exists():
            remove_as(identity, base)


def test_run_mapped_signal_status_and_missing_command(identity):
    script = (
        "from chrootforge.sandbox import run_mapped\n"
        "print(run_mapped(['/bin/sh', '-c', 'kill -TERM $$']))\n"
        "print(run_mapped(['/no/such/tool']))\n"
    )
    result = identity.run([*identity.python, "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["143", "127"]
    assert "cannot run /no/such/tool" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_blocked_user_namespaces_are_explained(identity, busybox_rootfs):
    """max_user_namespaces=0 (set in an outer namespace, so the host is untouched)."""
    argv = [
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
        "sh",
        *identity.cf_argv("run", "--single-id", str(busybox_rootfs), "--", "/bin/true"),
    ]
    result = identity.run(argv)
    assert result.returncode == 1, result.stderr
    assert "cannot create a user namespace" in result.stderr
    assert "user.max_user_namespaces=0" in result.stderr
    assert "hint: sudo sysctl -w user.max_user_namespaces=" in result.stderr
    assert "Traceback" not in result.stderr


def test_pyroute2_fallback_brings_lo_up(identity):
    """The netlink path (used when the SIOCSIFFLAGS ioctl is refused) in a fresh net namespace."""
    code = (
        "from chrootforge.sandbox.network import _lo_up_pyroute2 as up; up(); "
        "import subprocess; print(subprocess.run(['ip', '-o', 'link', 'show', 'lo'], "
        "capture_output=True, text=True, check=True).stdout)"
    )
    result = identity.run(["unshare", "--user", "--map-root-user", "--net", *identity.python, "-c", code])
    assert result.returncode == 0, result.stderr
    assert "<LOOPBACK,UP" in result.stdout
    before = identity.run(["unshare", "--user", "--map-root-user", "--net", "ip", "-o", "link", "show", "lo"])
    assert "<LOOPBACK>" in before.stdout  # a fresh namespace starts with lo down


CALL = textwrap.dedent("""
    import os
    from chrootforge.sandbox import call_mapped
    print(call_mapped(None, os.getuid), call_mapped(None, int, "12", base=8))
    try:
        call_mapped(None, int, "twelve")
    except ValueError as err:
        print("raised", type(err).__name__)
""")


def test_call_mapped_result_and_exception(identity):
    """func runs as id 0 of the namespace; its result comes back, and its exception is raised."""
    result = identity.run([*identity.python, "-c", CALL])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "10", "raised", "ValueError"]


TYPED = textwrap.dedent("""
    from chrootforge.sandbox.mapped import call_mapped

    def work(path: str, count: int = 1) -> int:
        return count

    good: int = call_mapped(None, work, "p", count=2)
    wrong_result: str = call_mapped(None, work, "p")
    call_mapped(None, work, 3)
    call_mapped(None, work, "p", cuont=2)
    call_mapped(None, work)
""")


def test_mypy_checks_call_mapped_arguments_against_func(tmp_path):
    """call_mapped's ParamSpec signature: a mistyped, misnamed or missing argument, or a wrong use
    of the result, is a mypy error at the call."""
    import subprocess
    import sys

    source = tmp_path / "calls.py"
    source.write_text(TYPED)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache")]
        + ["--no-error-summary", "--hide-error-context", str(source)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = {int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line}
    assert lines == {8, 9, 10, 11}, result.stdout
