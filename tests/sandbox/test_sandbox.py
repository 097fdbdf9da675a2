"""The real sandbox on the busybox rootfs, as real root and as the unprivileged user."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chrootforge.sandbox.config import Bind, SandboxConfig
from chrootforge.sandbox.mountplan import expected_mountpoints, plan_mounts

REPO_ROOT = Path(__file__).resolve().parents[2]


def sh(identity, rootfs, script: str, *options: str, **kwargs):
    return identity.cf("run", str(rootfs), *options, "--", "/bin/sh", "-c", script, **kwargs)


def _host_ids(identity) -> tuple[int, int]:
    """(host uid of id 0, host uid of id 1) for the identity's mapping."""
    if identity.is_root:
        from chrootforge.sandbox.idmap import detect_idmap

        host0 = detect_idmap().host_uid
        return host0, host0 + 1
    for line in Path("/etc/subuid").read_text().splitlines():
        name, start, _count = line.split(":")
        if name == "cftest":
            return identity.uid, int(start)
    raise AssertionError("no subuid range for cftest")


def test_identity_pid1_and_full_map(identity, busybox_rootfs):
    out = identity.mkdtemp("ids.")
    out.chmod(0o777)
    result = sh(
        identity,
        busybox_rootfs,
        "id -u; id -g; echo $PPID; tr '\\0' ' ' </proc/1/cmdline; echo; cat /proc/self/uid_map;"
        " echo --; cat /proc/self/gid_map; touch /out/by-root; chown 250:250 /out/by-root;"
        " touch /out/by-zero",
        "--bind",
        f"{out}:/out",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0" and lines[1] == "0"
    assert lines[2] == "1"  # the payload's parent is our init, PID 1
    assert "python" in lines[3] and "chrootforge" in lines[3]
    cut = lines.index("--")
    for block in (lines[4:cut], lines[cut + 1 :]):
        # the payload's own namespace (the one that locks the mounts) maps ids 0..65535 1:1 onto
        # the sandbox's
        extents = [tuple(int(n) for n in line.split()) for line in block]
        assert all(inside == outside for inside, outside, _ in extents)
        assert sum(count for _, _, count in extents) == 65536 and extents[0][0] == 0
    host0, host1 = _host_ids(identity)
    st = os.stat(out / "by-zero")
    assert (st.st_uid, st.st_gid) == (host0, identity.gid if not identity.is_root else host0)
    st = os.stat(out / "by-root")
    assert (st.st_uid, st.st_gid) == (host1 + 249, host1 + 249)  # id 250 -> the range


def test_owners_are_kept(identity, busybox_rootfs):
    result = sh(identity, busybox_rootfs, "ls -ln /owned")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[-1]: line.split()[2:4] for line in result.stdout.splitlines()[1:]}
    assert rows["portage-file"] == ["250", "250"]
    assert rows["portage-dir"] == ["250", "250"]
    assert rows["user-file"] == ["1000", "1000"]
    assert rows["root-file"] == ["0", "0"]
    # and the host sees them in the identity's range
    _, host1 = _host_ids(identity)
    st = os.stat(busybox_rootfs / "owned/portage-file")
    assert (st.st_uid, st.st_gid) == (host1 + 249, host1 + 249)


def test_readonly_repo_tmpfs_and_mountinfo_match_the_plan(scratch, identity, busybox_rootfs):
    repo = scratch(identity, "repo.")
    (repo / "profiles").mkdir()
    extra = scratch(identity, "extra.")
    script = (
        "touch /var/db/repos/gentoo/new 2>&1; echo rc=$?; ls /var/db/repos/gentoo;"
        " touch /var/tmp/portage/ok && echo tmpfs-writable; touch /mnt/extra/w && echo extra-rw;"
        " echo ===; cat /proc/self/mountinfo"
    )
    result = sh(
        identity,
        busybox_rootfs,
        script,
        "--repo",
        f"gentoo={repo}",
        "--portage-tmpfs",
        "64M",
        "--bind",
        f"{extra}:/mnt/extra",
    )
    assert result.returncode == 0, result.stderr
    head, _, mountinfo = result.stdout.partition("===\n")
    assert "Read-only file system" in head and "rc=1" in head
    assert "profiles" in head
    assert "tmpfs-writable" in head and "extra-rw" in head
    assert not (repo / "new").exists() and (extra / "w").exists()
    mounts = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        sep = fields.index("-")
        mounts.setdefault(fields[4], []).append((fields[5], fields[sep + 1], fields[sep + 3]))
    assert mounts["/var/tmp/portage"][0][1] == "tmpfs"
    assert "size=65536k" in mounts["/var/tmp/portage"][0][2]
    assert mounts["/var/db/repos/gentoo"][0][0].split(",")[0] == "ro"
    assert mounts["/proc"][0][1] == "proc"
    assert mounts["/dev/pts"][0][1] == "devpts"
    # Nothing but the plan: the same config, planned here, names exactly these mount points.
    config = SandboxConfig(
        root=busybox_rootfs,
        argv=["x"],
        repos={"gentoo": repo},
        portage_tmpfs_size="64M",
        binds=[Bind(extra, "/mnt/extra")],
    )
    expected = sorted(expected_mountpoints(plan_mounts(config)))
    seen = sorted(point for point, entries in mounts.items() for _ in entries)
    assert seen == expected


