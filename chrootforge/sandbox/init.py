"""PID 1 of the sandbox: start the payload, reap zombies, forward signals, pass the status on.

Everything here runs after pivot_root, when the host filesystem (and the venv) are gone: this module
and everything it uses must already be imported.
"""

from __future__ import annotations

import os
import signal

from chrootforge.sandbox import syscalls, userns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PAYLOAD_EXEC_FAILED = 127


def run_payload(argv: list[str], env: dict[str, str], cwd: str, err_fd: int,
                out_fd: int | None) -> None:
    """In the forked payload process: set up stdio and exec (never returns)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; commands expect the default
    try:
        os.chdir(cwd)
    except OSError as err:
        userns.report(err_fd, f"cannot enter working directory {cwd} in the sandbox: "
                              f"{err.strerror}")
        os._exit(userns.SETUP_FAILED)
    if out_fd is not None:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
    userns.close_inherited_fds(err_fd)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as err:
        userns.report(err_fd, f"cannot run {argv[0]} in the sandbox: {err.strerror}",
                      "check the command exists in the root (and PATH inside it)", kind="exec")
        os._exit(PAYLOAD_EXEC_FAILED if err.errno == 2 else 126)


def _identity_of_our_map(path: str) -> str:
    """Our own map's inside ranges, each mapped onto itself (`0 0 65536`, or `0 0 1` single-id)."""
    with open(path) as handle:
        lines = [line.split() for line in handle if line.strip()]
    return "".join(f"{first} {first} {count}\n" for first, _outside, count in lines)


def spawn_locked(err_fd: int, start: Callable[[], None]) -> tuple[int, str | None]:
    """Fork the payload into a nested user + mount namespace mapped 1:1 onto ours: its pid, and
    why it could not be mapped (it then exits SETUP_FAILED without running `start`) or None.

    A mount namespace copied into a less privileged user namespace gets the flags of every mount
    it copied (read-only, nosuid, nodev, noexec, atime) locked, and those mounts locked together
    (mount_namespaces(7)): the payload, although root with every capability of its own namespace,
    can neither remount a read-only bind writable (mount(2) remount, mount_setattr) nor unmount,
    move or detach a mount to reveal or replace what is below. It may still create namespaces of
    its own, which portage's ipc-, network- and pid-sandbox FEATURES do. `start` runs in the child
    once it is mapped, and must exec or exit.
    """
    uid_map = _identity_of_our_map("/proc/self/uid_map")
    gid_map = _identity_of_our_map("/proc/self/gid_map")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    payload = userns.fork_forwarding(child_default=True)
    if payload == 0:
        os.close(ready_r)
        os.close(go_w)
        # PID 1 is not dumpable (runner.py); the payload may be, so that PID 1 can write its maps.
        syscalls.set_dumpable(True)
        try:
            syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
        except OSError as err:
            userns.report(err_fd, f"cannot lock the sandbox's mounts (a nested user namespace was "
                                  f"refused: {err.strerror})",
                          "raise user.max_user_namespaces; the payload never runs with unlocked mounts")
            os._exit(userns.SETUP_FAILED)
        # Our pid as the mounted /proc sees it: the sandbox's own procfs, or (masked /proc) the
        # host's, bound in, where PID 1's fork() return value would name another process.
        os.write(ready_w, b"1" + os.readlink("/proc/self").encode() + b"\n")
        os.close(ready_w)
        if os.read(go_r, 1) != b"1":
            os._exit(userns.SETUP_FAILED)
        os.close(go_r)
        userns.become_namespace_root()
        start()
        os._exit(userns.SETUP_FAILED)
    os.close(ready_w)
    os.close(go_r)
    go, problem = b"0", None
    try:
        ready = os.read(ready_r, 64)
        proc_pid = ready[1:].strip().decode()
        if ready[:1] == b"1" and proc_pid.isdigit():
            with open(f"/proc/{proc_pid}/uid_map", "w") as handle:
                handle.write(uid_map)
            with open(f"/proc/{proc_pid}/gid_map", "w") as handle:
                handle.write(gid_map)
            go = b"1"
    except OSError as err:
        problem = f"cannot map the payload's nested user namespace: {err.strerror}"
    finally:
        try:
            os.write(go_w, go)
        except BrokenPipeError:
            pass  # a forwarded signal killed the payload already: its status tells
        os.close(go_w)
        os.close(ready_r)
    return payload, problem


def serve(argv: list[str], env: dict[str, str], cwd: str, err_fd: int,
          out_fd: int | None) -> int:
    """As PID 1: fork the payload, reap everything, return the payload's status."""
    payload, problem = spawn_locked(err_fd, lambda: run_payload(argv, env, cwd, err_fd, out_fd))
    if out_fd is not None:
        os.close(out_fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return userns.SETUP_FAILED
        if pid == payload:
            code = userns.status_code(status)
            if problem and code == userns.SETUP_FAILED:  # not when a signal killed it meanwhile
                userns.report(err_fd, problem)
            # Exiting as PID 1 makes the kernel kill whatever the payload left running.
            return code
