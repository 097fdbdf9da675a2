"""Fork a child into a new user namespace and give it the id map (the protocol both runners share).

The child unshares CLONE_NEWUSER and tells the parent through a pipe; the parent (still outside)
writes the maps with newuidmap/newgidmap or directly, then lets the child go on. Failures in any
child are reported back as `Report` values on a close-on-exec error pipe, so the parent can raise
a clean CfError instead of the child printing a traceback.
"""

from __future__ import annotations

import os
import signal
import sys

from chrootforge.errors import CfError
from chrootforge.sandbox import syscalls
from chrootforge.sandbox.idmap import IdMap, helper_path
from chrootforge.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
SETUP_FAILED = 125  # exit status of a child whose setup failed (the error pipe says why)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# Kinds of Report. error: a setup failure (raised by the parent); exec: the payload could not be
# executed (printed; its exit status stands); userns: unshare(CLONE_NEWUSER) refused (the message
# is the errno); notice: printed as a notice; ok: a request was done (the answer to one).
REPORT_KINDS = ("error", "exec", "userns", "notice", "ok")
_LENGTH = 4  # bytes of a field's length prefix (big-endian)
_FIELD_MAX = 1 << 20


class Report(Value):
    """One message between the processes of a sandbox: from a child to its parent on the error
    or notice pipe, or the answer to a request (PID 1 asking for its nested map). encode() and
    decode_all() are its wire form: three length-prefixed UTF-8 fields, so no text in a message
    (control characters included) can split, forge or merge records."""

    __slots__ = ("kind", "message", "hint")
    kind: str
    message: str
    hint: str

    def __init__(self, kind: str, message: str = "", hint: str = "") -> None:
        if kind not in REPORT_KINDS:
            raise ValueError(f"unknown report kind {kind!r}")
        self._init(kind, message, hint)

    def encode(self) -> bytes:
        out = b""
        for field in (self.kind, self.message, self.hint):
            data = field.encode(errors="replace")
            if len(data) > _FIELD_MAX:  # cut on a character boundary
                data = data[:_FIELD_MAX].decode(errors="ignore").encode()
            out += len(data).to_bytes(_LENGTH, "big") + data
        return out

    @classmethod
    def decode_all(cls, data: bytes, where: str = "a sandbox process") -> list[Report]:
        """The reports in `data`, in order; a CfError saying so when it is not a whole number of
        well-formed records (truncated, an unknown kind, a field that is not UTF-8, an errno that
        is not a number)."""
        out: list[Report] = []
        at = 0
        while at < len(data):
            fields: list[str] = []
            for _ in range(3):
                size = int.from_bytes(data[at : at + _LENGTH], "big")
                end = at + _LENGTH + size
                if at + _LENGTH > len(data) or size > _FIELD_MAX or end > len(data):
                    raise _garbled(where, f"a record is cut short at byte {at}")
                try:
                    fields.append(data[at + _LENGTH : end].decode())
                except UnicodeDecodeError as err:
                    raise _garbled(where, f"the field at byte {at} is not UTF-8") from err
                at = end
            kind, message, hint = fields
            if kind not in REPORT_KINDS:
                raise _garbled(where, f"unknown kind {kind[:40]!r}")
            if kind == "userns" and not message.isdigit():
                raise _garbled(where, f"a refused user namespace with errno {message[:40]!r}")
            out.append(cls(kind, message, hint))
        return out


def _garbled(where: str, problem: str) -> CfError:
    return CfError(
        f"garbled report from {where}: {problem}",
        hint="this is a bug of chrootforge (or something else wrote into its pipe): please report it",
    )


def report(err_fd: int, message: str, hint: str = "", kind: str = "error") -> None:
    """From a child: send one report to the parent (best effort, one write)."""
    try:
        os.write(err_fd, Report(kind, message, hint).encode())
    except OSError:
        pass


