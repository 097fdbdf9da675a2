"""Bad input to `chrootforge run`/`shell`: one clear message, exit 2, no traceback, nothing run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _clean(result, code: int = 2, *needles: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_rootfs_missing_or_not_a_directory(scratch, identity):
    base = scratch(identity, "bad.")
    _clean(identity.cf("run", str(base / "nope"), "--", "/bin/true"), 2, "does not exist")
    (base / "file").write_text("")
    _clean(identity.cf("run", str(base / "file"), "--", "/bin/true"), 2, "not a directory")
    _clean(identity.cf("shell", str(base / "nope")), 2, "does not exist")


@pytest.mark.parametrize(
    "bind, needle",
    [
        ("{src}:../escape", "absolute path"),
        ("{src}:/a/../../escape", "escapes the root"),
        ("{src}", "malformed --bind"),
        ("{src}:/x:rx", "malformed --bind"),
        ("{src}/missing:/x", "does not exist"),
    ],
)
def test_bad_binds(scratch, identity, busybox_rootfs, bind, needle):
    src = scratch(identity, "src.")
    marker = src / "ran"
    result = identity.cf(
        "run", str(busybox_rootfs), "--bind", bind.format(src=src), "--", "/bin/touch", "/ran"
    )
    _clean(result, 2, needle)
    assert not marker.exists() and not (busybox_rootfs / "ran").exists()


def test_other_bad_options(identity, busybox_rootfs):
    root = str(busybox_rootfs)
    _clean(identity.cf("run", root, "--tmpfs", "/x:huge", "--", "/bin/true"), 2, "bad size")
    _clean(identity.cf("run", root, "--env", "NOVALUE", "--", "/bin/true"), 2, "--env")
    for bad in ("A\nB=1", "A\n=1", "MY VAR=1"):
        result = identity.cf("run", root, "--env", bad, "--", "/bin/true")
        _clean(result, 2, "--env: environment variable name")
        assert len(result.stderr.splitlines()) == 2  # the error and its hint, each one line
    _clean(identity.cf("run", root, "--repo", "gentoo", "--", "/bin/true"), 2, "--repo")
    _clean(identity.cf("run", root, "--"), 2, "no command")
    _clean(identity.cf("run", root, "--network", "bridge", "--", "/bin/true"), 2, "invalid choice")


def test_missing_subuid_entry_names_the_fix(scratch, root_identity):
    """A user without an /etc/subuid range (nobody here) gets the exact line to add."""
    import shutil

    base = scratch(root_identity, "nobody.")
    os.chmod(base, 0o755)
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "tmp").mkdir()
    shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("sh", "id", "ls", "chown", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "portage-file").write_text("x")
    os.chown(rootfs / "portage-file", 250, 250)
    for path in (rootfs, rootfs / "bin", rootfs / "tmp"):
        os.chown(path, 65534, 65534)
    env = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/", f"PYTHONPATH={_user_pythonpath()}"]
    prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        *env,
        "/usr/bin/python3",
        "-m",
        "chrootforge",
        "run",
        str(rootfs),
    ]
    try:
        result = subprocess.run(
            [*prefix, "--", "/bin/true"], capture_output=True, text=True, timeout=60, check=False
        )
        from chrootforge.sandbox.idmap import free_range_start

        start = free_range_start(Path("/etc/subuid").read_text())
        _clean(
            result,
            2,
            "no range for nobody in /etc/subuid",
            f'echo "nobody:{start}:65536" >> /etc/subuid',
            "--single-id",
        )
        # the announced degraded mode works without any range
        script = "id -u; ls -ln /portage-file; chown 250 /tmp 2>&1; echo $?"
        result = subprocess.run(
            [*prefix, "--single-id", "--", "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "single-id mode" in result.stderr
        out = result.stdout.splitlines()
        assert out[0] == "0"
        assert out[1].split()[2:4] == ["65534", "65534"]  # 250 is not mapped: shows as nobody
        assert out[-1] != "0"  # and nothing can be chowned to it
    finally:
        shutil.rmtree(base)


def _user_pythonpath() -> str:
    from tests.helpers.identity import get_identity

    return get_identity("user").env["PYTHONPATH"]


def test_unreadable_rootfs_is_a_clean_error(scratch, user_identity, root_identity):
    private = scratch(root_identity, "private.")
    private.chmod(0o700)
    result = user_identity.cf("run", str(private / "rootfs"), "--", "/bin/true")
    _clean(result, 2, "cannot access")