def test_nothing_of_the_host_is_visible(identity, busybox_rootfs):
    result = sh(
        identity,
        busybox_rootfs,
        "ls /; ls /run /dev; test -e /work && echo LEAK; test -e /etc/os-release && echo LEAK2; true",
    )
    assert result.returncode == 0, result.stderr
    assert "LEAK" not in result.stdout
    assert "busybox" not in result.stdout.split()  # / is the rootfs, not the host
    assert set(result.stdout.split()) >= {"bin", "owned", "null", "pts", "shm", "ptmx"}


class _Server:
    """A TCP server on host 127.0.0.1 that counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.sendall(b"hello-from-host\n")
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def host_server():
    server = _Server()
    yield server
    server.close()


def test_hermetic_network_has_only_lo(identity, busybox_rootfs, host_server):
    script = (
        f"cat /proc/net/dev; echo ===; ip link show lo; nc -w 2 127.0.0.1 {host_server.port}"
        " </dev/null; echo nc=$?"
    )
    result = sh(identity, busybox_rootfs, script)
    assert result.returncode == 0, result.stderr
    devs, _, tail = result.stdout.partition("===\n")
    names = [line.split(":")[0].strip() for line in devs.splitlines()[2:]]
    assert names == ["lo"]
    assert "<LOOPBACK,UP" in tail  # lo is up (a build can still talk to itself)
    assert "hello-from-host" not in tail and "nc=0" not in tail
    assert host_server.accepted == 0


def test_host_network_reaches_host_loopback(identity, busybox_rootfs, host_server):
    script = f"nc -w 2 127.0.0.1 {host_server.port} </dev/null; echo nc=$?; cat /etc/resolv.conf"
    result = sh(identity, busybox_rootfs, script, "--network", "host")
    assert result.returncode == 0, result.stderr
    assert "hello-from-host" in result.stdout
    assert host_server.accepted == 1
    if Path("/etc/resolv.conf").exists():
        assert Path("/etc/resolv.conf").read_text().strip() in result.stdout


def test_exit_status_passes_through(identity, busybox_rootfs):
    assert sh(identity, busybox_rootfs, "exit 7").returncode == 7
    assert sh(identity, busybox_rootfs, "exit 0").returncode == 0
    assert sh(identity, busybox_rootfs, "kill -KILL $$").returncode == 128 + signal.SIGKILL
    assert sh(identity, busybox_rootfs, "kill -USR1 $$").returncode == 128 + signal.SIGUSR1
    missing = identity.cf("run", str(busybox_rootfs), "--", "/no/such/command")
    assert missing.returncode == 127 and "cannot run /no/such/command" in missing.stderr
    assert "Traceback" not in missing.stderr


def _imported(identity, *argv: str) -> set[str]:
    result = identity.run([*identity.python, "-X", "importtime", *argv])
    assert result.returncode == 0, result.stderr
    return {
        line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }


def test_run_start_imports_nothing_it_does_not_need(identity, busybox_rootfs):
    """`run`'s start-up is measured against the interpreter's own (bench/bench_sandbox.py): the
    whole run, sandbox included, imports neither typing, dataclasses, inspect nor argparse (unless
    the interpreter's own start does: a .pth file of the test user's site directory may)."""
    imported = _imported(identity, "-m", "chrootforge", "run", str(busybox_rootfs), "--", "/bin/true")
    assert "chrootforge.sandbox.runner" in imported
    own = _imported(identity, "-c", "pass")
    assert (imported - own).isdisjoint({"typing", "dataclasses", "inspect", "argparse"})


def test_reports_keep_every_character_of_a_message(identity, busybox_rootfs):
    """A command name holding the separators the error pipe once used (\x1f, \x1e) is reported
    whole, with its hint, not cut into a message, a stray hint and a record of unknown kind."""
    name = "/no/such\x1fcommand\x1eafter-the-separators"
    missing = identity.cf("run", str(busybox_rootfs), "--", name)
    assert missing.returncode == 127, missing.stderr
    assert f"cannot run {name} in the sandbox" in missing.stderr
    assert "hint: check the command exists in the root" in missing.stderr
    assert "Traceback" not in missing.stderr


def _pgrep(pattern: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", pattern], check=False, capture_output=True, text=True).stdout
    return out.split()


def _wait_gone(pattern: str, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _pgrep(pattern)
        if not left:
            return []
        time.sleep(0.05)
    return _pgrep(pattern)


def test_zombies_reaped_and_daemons_killed(identity, busybox_rootfs):
    marker = 70000 + os.getpid() % 9000 + (0 if identity.is_root else 1)
    script = (
        # a zombie: the child of a process that execs something that never waits; after that
        # exits, the orphan goes to our init, which must reap it
        "sh -c 'sleep 0.1 & exec sleep 0.4'; sleep 0.3; "
        "ps -o stat,comm | grep -c '^Z' ; "
        # a daemon, detached in its own session, left running at exit
        f"setsid sleep {marker} & "
        f"for i in $(seq 200); do ps -o args | grep -qx 'sleep {marker}' && break; sleep 0.02; done;"
        f" ps -o args | grep -qx 'sleep {marker}' && echo daemon-started"
    )
    result = sh(identity, busybox_rootfs, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].strip() == "0"  # no zombie left
    assert "daemon-started" in result.stdout
    assert _wait_gone(f"^sleep {marker}$", timeout=5) == []


def _wait_present(pattern: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_pgrep(pattern)) == 1:
            return True
        time.sleep(0.05)
    return False


def _mount_lines_mentioning(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


def test_sigkill_of_chrootforge_leaves_nothing(identity, busybox_rootfs):
    marker = 80000 + os.getpid() % 9000 + (0 if identity.is_root else 1)
    proc = identity.popen(
        identity.cf_argv(
            "run",
            str(busybox_rootfs),
            "--",
            "/bin/sh",
            "-c",
            f"setsid sleep {marker} & sleep {marker + 1} & echo ready; wait",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        # (the background jobs may still be execing sleep when "ready" is printed)
        assert _wait_present(f"^sleep {marker}$") and _wait_present(f"^sleep {marker + 1}$")
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone(f"^sleep {marker}$") == []
    assert _wait_gone(f"^sleep {marker + 1}$") == []
    assert _mount_lines_mentioning(busybox_rootfs) == []
    host_mounts = Path("/proc/1/mountinfo").read_text()
    assert str(busybox_rootfs) not in host_mounts


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP"])
def test_signals_are_forwarded_and_trappable(identity, busybox_rootfs, sig):
    proc = identity.popen(
        identity.cf_argv(
            "run",
            str(busybox_rootfs),
            "--",
            "/bin/sh",
            "-c",
            f"trap 'echo got-term; exit 42' {sig}; echo ready; while :; do sleep 0.05; done",
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 42, err
    assert "got-term" in out


def test_log_file_and_tee(scratch, identity, busybox_rootfs):
    logdir = scratch(identity, "log.")
    log = logdir / "out.log"
    result = identity.cf(
        "run", str(busybox_rootfs), "--log", str(log), "--", "/bin/sh", "-c", "echo to-out; echo to-err >&2"
    )
    assert result.returncode == 0, result.stderr
    assert "to-out" not in result.stdout
    assert log.read_text().split() == ["to-out", "to-err"]
    result = identity.cf(
        "run", str(busybox_rootfs), "--log", str(log), "--tee", "--", "/bin/sh", "-c", "echo second"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "second\n"
    assert log.read_text().split() == ["to-out", "to-err", "second"]


def test_env_is_clean_with_defaults(identity, busybox_rootfs):
    result = identity.cf(
        "run",
        str(busybox_rootfs),
        "--env",
        "FOO=bar",
        "--hostname",
        "box",
        "--",
        "/bin/sh",
        "-c",
        "env | sort; hostname; pwd",
        env={"LEAKY": "1"},
    )
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert env["FOO"] == "bar" and env["HOME"] == "/root" and "/bin" in env["PATH"]
    assert "LEAKY" not in env and "XDG_RUNTIME_DIR" not in env
    assert result.stdout.splitlines()[-2:] == ["box", "/"]


def test_shell_runs_a_login_shell(identity, busybox_rootfs):
    result = identity.cf("shell", str(busybox_rootfs), input="echo $0 $HOME; id -u; exit 4\n")
    assert result.returncode == 4, result.stderr
    assert result.stdout.split() == ["/bin/sh", "/root", "0"]


def test_overlay_root_writes_land_in_upper(scratch, identity, busybox_rootfs):
    base = scratch(identity, "overlay.")
    script = (
        "import sys; from pathlib import Path\n"
        "from chrootforge.sandbox import OverlayRoot, SandboxConfig, run_sandboxed\n"
        "from chrootforge.sandbox import owned_dir\n"
        "base = Path(sys.argv[1]); owned_dir(base / 'upper'); owned_dir(base / 'work')\n"
        "root = OverlayRoot([Path(sys.argv[2])], base / 'upper', base / 'work')\n"
        "sys.exit(run_sandboxed(SandboxConfig(root=root, argv=['/bin/sh', '-c', sys.argv[3]],"
        " repos={'ovltest': Path(sys.argv[4])}, portage_tmpfs_size='16M')))\n"
    )
    repo = scratch(identity, "repo.")
    before = sorted(p.name for p in (busybox_rootfs / "owned").iterdir())
    payload = (
        "echo new > /created; rm /owned/root-file; echo changed > /owned/user-file; "
        "cat /owned/portage-file; ls -ln /owned/portage-file; grep -c ' / / ' /proc/self/mountinfo"
    )
    from tests.helpers.rootfs import remove_as

    try:
        result = identity.run(
            [*identity.python, "-c", script, str(base), str(busybox_rootfs), payload, str(repo)]
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "portage"
        assert lines[1].split()[2:4] == ["250", "250"]
        upper = base / "upper"
        assert (upper / "created").read_text() == "new\n"
        assert (upper / "owned/user-file").exists()
        whiteout = os.lstat(upper / "owned/root-file")
        assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0  # a whiteout
        # the lower layer is untouched
        assert not (busybox_rootfs / "created").exists()
        assert (busybox_rootfs / "owned/root-file").read_text() == "root\n"
        assert sorted(p.name for p in (busybox_rootfs / "owned").iterdir()) == before
        # the bind target was created in the upper layer, not the lower one, and taken away again
        assert not (busybox_rootfs / "var/db/repos/ovltest").exists()
        assert not (upper / "var/db/repos/ovltest").exists()
    finally:
        remove_as(identity, base)


def test_run_does_not_import_heavy_modules(identity, busybox_rootfs):
    probe = (
        "import sys; from chrootforge.cli import main; rc = main(sys.argv[1:]); "
        "heavy = [m for m in ('requests', 'gnupg', 'zstandard', 'pyroute2') if m in sys.modules];"
        " print('HEAVY', heavy); sys.exit(rc)"
    )
    for network in ("none", "host"):
        result = identity.run(
            [
                *identity.python,
                "-c",
                probe,
                "run",
                str(busybox_rootfs),
                "--network",
                network,
                "--",
                "/bin/true",
            ]
        )
        assert result.returncode == 0, result.stderr
        assert "HEAVY []" in result.stdout


def test_no_inherited_fd_leaks_into_the_payload(identity, busybox_rootfs):
    fd = os.open("/var/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        result = identity.cf("run", str(busybox_rootfs), "--", "/bin/ls", "/proc/self/fd", pass_fds=(fd,))
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_masked_proc_falls_back_to_a_bind_with_a_notice(identity, busybox_rootfs):
    """Like inside a container that masks /proc paths: the kernel refuses a fresh proc."""
    if os.getuid() != 0:
        pytest.skip("masking /proc in an outer mount namespace needs real root")
    inner = identity._wrap(
        identity.cf_argv(
            "run",
            str(busybox_rootfs),
            "--",
            "/bin/sh",
            "-c",
            "grep ' /proc ' /proc/self/mountinfo; echo pid=$$",
        )
    )
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind /dev/null /proc/uptime && exec "$@"',
        "sh",
        *inner,
    ]
    env = dict(os.environ)
    env.update(identity.env)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "a fresh proc was refused on /proc" in result.stderr
    assert "bound the host's /proc instead" in result.stderr
    assert " /proc " in result.stdout and "pid=2" in result.stdout


def test_interactive_shell_gets_its_own_tty(identity, busybox_rootfs):
    """`chrootforge shell` on a terminal: a pty inside the sandbox, window size copied, ^C to
    the shell's foreground job, and the shell's exit status back."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: become the identity and start the shell on this terminal
        argv = identity._wrap(["env", "TERM=xterm", *identity.cf_argv("shell", str(busybox_rootfs))])
        env = dict(os.environ)
        env.update(identity.env)
        env["TERM"] = "xterm"
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    out = bytearray()

    def pump(seconds: float, until: bytes | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in out):
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                if not data:
                    return
                out.extend(data)

    try:
        pump(10, b"# ")
        os.write(fd, b"sleep 30; echo after-int\n")
        time.sleep(0.5)
        os.write(fd, b"\x03")  # ^C: the tty line discipline inside interrupts the sleep
        pump(5, b"# ")
        os.write(fd, b"tty; stty size; echo TERM=$TERM; exit 3\n")
        pump(10, b"TERM=xterm")
        _, status = os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 3, text
    assert "/dev/pts/0" in text and "40 100" in text, text
    assert "TERM=xterm" in text
    assert "after-int" in text  # the shell survived ^C and went on