def read_all(fd: int) -> bytes:
    """Everything until EOF; closes fd."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_reports(err_fd: int, where: str = "a sandbox process") -> list[Report]:
    """The reports waiting on `err_fd` (its writers have exited; nothing more is awaited)."""
    os.set_blocking(err_fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(err_fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return Report.decode_all(data, where)


def close_inherited_fds(keep: int) -> None:
    """Close every fd above stderr but `keep` (the close-on-exec error pipe), so no host file or
    directory handed down to chrootforge leaks into the payload."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)


def terminal_sent_it(target: int) -> bool:
    """True when `target` is in the terminal's foreground process group: the terminal then
    delivered SIGINT/SIGQUIT to it itself, and forwarding would deliver it twice. (The payload
    runs in a session of its own, so PID 1 always forwards to it.)"""
    try:
        group = os.getpgid(target)
    except OSError:
        return False
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == group:
                return True
        except OSError:
            continue
    return False


# Signal forwarding. Every process of the chain (chrootforge, the namespace child, PID 1) installs
# the handler *before* it forks the next link, so no signal can hit a default handler in between;
# a signal that arrives before the next link's pid is known is kept and delivered by set_target().
_target: int | None = None
_pending: list[int] = []


def _forward(signum, _frame) -> None:
    if _target is None:
        _pending.append(signum)
        return
    if signum in (signal.SIGINT, signal.SIGQUIT) and terminal_sent_it(_target):
        return
    try:
        os.kill(_target, signum)
    except ProcessLookupError:
        pass


def install_forwarding(signals=FORWARDED) -> dict:
    """Forward `signals` to the set_target() pid from now on; returns the previous handlers."""
    clear_target()
    return {sig: signal.signal(sig, _forward) for sig in signals}


def set_target(pid: int) -> None:
    """The process to forward to; delivers what arrived before it existed."""
    global _target
    _target = pid
    pending, _pending[:] = list(_pending), []
    for signum in pending:
        _forward(signum, None)


def clear_target() -> None:
    """In a freshly forked child: forget the parent's target and its pending signals."""
    global _target
    _target = None
    _pending.clear()


