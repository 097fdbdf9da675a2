"""`chrootforge vm run` refuses bad input and a missing QEMU with one clear line (no guest boots)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.vm import vm_env


def test_bad_input_is_one_line(identity, tmp_path):
    cases = [
        (["vm", "run", "--"], "no command given", 2),
        (["vm", "run", "--share", "/nonexistent-dir:/mnt/x", "--", "true"], "is not a directory", 2),
        (["vm", "run", "--share", f"{Path.cwd()}:/proc/x:ro", "--", "true"], "is the guest's own", 2),
        (["vm", "run", "--memory", "lots", "--", "true"], "is not a size", 2),
        (["vm", "run", "--memory", "100M", "--", "true"], "at least 256M", 2),
        (["vm", "run", "--env", "1A=b", "--", "true"], "expected NAME=VALUE", 2),
        (["vm", "run", "--timeout", "0", "--", "true"], "more than 0 seconds", 2),
    ]
    for argv, text, code in cases:
        proc = identity.cf(*argv, env=vm_env())
        assert proc.returncode == code and text in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_missing_qemu_says_what_to_install(identity, tmp_path):
    proc = identity.cf("vm", "run", "--", "true", env=vm_env({"PATH": "/nonexistent"}))
    assert proc.returncode == 1
    assert (
        "qemu-system-x86_64 is not installed" in proc.stderr
        and "apt-get install qemu-system-x86" in proc.stderr
    )
