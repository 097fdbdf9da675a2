"""The sandbox attacked from inside, the way a hostile build script would, as root and rootless.

Every case ends with the same question asked from the host: did the file behind the read-only bind
change, did a host-wide sysctl take a write? The payload is root of its own user namespace with every
capability there; what must hold is the kernel's locking of the mounts it inherited (see
chrootforge/sandbox/init.py, spawn_locked) and that its root is never host root (sandbox/idmap.py).
"""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

ORIGINAL = "original\n"

# Each attempt is one operation that would unlock, replace or bypass a read-only mount; it prints
# "<name> rc=<status>" and every one must fail. Then the payload tries to write everywhere the file
# could now be reachable, and the host checks that the file never changed.
BUSYBOX_ATTEMPTS = textwrap.dedent("""
    try() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name rc=$?"; }
    mkdir -p /tmp/moved /tmp/copy
    try remount-rw mount -o remount,bind,rw /ro
    try remount-rw-plain mount -o remount,rw /ro
    try umount umount /ro
    try umount-lazy umount -l /ro
    try move mount --move /ro /tmp/moved
    try sub-remount-rw mount -o remount,bind,rw /ro/sub
    try sub-umount umount /ro/sub
    try repo-remount-rw mount -o remount,bind,rw /var/db/repos/gentoo
    try repo-umount umount -l /var/db/repos/gentoo
    mount --rbind /ro /tmp/copy 2>/dev/null  # a copy of a locked mount is locked too
    try copy-remount-rw mount -o remount,bind,rw /tmp/copy
    try nsenter-pid1 nsenter -t 1 -m true
    try pid1-root ls /proc/1/root/
    try pid1-mem head -c1 /proc/1/mem
    for f in /ro/file /ro/sub/file /tmp/moved/file /tmp/copy/file /var/db/repos/gentoo/file; do
        echo pwned > $f 2>/dev/null && echo "WROTE $f"
    done
""")

# The new mount API (open_tree, mount_setattr, move_mount, fspick/fsconfig), through ctypes.
NEW_API_ATTEMPTS = textwrap.dedent("""
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    OPEN_TREE, MOVE_MOUNT, FSCONFIG, FSPICK, MOUNT_SETATTR = 428, 429, 431, 433, 442
    AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE, CLONE, F_EMPTY = -100, 0x1000, 0x8000, 1, 4
    class Attr(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "prop", "userns")]
    def sc(*args):
        r = libc.syscall(*args)
        return r, ctypes.get_errno()
    def report(name, r, e):
        print(f"{name} rc={r} errno={e}", flush=True)
    def writable(path):
        try:
            with open(path, "w") as f:
                f.write("pwned")
            return "WROTE"
        except OSError as err:
            return f"refused:{err.errno}"
    clear_ro = Attr(0, 1, 0, 0)
    report("setattr-clear-ro", *sc(MOUNT_SETATTR, AT_FDCWD, b"/ro", AT_RECURSIVE, ctypes.byref(clear_ro), 32))
    print("after-setattr", writable("/ro/file"))
    fd, e = sc(OPEN_TREE, AT_FDCWD, b"/ro", CLONE | AT_RECURSIVE)
    report("open-tree-clone", fd, e)
    if fd >= 0:
        report("clone-clear-ro", *sc(MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(clear_ro), 32))
        os.makedirs("/tmp/m2", exist_ok=True)
        report("clone-move", *sc(MOVE_MOUNT, fd, b"", AT_FDCWD, b"/tmp/m2", F_EMPTY))
        print("after-clone", writable("/tmp/m2/file"))
    fd, e = sc(OPEN_TREE, AT_FDCWD, b"/ro", 0)
    report("open-tree-attached", fd, e)
    if fd >= 0:
        os.makedirs("/tmp/m3", exist_ok=True)
        report("move-attached", *sc(MOVE_MOUNT, fd, b"", AT_FDCWD, b"/tmp/m3", F_EMPTY))
    fd, e = sc(FSPICK, AT_FDCWD, b"/ro", 0)
    report("fspick", fd, e)
    if fd >= 0:
        report("fsconfig-rw", *sc(FSCONFIG, fd, 0, b"rw", None, 0))
        report("fsconfig-reconfigure", *sc(FSCONFIG, fd, 7, None, None, 0))
    print("final", writable("/ro/file"))
""")


def _ro_source(identity, make_dir) -> Path:
    """A read-only bind source holding `file`, and `sub` where _outer() mounts a submount."""
    src = make_dir(identity, "ro-src.")
    (src / "file").write_text(ORIGINAL)
    (src / "sub").mkdir()
    return src