def fork_forwarding() -> int:
    """fork() for the next link of the chain: from its first instant the parent forwards to the
    child, and the child forwards nowhere yet. The signals are blocked across the fork, so one
    arriving meanwhile is neither lost nor delivered twice."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    pid = os.fork()
    if pid == 0:
        clear_target()
    else:
        set_target(pid)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def restore_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def status_code(status: int) -> int:
    """A wait status as a shell would report it: exit code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def wait_child(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status_code(status)
        except ChildProcessError:
            return SETUP_FAILED


def _run_helpers(pid: int, idmap: IdMap) -> None:
    """newuidmap and newgidmap for `pid`, side by side (each is a setuid program that takes a
    couple of milliseconds to start); a CfError names the first one that failed."""
    calls = []
    for tool, which in (("newuidmap", "uid"), ("newgidmap", "gid")):
        path = helper_path(tool)
        if path is None:
            raise CfError(f"{tool} not found", hint="apt-get install uidmap")
        calls.append((tool, path, idmap.helper_args(which)))
    children: list[int] = []
    try:
        for tool, path, args in calls:
            children.append(os.posix_spawn(path, [tool, str(pid), *args], os.environ))
    finally:
        statuses = [os.waitpid(child, 0)[1] for child in children]
    for (tool, _path, args), status in zip(calls, statuses, strict=True):
        if status != 0:
            raise CfError(
                f"{tool} {pid} {' '.join(args)} failed (see its message above)",
                hint="check that /etc/subuid and /etc/subgid give you this range and that "
                f"{tool} is setuid root (dpkg-reconfigure uidmap / apt-get install "
                "--reinstall uidmap)",
            )


def write_maps(pid: int, idmap: IdMap) -> None:
    """From the parent: install `idmap` on the user namespace of `pid`."""
    if idmap.use_helpers:
        _run_helpers(pid, idmap)
        return
    try:
        if os.getuid() != 0:
            with open(f"/proc/{pid}/setgroups", "w") as handle:
                handle.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as handle:
            handle.write(idmap.uid_lines())
        with open(f"/proc/{pid}/gid_map", "w") as handle:
            handle.write(idmap.gid_lines())
    except OSError as err:
        raise CfError(
            f"cannot write the id map of process {pid}: {err.strerror}",
            hint="the map must only name your own uid/gid (or run as root)",
        ) from err


def write_nested_maps(proc: int, pid: int, idmap: IdMap) -> None:
    """From a process of the namespace `idmap` maps: map the user namespace of process `pid` (as
    the procfs open as `proc` numbers it), nested in ours, 1:1 onto ours (so files keep their
    owners). OSError if refused."""
    for which in ("uid", "gid"):
        fd = os.open(f"{pid}/{which}_map", os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc)
        try:
            write_all(fd, idmap.nested_lines(which).encode())
        finally:
            os.close(fd)


def fork_into_userns(
    idmap: IdMap, child_main: Callable[[int], None], meanwhile: Callable[[], None] | None = None
) -> tuple[int, int]:
    """Fork a child in a new, mapped user namespace that runs child_main(err_fd).

    Returns (pid, err_read_fd). child_main must not return normally (it execs or _exits); any
    exception it raises is reported on the error pipe. `meanwhile` runs in the child while we
    write its maps (the setuid helpers take a few milliseconds): it holds every capability of
    its namespace already, but no id of it yet.
    """
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = fork_forwarding()
    if pid == 0:  # child
        code = SETUP_FAILED
        try:
            os.close(ready_r)
            os.close(go_w)
            os.close(err_r)
            syscalls.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(SETUP_FAILED)
            try:
                syscalls.unshare(syscalls.CLONE_NEWUSER)
            except OSError as err:
                report(err_w, str(err.errno), kind="userns")
                os._exit(SETUP_FAILED)
            os.write(ready_w, b"1")
            os.close(ready_w)
            if meanwhile is not None:
                meanwhile()
            if os.read(go_r, 1) != b"1":
                os._exit(SETUP_FAILED)
            os.close(go_r)
            become_namespace_root()
            # Changing credentials clears PR_SET_PDEATHSIG (prctl(2)): set it again, and make
            # sure the parent did not die in between.
            syscalls.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(SETUP_FAILED)
            child_main(err_w)
        except CfError as err:
            report(err_w, str(err), err.hint or "")
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else SETUP_FAILED
        except BaseException as err:  # noqa: BLE001 - a child must never print a traceback
            report(err_w, f"{type(err).__name__}: {err}")
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    os.close(err_w)
    failure: Exception | None = None
    try:
        ok = os.read(ready_r, 1) == b"1"
        os.close(ready_r)
        if ok:
            try:
                write_maps(pid, idmap)
                os.write(go_w, b"1")
            except (CfError, OSError) as err:  # the child's own report may say why, see below
                ok, failure = False, err
    except BaseException:
        kill_and_reap(pid)
        os.close(go_w)
        os.close(err_r)
        raise
    os.close(go_w)  # without b"1" first, the child gives up
    if not ok:
        wait_child(pid)
        reports = read_reports(err_r)
        os.close(err_r)
        raise_reports(reports)  # what failed in the child (meanwhile) explains ours
        if failure is not None:
            raise failure
        raise CfError("the namespace child exited before it was ready")
    return pid, err_r


def become_namespace_root() -> None:
    """Take the namespace's id 0 as real, effective and saved ids, and no supplementary groups.

    After unshare the process still holds the ids it had outside. For real root those are host
    uid/gid 0, which the map does not cover (idmap.py): file access and host-wide /proc/sys checks
    would still see host root, and root's supplementary groups would still open group-root files."""
    try:
        os.setgroups([])
    except OSError:
        pass  # single-id rootless: setgroups is denied, and the caller's groups are its own anyway
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def raise_reports(reports: list[Report]) -> None:
    """Raise the first setup error; print payload exec failures (their exit status stands)."""
    for item in reports:
        if item.kind == "exec":
            print(CfError(item.message, hint=item.hint or None).render(), file=sys.stderr, flush=True)
    for item in reports:
        if item.kind == "userns":
            from chrootforge.sandbox.blocked import userns_blocked_error

            raise userns_blocked_error(int(item.message))
        if item.kind == "error":
            raise CfError(item.message, hint=item.hint or None)
