"""PID 1 of the sandbox: lock the mounts, start the payload, reap zombies, forward signals.

Everything here runs after pivot_root, when the host filesystem (and the venv) are gone: this module
and everything it uses must already be imported.

Locking: once the mount plan is applied, PID 1 moves into a nested user + mount namespace mapped 1:1
onto the sandbox's (its parent, still in the sandbox's own user namespace, writes the maps). A mount
namespace copied into a less privileged user namespace gets the flags of every mount it copied
(read-only, nosuid, nodev, noexec, atime) locked, and those mounts locked together
(mount_namespaces(7)): the payload, although root with every capability of that namespace, can
neither remount a read-only bind writable (mount(2) remount, mount_setattr) nor unmount, move or
detach a mount to reveal or replace what is below. It may still create namespaces of its own, which
portage's ipc-, network- and pid-sandbox FEATURES do. The unlocked namespace stays with PID 1's
parent, outside the sandbox's pid namespace, where it undoes what the plan created (runner.py).

The payload is started with posix_spawn (vfork + exec: no copy of this interpreter) and inherits the
locked namespaces, PID 1's credentials and nothing else: signal handlers and Python's ignored
signals are reset, no descriptor but stdin, stdout and stderr reaches it. One difference from fork
and exec: glibc's posix_spawn leaves its own two internal signals (GLIBC_INTERNAL) ignored in the
new program. No program can use them as signals of its own, and glibc installs its handlers for them
when a program starts its first thread.
"""

from __future__ import annotations

import errno
import os
import signal

from chrootforge.errors import CfError
from chrootforge.sandbox import syscalls, userns

PAYLOAD_EXEC_FAILED = 127
# Python ignores these; the payload gets the defaults (as subprocess gives its children).
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
GLIBC_INTERNAL = (32, 33)  # SIGCANCEL and SIGSETXID, below SIGRTMIN: see the module docstring
ASK = b"1"  # enter_locked's request to its parent: map my nested user namespace


def enter_locked(ask_fd: int, answer_fd: int) -> None:
    """In PID 1, after the mounts: enter the nested user + mount namespace (CfError if refused).

    Writes ASK on ask_fd once unshared, and waits for the parent's answer on answer_fd, a
    userns.Report: "ok" when it has written the maps, else an error saying why not (none when the
    parent is gone). Then takes id 0 of the new namespace. The caller
    makes itself non-dumpable afterwards: until then our parent must be able to open our /proc
    files (a uid change made us non-dumpable, when real root's namespace child took id 0)."""
    syscalls.set_dumpable(True)
    try:
        syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
    except OSError as err:
        raise CfError(
            f"cannot lock the sandbox's mounts (a nested user namespace was refused: {err.strerror})",
            hint="raise user.max_user_namespaces; the payload never runs with unlocked mounts",
        ) from err
    os.write(ask_fd, ASK)
    os.close(ask_fd)
    answer = userns.Report.decode_all(userns.read_all(answer_fd), "the sandbox's namespace child")
    if answer != [userns.Report("ok")]:
        why = answer[0].message if answer and answer[0].kind == "error" else "its parent is gone"
        raise CfError(f"cannot map the sandbox's nested user namespace: {why}")
    userns.become_namespace_root()


def spawn(argv: list[str], env: dict[str, str], file_actions=(), setsid: bool = False) -> int:
    """Start the payload (PID 1's cwd is its working directory); its pid. OSError when it cannot be
    executed. The forwarded signals are blocked across it, so one that arrives meanwhile goes to
    the payload once its pid is known (userns.set_target) instead of being lost."""
    syscalls.cloexec_from(3)  # whatever chrootforge's caller handed down stays out of the payload
    # posix_spawnp searches the PATH of our own environment, execvp-style: make it the payload's.
    if "PATH" in env:
        os.environ["PATH"] = env["PATH"]
    else:
        os.environ.pop("PATH", None)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, userns.FORWARDED)
    try:
        pid = os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=list(file_actions),
            setsid=setsid,
            setsigdef=RESET_SIGNALS,
            setsigmask=old,
        )
        userns.set_target(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def exec_failed(argv0: str, err: OSError, err_fd: int) -> int:
    """Report a payload that could not be executed; the exit status a shell would give."""
    hint = "check the command exists in the root (and PATH inside it)"
    if err.errno == errno.ENOEXEC:
        hint = "is it a program for another platform? give its platform, e.g. --platform linux/arm64"
    userns.report(err_fd, f"cannot run {argv0} in the sandbox: {err.strerror}", hint, kind="exec")
    return PAYLOAD_EXEC_FAILED if err.errno == errno.ENOENT else 126


def enter_cwd(cwd: str, err_fd: int) -> bool:
    try:
        os.chdir(cwd)
        return True
    except OSError as err:
        userns.report(err_fd, f"cannot enter working directory {cwd} in the sandbox: {err.strerror}")
        return False


def serve(argv: list[str], env: dict[str, str], cwd: str, err_fd: int, out_fd: int | None) -> int:
    """As PID 1: start the payload, reap everything, return the payload's status."""
    if not enter_cwd(cwd, err_fd):
        return userns.SETUP_FAILED
    actions = [] if out_fd is None else [(os.POSIX_SPAWN_DUP2, out_fd, 1), (os.POSIX_SPAWN_DUP2, out_fd, 2)]
    try:
        # A session of its own: the payload has no controlling terminal, so it can neither open
        # the caller's through /dev/tty nor push input into it (TIOCSTI) for the caller's shell
        # to run once we exit; the terminal's ^C reaches it through PID 1's forwarding.
        payload = spawn(argv, env, actions, setsid=True)
    except OSError as err:
        return exec_failed(argv[0], err, err_fd)
    finally:
        if out_fd is not None:
            os.close(out_fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return userns.SETUP_FAILED
        if pid == payload:
            # Exiting as PID 1 makes the kernel kill whatever the payload left running.
            return userns.status_code(status)