def _outer(identity, inner: list[str], src: Path) -> list[str]:
    """Run `inner` in a private mount namespace where `src/sub` is a tmpfs holding `file`, so the
    read-only bind of src carries a submount. Real root can do that directly; the unprivileged
    user does it in a user namespace of its own, and then runs chrootforge with --single-id."""
    script = (
        f'mount -t tmpfs -o size=1m sub {src}/sub && echo {ORIGINAL.strip()} > {src}/sub/file && exec "$@"'
    )
    if identity.is_root:
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner]
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        *inner,
    ]


def _run_attempts(
    identity, rootfs: Path, src: Path, repo: Path, argv: list[str]
) -> subprocess.CompletedProcess:
    single = [] if identity.is_root else ["--single-id"]
    inner = identity.cf_argv(
        "run", *single, str(rootfs), "--bind", f"{src}:/ro:ro", "--repo", f"gentoo={repo}", "--", *argv
    )
    outer = _outer(identity, inner, src)
    if not identity.is_root:
        outer = identity._wrap(outer)
    env = dict(os.environ)
    env.update(identity.env)
    return subprocess.run(outer, capture_output=True, text=True, timeout=120, env=env, check=False)


def _assert_untouched(src: Path, repo: Path, result) -> None:
    assert (src / "file").read_text() == ORIGINAL, result.stdout
    assert not (repo / "file").exists(), result.stdout
    # the submount only lived in the outer namespace: the host's src/sub is still empty
    assert list((src / "sub").iterdir()) == []


def test_readonly_binds_stay_readonly_under_attack(identity, scratch, busybox_rootfs):
    src = _ro_source(identity, scratch)
    repo = scratch(identity, "repo.")
    (repo / "profiles").mkdir()
    result = _run_attempts(
        identity, busybox_rootfs, src, repo, ["/bin/sh", "-c", BUSYBOX_ATTEMPTS + "echo done"]
    )
    assert result.returncode == 0, result.stderr
    attempts = dict(line.split(" rc=") for line in result.stdout.splitlines() if " rc=" in line)
    assert len(attempts) == 13, result.stdout
    succeeded = {name for name, rc in attempts.items() if rc == "0"}
    assert not succeeded, f"these succeeded: {succeeded}\n{result.stdout}"
    assert "WROTE /ro" not in result.stdout and "WROTE /var/db" not in result.stdout
    _assert_untouched(src, repo, result)


@pytest.mark.slow
def test_new_mount_api_cannot_unlock_readonly_binds(identity, scratch, world_builder):
    """open_tree/mount_setattr/move_mount/fspick from Python in the synthetic stage."""
    rootfs = world_builder(identity, purpose="escapes")
    src = _ro_source(identity, scratch)
    repo = scratch(identity, "repo.")
    result = _run_attempts(identity, rootfs, src, repo, ["python3", "-c", NEW_API_ATTEMPTS])
    print(result.stdout)  # the closing note quotes these
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    for unlocking in ("setattr-clear-ro", "clone-clear-ro", "move-attached", "fsconfig-reconfigure"):
        assert not lines.get(unlocking, "rc=-1").startswith("rc=0 "), result.stdout
    for probe in ("after-setattr", "after-clone", "final"):
        assert lines.get(probe, "refused").startswith("refused"), result.stdout
    _assert_untouched(src, repo, result)


HOST_WIDE_SYSCTLS = ("kernel/core_pattern", "kernel/modprobe", "fs/suid_dumpable", "kernel/hotplug")


def test_host_wide_sysctls_refuse_writes(identity, busybox_rootfs):
    """Each write puts the current value back, so even a wrongly successful one changes nothing;
    what the test checks is that the kernel refuses it: the sandbox's root is not host root."""
    present = [s for s in HOST_WIDE_SYSCTLS if Path("/proc/sys", s).exists()]
    script = "".join(
        f'v=$(cat /proc/sys/{s}); printf "%s\\n" "$v" > /proc/sys/{s} 2>/dev/null; echo "{s} rc=$?"; '
        for s in present
    )
    for options in ([], ["--network", "host"]):
        result = identity.cf("run", *options, str(busybox_rootfs), "--", "/bin/sh", "-c", script)
        assert result.returncode == 0, result.stderr
        statuses = dict(line.split(" rc=") for line in result.stdout.splitlines())
        assert sorted(statuses) == sorted(present)
        assert all(rc != "0" for rc in statuses.values()), result.stdout