@pytest.mark.parametrize("network", ["none", "host"])
def test_sys_read_only(identity, busybox_rootfs, network):
    script = (
        "ls /sys/class/net; echo ===; touch /sys/x 2>&1; "
        "awk '$5 ~ \"^/sys\" {print $5, $6}' /proc/self/mountinfo"
    )
    result = sh(identity, busybox_rootfs, script, "--sys", "ro", "--network", network)
    assert result.returncode == 0, result.stderr
    nets, _, rest = result.stdout.partition("===\n")
    if network == "none":
        assert nets.split() == ["lo"]  # a fresh sysfs of our own net namespace
    else:
        assert "lo" in nets.split()
    assert "Read-only file system" in rest
    mounts = [line.split() for line in rest.splitlines() if line.startswith("/sys")]
    assert mounts and all(opts.split(",")[0] == "ro" for _, opts in mounts)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_sigterm_during_setup_leaves_nothing(identity, busybox_rootfs, delay):
    """A signal at any moment of the start-up (before the payload is known) still ends it all."""
    marker = 90000 + os.getpid() % 5000 + int(delay * 100) + (0 if identity.is_root else 500)
    proc = identity.popen(
        identity.cf_argv("run", str(busybox_rootfs), "--", "/bin/sleep", str(marker)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (143, -signal.SIGTERM), err
    assert "Traceback" not in err
    assert _wait_gone(f"^/bin/sleep {marker}$") == []
    assert _mount_lines_mentioning(busybox_rootfs) == []


def _tree_state(root: Path) -> dict:
    """Every path with its type, mode, owner, size, content hash and mtime (to the nanosecond)."""
    import hashlib

    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[os.path.relpath(path, root)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                content,
            )
    return out


def test_run_leaves_rootfs_as_it_found_it(identity, scratch, fresh_busybox_rootfs):
    """Binds to new paths, --tmpfs, --network host (resolv.conf/hosts) and a missing /run: what
    the sandbox had to create in ROOTFS is gone again afterwards, parents' mtimes included."""
    rootfs = fresh_busybox_rootfs
    for name in ("run", "etc/hosts", "etc/resolv.conf"):
        path = rootfs / name
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()
    src = scratch(identity, "src.")
    (src / "f").write_text("bound\n")
    before = _tree_state(rootfs)
    result = identity.cf(
        "run",
        str(rootfs),
        "--bind",
        f"{src}:/srv/deep/data",
        "--bind",
        f"{src}:/ro-data:ro",
        "--tmpfs",
        "/scratch/t",
        "--network",
        "host",
        "--",
        "/bin/sh",
        "-c",
        "cat /srv/deep/data/f /etc/resolv.conf >/dev/null; ls /run",
    )
    assert result.returncode == 0, result.stderr
    assert _tree_state(rootfs) == before


def test_payload_starts_with_default_signals_and_its_cwd(identity, busybox_rootfs):
    """The payload is spawned by PID 1 (an interpreter that ignores SIGPIPE and SIGXFSZ, catches
    the forwarded signals and blocks them while it spawns): it must start with nothing blocked or
    caught, and nothing ignored but glibc's two internal signals (init.py: GLIBC_INTERNAL)."""
    from chrootforge.sandbox.init import GLIBC_INTERNAL

    result = identity.cf("run", str(busybox_rootfs), "--cwd", "/tmp", "--", "/bin/cat", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    status = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert int(status["SigBlk"], 16) == 0 and int(status["SigCgt"], 16) == 0, status
    ignored = {n + 1 for n in range(64) if int(status["SigIgn"], 16) >> n & 1}
    assert ignored <= set(GLIBC_INTERNAL), ignored
    assert sh(identity, busybox_rootfs, "pwd", "--cwd", "/tmp").stdout == "/tmp\n"
    missing = identity.cf("run", str(busybox_rootfs), "--cwd", "/no/such/dir", "--", "/bin/true")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "cannot enter working directory /no/such/dir" in missing.stderr


READONLY_ROOT = """\
import os, sys
from pathlib import Path
from chrootforge.sandbox import Bind, SandboxConfig, Tmpfs, owned_dir, run_sandboxed
root = Path(sys.argv[1]) / "root"
owned_dir(root)  # the sandbox's root owns it (as real root: its unprivileged range)
binds = [Bind("/usr", "/usr", readonly=True)]
for name in ("proc", "dev", "run", "usr", "scratch"):
    (root / name).mkdir()
for name in ("bin", "sbin", "lib", "lib64"):
    if os.path.islink("/" + name):
        os.symlink(os.readlink("/" + name), root / name)
    elif os.path.isdir("/" + name):
        (root / name).mkdir()
        binds.append(Bind("/" + name, "/" + name, readonly=True))
os.chmod(root, 0o755)
config = SandboxConfig(root=root, argv=["/bin/sh", "-c", sys.argv[3]], binds=binds,
                       tmpfs=[Tmpfs("/scratch")], readonly_root=sys.argv[2] == "ro")
sys.exit(run_sandboxed(config))
"""


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_readonly_root_takes_writes_only_on_its_mounts(identity, mode):
    """readonly_root (the kubler importer's probe): the root refuses every write, as root of the
    sandbox too, while a tmpfs on it takes them; the same root without it is written to."""
    base = identity.mkdtemp("roroot.")
    payload = (
        "touch /new && echo wrote-root; mkdir /made && echo made-dir; echo x > /scratch/f && cat /scratch/f"
    )
    result = identity.run([*identity.python, "-c", READONLY_ROOT, str(base), mode, payload])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    if mode == "ro":
        assert lines == ["x"]
        assert "Read-only file system" in result.stderr
        assert not (base / "root" / "new").exists() and not (base / "root" / "made").exists()
    else:
        assert lines == ["wrote-root", "made-dir", "x"]
    assert not (base / "root" / "scratch" / "f").exists()  # the tmpfs went with the sandbox
    from tests.helpers.rootfs import remove_as

    remove_as(identity, base)


def test_umask_and_domain_name_are_the_configs_not_the_callers(identity, busybox_rootfs):
    """A build's sandbox fixes the payload's umask and the UTS domain name (gentoo/repro.py): a
    caller with umask 077 and whatever domain name still gives the payload umask 022 and the
    configured name; without them set, the payload keeps the caller's umask."""
    script = (
        "import os, sys\n"
        "from chrootforge.sandbox import SandboxConfig, run_sandboxed\n"
        "os.umask(0o077)\n"
        "extra = dict(umask=0o022, domainname='cf.test') if sys.argv[2] == 'fixed' else {}\n"
        "sys.exit(run_sandboxed(SandboxConfig(root=sys.argv[1], argv=['/bin/sh', '-c', sys.argv[3]],"
        " **extra)))\n"
    )
    payload = "umask; cat /proc/sys/kernel/domainname; touch /tmp/made; ls -l /tmp/made; rm /tmp/made"
    fixed = identity.run([*identity.python, "-c", script, str(busybox_rootfs), "fixed", payload])
    assert fixed.returncode == 0, fixed.stderr
    lines = fixed.stdout.splitlines()
    assert lines[0] == "0022" and lines[1] == "cf.test" and lines[2].startswith("-rw-r--r--")
    plain = identity.run([*identity.python, "-c", script, str(busybox_rootfs), "caller", payload])
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0] == "0077"
