"""An interactive payload on its own pseudo-terminal (for `chrootforge shell`).

The host's terminal device does not exist in the sandbox's fresh devpts, so a shell on it could not
name its tty, and job control would be off. PID 1 instead opens a pty inside the sandbox, runs the
payload as session leader on it, puts the host terminal in raw mode and relays bytes both ways
(keys like ^C then reach the payload through the pty's own line discipline). Like init.py, this
runs after pivot_root: everything it needs is imported at module level.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import termios
import tty

from chrootforge.sandbox import init, userns


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def serve(argv: list[str], env: dict[str, str], cwd: str, err_fd: int) -> int:
    """As PID 1: the payload on a new pty, relayed to our stdin/stdout; its status."""
    if not init.enter_cwd(cwd, err_fd):
        return userns.SETUP_FAILED
    master, slave = os.openpty()
    _copy_winsize(0, master)
    # A session leader that opens a terminal without O_NOCTTY gets it as its controlling tty.
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
        (os.POSIX_SPAWN_DUP2, 0, 1),
        (os.POSIX_SPAWN_DUP2, 0, 2),
    ]
    try:
        payload = init.spawn(argv, env, actions, setsid=True)
    except OSError as err:
        return init.exec_failed(argv[0], err, err_fd)
    finally:
        os.close(slave)
    saved = termios.tcgetattr(0)
    signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(0, master))
    status = None
    try:
        tty.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keep what was typed ahead
        status = _relay(master, payload)
    finally:
        termios.tcsetattr(0, termios.TCSAFLUSH, saved)
    return status


def _relay(master: int, payload: int) -> int:
    status = None
    inputs = [0, master]
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [], 0.1)
        except InterruptedError:
            ready = []
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as err:  # EIO: every holder of the pty's slave side is gone
                if err.errno != errno.EIO:
                    raise
                data = b""
            if data:
                _write_all(1, data)
            else:
                inputs.remove(master)
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                _write_all(master, data)
            else:
                inputs.remove(0)
        while True:  # reap everything; note the payload's status
            try:
                pid, wstatus = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == payload:
                status = userns.status_code(wstatus)
        if status is not None and master not in inputs:
            return status
        if status is not None and master not in ready:
            return status  # output drained; daemons left on the pty die with us