def test_single_id_root_is_not_host_root_either(root_identity, _busybox_rootfs_cache):
    rootfs = _busybox_rootfs_cache.get(root_identity)
    result = root_identity.cf(
        "run",
        "--single-id",
        str(rootfs),
        "--",
        "/bin/sh",
        "-c",
        "v=$(cat /proc/sys/kernel/core_pattern); "
        "printf '%s\\n' \"$v\" > /proc/sys/kernel/core_pattern; echo rc=$?",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != "rc=0"


def test_symlinked_mount_targets_stay_inside_the_root(identity, scratch, fresh_busybox_rootfs):
    """Mount targets and the files the sandbox creates follow symlinks of the rootfs inside it,
    never onto the host, and are taken away afterwards."""
    outside = scratch(identity, "outside.")
    rootfs = fresh_busybox_rootfs
    os.symlink(outside, rootfs / "abs")  # absolute: inside, it means rootfs/<outside>
    os.symlink(f"../../../../..{outside}", rootfs / "rel")  # climbs no higher than the root
    src = scratch(identity, "src.")
    result = identity.cf(
        "run",
        str(rootfs),
        "--bind",
        f"{src}:/abs/x/y",
        "--tmpfs",
        "/rel/t",
        "--network",
        "host",
        "--",
        "/bin/sh",
        "-c",
        "ls -d /abs/x/y /rel/t",
    )
    assert result.returncode == 0, result.stderr
    assert list(outside.iterdir()) == []  # nothing was created through the links on the host
    inside = rootfs / str(outside).lstrip("/")
    assert not inside.exists() and (rootfs / "var/tmp").is_dir()  # what it made inside is gone


def test_shell_keeps_readonly_binds_locked(identity, scratch, busybox_rootfs):
    """`chrootforge shell` (its payload is a login shell) gets the same locked mounts."""
    src = _ro_source(identity, scratch)
    script = (
        "mount -o remount,bind,rw /ro; echo remount=$?; umount /ro; echo umount=$?; "
        "echo pwned > /ro/file; echo write=$?; exit\n"
    )
    result = identity.cf("shell", str(busybox_rootfs), "--bind", f"{src}:/ro:ro", input=script)
    assert result.returncode == 0, result.stderr
    for attempt in ("remount", "umount", "write"):
        assert f"{attempt}=0" not in result.stdout and f"{attempt}=" in result.stdout, result.stdout
    assert (src / "file").read_text() == ORIGINAL


# The payload as the caller's own kernel-side state sees it: the terminal it was started from and
# the session keyring it inherited. Both are shared with the host's shell unless the sandbox cuts
# them off; each case runs the host's Python inside (a root of symlinks into a read-only /usr).
HOST_PYTHON = Path("/usr/bin/python3")

TTY_INJECT = textwrap.dedent("""
    import fcntl, os, termios
    results = []
    for name in ("/dev/tty", "/proc/self/fd/0"):
        try:
            fd = os.open(name, os.O_RDWR)
        except OSError as err:
            results.append(f"{name}:open:{err.errno}")
            continue
        try:
            for ch in b"echo PWNED-BY-SANDBOX\\n":
                fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
            results.append(f"{name}:TYPED")
        except OSError as err:
            results.append(f"{name}:{err.errno}")
    print("tiocsti", " ".join(results), flush=True)
""")


def _host_python_root(identity, scratch) -> Path:
    root = scratch(identity, "pyroot.")
    (root / "usr").mkdir()
    for name in ("bin", "lib", "lib64", "sbin"):
        os.symlink(f"usr/{name}", root / name)
    return root


def _in_pty(argv: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run argv as a session leader on a new terminal; what the terminal showed."""
    import pty
    import select
    import signal
    import time

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    out = bytearray()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out.extend(data)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace")


def test_payload_cannot_type_into_the_callers_terminal(identity, scratch):
    """A payload that pushes a command line into the terminal it was started from (TIOCSTI on
    /dev/tty or an inherited tty descriptor) gets it run by the caller's shell after the sandbox
    exits: a host command as the caller. Even with stdio redirected away from the terminal, the
    terminal must be out of reach; the shell here reads what was left for it."""
    if not HOST_PYTHON.exists():
        pytest.skip("needs /usr/bin/python3")
    root = _host_python_root(identity, scratch)
    inner = identity.cf_argv(
        "run", str(root), "--bind", "/usr:/usr:ro", "--", str(HOST_PYTHON), "-c", TTY_INJECT
    )
    script = '"$@" </dev/null; read -t 2 left; echo "LEFT=[$left]"'
    argv = identity._wrap(["bash", "-c", script, "bash", *inner])
    env = dict(os.environ)
    env.update(identity.env)
    text = _in_pty(argv, env)
    assert "tiocsti " in text, text
    assert "TYPED" not in text, text
    assert "LEFT=[]" in text and "PWNED-BY-SANDBOX" not in text.split("tiocsti", 1)[1], text


KEYRING_READ = textwrap.dedent("""
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    REQUEST_KEY, KEYCTL, KEYCTL_READ = 249, 250, 11
    serial = libc.syscall(REQUEST_KEY, b"user", b"cf-test-secret", None, 0)
    buf = ctypes.create_string_buffer(64)
    got = libc.syscall(KEYCTL, KEYCTL_READ, serial, buf, 64) if serial > 0 else -1
    print("key", serial, buf.raw[:max(got, 0)].decode(errors="replace") or "-", flush=True)
""")

ADD_KEY_AND_EXEC = textwrap.dedent("""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    ADD_KEY, KEYCTL, JOIN_SESSION_KEYRING, KEY_SPEC_SESSION_KEYRING = 248, 250, 1, -3
    # A session keyring of the test's own, holding the secret, for the command that follows.
    if libc.syscall(KEYCTL, JOIN_SESSION_KEYRING, None) <= 0:
        print("SKIP keyctl refused", ctypes.get_errno())
        sys.exit(77)
    serial = libc.syscall(ADD_KEY, b"user", b"cf-test-secret", b"HOST-SECRET", 11,
                          KEY_SPEC_SESSION_KEYRING)
    if serial <= 0:
        sys.exit(f"add_key: errno {ctypes.get_errno()}")
    os.execvp(sys.argv[1], sys.argv[1:])
""")


def test_payload_cannot_use_the_callers_session_keyring(identity, scratch):
    """The caller's session keyring (tokens, ticket caches, fscrypt keys) is possessed by every
    process that inherits it, and possession grants reading: the payload gets an empty one."""
    if os.uname().machine != "x86_64" or not HOST_PYTHON.exists():
        pytest.skip("the key syscall numbers here are x86_64's; needs /usr/bin/python3")
    root = _host_python_root(identity, scratch)
    inner = identity.cf_argv(
        "run", str(root), "--bind", "/usr:/usr:ro", "--", str(HOST_PYTHON), "-c", KEYRING_READ
    )
    result = identity.run([str(HOST_PYTHON), "-c", ADD_KEY_AND_EXEC, *inner], timeout=60)
    if result.returncode == 77:
        pytest.skip(result.stdout)
    assert result.returncode == 0, result.stderr
    assert "key " in result.stdout, result.stdout
    assert "HOST-SECRET" not in result.stdout, result.stdout


def test_device_nodes_in_the_rootfs_are_inert(identity, fresh_busybox_rootfs):
    """A rootfs made by another tool as root may hold device nodes (a hostile image unpacked by
    umoci or tar as root). Inside, they must not reach the host's devices: /dev/kmsg would let the
    payload write the host's kernel log, a disk node its blocks. The witness here is a harmless
    node (null); the sandbox's own /dev/null keeps working."""
    if os.getuid() != 0:
        pytest.skip("only real root can make device nodes on the host")
    node = fresh_busybox_rootfs / "owned" / "hostnull"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(node, 0o666)
    result = identity.cf(
        "run",
        str(fresh_busybox_rootfs),
        "--",
        "/bin/sh",
        "-c",
        "echo x > /owned/hostnull; echo node=$?; echo x > /dev/null; echo dev=$?",
    )
    assert result.returncode == 0, result.stderr
    assert "dev=0" in result.stdout, result.stdout
    assert "node=0" not in result.stdout, result.stdout


# Every process the payload can see through /proc: whose root it can enter, and write through.
PROC_ROOTS = textwrap.dedent("""
    for d in /proc/[0-9]*; do
        [ -d "$d/root/$1" ] || continue
        echo "reached $d"
        echo pwned > "$d/root/$1/written-through-${d#/proc/}" 2>/dev/null && echo "WROTE via $d"
    done
    echo done
""")


def test_host_proc_fallback_reaches_no_host_process(identity, scratch, busybox_rootfs):
    """Inside a container that masks /proc paths, the kernel refuses a fresh proc and the sandbox
    binds the host's: the payload then sees the host's processes. Through /proc/PID/root of one it
    may ptrace (the same host uid, rootless: chrootforge itself) it would reach the host's files.
    No process outside the sandbox may be open to it."""
    if os.getuid() != 0:
        pytest.skip("masking /proc in an outer mount namespace needs real root")
    target = scratch(identity, "target.")
    os.chmod(target, 0o777)
    inner = identity._wrap(
        identity.cf_argv("run", str(busybox_rootfs), "--", "/bin/sh", "-c", PROC_ROOTS, "sh", str(target))
    )
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    argv += ['mount --bind /dev/null /proc/uptime && exec "$@"', "sh", *inner]
    env = dict(os.environ)
    env.update(identity.env)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert "bound the host's /proc instead" in result.stderr or "refused" in result.stderr, result.stderr
    assert "done" in result.stdout, result.stderr
    assert "reached" not in result.stdout, result.stdout
    assert list(target.iterdir()) == [], result.stdout
