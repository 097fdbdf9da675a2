"""PID 1 of the sandbox: start the payload, reap zombies, forward signals, pass the status on.

Everything here runs after pivot_root, when the host filesystem (and the venv) are gone: this module
and everything it uses must already be imported.
"""

from __future__ import annotations

import os
import signal

from chrootforge.sandbox import userns

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


def serve(argv: list[str], env: dict[str, str], cwd: str, err_fd: int,
          out_fd: int | None) -> int:
    """As PID 1: fork the payload, reap everything, return the payload's status."""
    payload = userns.fork_forwarding(child_default=True)
    if payload == 0:
        run_payload(argv, env, cwd, err_fd, out_fd)
    if out_fd is not None:
        os.close(out_fd)
    os.close(err_fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return userns.SETUP_FAILED
        if pid == payload:
            # Exiting as PID 1 makes the kernel kill whatever the payload left running.
            return userns.status_code(status)
