"""run_sandboxed: the full sandbox (user, mount, pid, uts, ipc and net namespaces; pivot_root).

Processes: chrootforge (outside) -> child in the new user namespace, which unshares the other
namespaces and forks -> PID 1, which applies the mount plan, pivots, enters a nested user + mount
namespace that locks the mounts (the child writes its maps) and spawns -> the payload (init.py).
Each link dies with its parent (PR_SET_PDEATHSIG), and when PID 1 exits the kernel kills the rest,
so killing chrootforge leaves nothing behind. The child keeps the unlocked mount namespace, and
undoes in it what the plan created once PID 1 is gone.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

from chrootforge import log, rootpath
from chrootforge.errors import CfError
from chrootforge.sandbox import init, mounter, network, userns
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.config import SandboxConfig
from chrootforge.sandbox.idmap import detect_idmap
from chrootforge.sandbox.mountplan import plan_mounts, root_mountpoint, validate_sources
from chrootforge.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from chrootforge.sandbox.emulation import Emulation
    from chrootforge.sandbox.mountplan import MountStep


def run_sandboxed(config: SandboxConfig) -> int:
    if not config.argv:
        raise CfError("nothing to run in the sandbox (empty command)")
    validate_sources(config)
    steps = plan_mounts(config)
    idmap = config.idmap or detect_idmap(config.single_id)
    validate_sources(config, idmap)
    emulation = None
    if config.platform is not None:
        from chrootforge.sandbox import emulation as emulator  # only foreign-arch runs pay for it

        emulation = emulator.plan(config.platform)
    env = config.payload_env()
    if config.env is None or "TERM" not in config.env:
        env["TERM"] = os.environ.get("TERM", "dumb")
    argv = [os.fspath(a) for a in config.argv]
    use_pty = config.interactive and config.log_file is None and os.isatty(0) and os.isatty(1)
    if use_pty:
        from chrootforge.sandbox import ptyrelay  # noqa: F401 - loaded before PID 1 pivots
    hermetic = config.network == "none"
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if hermetic:
        flags |= sc.CLONE_NEWNET

    log_handle = None
    out_r = out_w = None
    if config.log_file is not None:
        log_handle = _open_log(config.log_file)
        if config.log_tee:
            out_r, out_w = os.pipe()
        else:
            out_w = os.dup(log_handle.fileno())
    notice_r, notice_w = os.pipe2(os.O_CLOEXEC)

    def namespaces() -> None:  # in the child, while we write its id map
        try:
            sc.unshare(flags)
        except OSError as err:
            raise CfError(
                f"cannot create the sandbox's mount/pid/uts/ipc/net namespaces: {err.strerror or err}",
                hint="a seccomp or LSM policy may allow user namespaces but not these; "
                "try --network host, or run the build inside a virtual machine",
            ) from err
        if hermetic:
            network.bring_up_loopback()

    def child(err_fd: int) -> None:
        os.close(notice_r)
        if out_r is not None:
            os.close(out_r)
        channels = _Channels.open()
        host_root = os.stat("/")
        # Our /proc, while it is still the host's: PID 1's pivot_root moves our root too, and the
        # sandbox's /proc names PID 1 by another number.
        host_proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        pid1 = userns.fork_forwarding()
        if pid1 == 0:
            channels.close_child_ends()
            os._exit(
                _pid1(_Pid1(config, steps, argv, env, use_pty, emulation, err_fd, out_w, notice_w, channels))
            )
        channels.close_pid1_ends()
        os.close(notice_w)
        if out_w is not None:
            os.close(out_w)
        made = userns.read_all(channels.made[0])  # PID 1 closes its end once the mounts are set up
        _map_nested(host_proc, pid1, idmap, channels)
        code = userns.wait_child(pid1)
        _leave_rootfs_as_found(steps, rootpath.decode_created(made), config, host_root)
        os._exit(code)

    previous = userns.install_forwarding()
    try:
        pid, err_fd = userns.fork_into_userns(idmap, child, meanwhile=namespaces)
    except BaseException:
        userns.restore_handlers(previous)
        for fd in (notice_r, notice_w, out_r, out_w):
            if fd is not None:
                os.close(fd)
        if log_handle:
            log_handle.close()
        raise
    os.close(notice_w)
    if out_w is not None:
        os.close(out_w)
    try:
        if out_r is not None:
            _tee(out_r, log_handle)
        code = userns.wait_child(pid)
    except BaseException:
        # We are not dying (PR_SET_PDEATHSIG would handle that) but giving up: take the
        # sandbox down rather than leave it running unattended.
        userns.kill_and_reap(pid)
        raise
    finally:
        userns.restore_handlers(previous)
        if log_handle:
            log_handle.close()
    for notice in userns.read_reports(notice_r, "the sandbox's setup"):
        log.notice(notice.message)
    os.close(notice_r)
    reports = userns.read_reports(err_fd, "the sandbox")
    os.close(err_fd)
    userns.raise_reports(reports)
    return code


def _open_log(path) -> BinaryIO:
    """The --log file, for appending. A FIFO that nobody reads is refused at once (O_NONBLOCK),
    never an open that waits for a reader."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as err:
        if err.errno == errno.ENXIO:
            raise CfError(f"cannot write the log {path}: it is a FIFO that nobody reads") from err
        raise CfError(f"cannot write the log {path}: {err.strerror}") from err
    os.set_blocking(fd, True)
    return os.fdopen(fd, "ab")


class _Channels(Value):
    """The pipes between the namespace child and PID 1: (read end, write end) of each."""

    __slots__ = ("life", "made", "ask", "answer")  # noqa: RUF023 - the fields' order
    # never written: PID 1 cannot use getppid() to see whether the child died before PID 1's
    # PR_SET_PDEATHSIG took effect (its parent is outside its pid namespace): it sees EOF here
    life: tuple[int, int]
    made: tuple[int, int]  # PID 1 -> child: what the mount plan created (rootpath.encode_created)
    ask: tuple[int, int]  # PID 1 -> child: init.ASK, "map my nested user namespace now"
    answer: tuple[int, int]  # child -> PID 1: one userns.Report, "ok" or an error saying why not

    def __init__(self, life, made, ask, answer) -> None:
        self._init(life, made, ask, answer)

    @classmethod
    def open(cls) -> _Channels:
        return cls(os.pipe(), os.pipe(), os.pipe(), os.pipe())

    def pid1_ends(self) -> tuple[int, int, int, int]:
        """life read, made write, ask write, answer read."""
        return self.life[0], self.made[1], self.ask[1], self.answer[0]

    def child_ends(self) -> tuple[int, int, int, int]:
        """life write, made read, ask read, answer write."""
        return self.life[1], self.made[0], self.ask[0], self.answer[1]

    def close_child_ends(self) -> None:
        for fd in self.child_ends():
            os.close(fd)

    def close_pid1_ends(self) -> None:
        for fd in self.pid1_ends():
            os.close(fd)


def _map_nested(host_proc: int, pid1: int, idmap, channels: _Channels) -> None:
    """In the namespace child: when PID 1 asks (it has entered its nested user namespace), map
    that namespace 1:1 onto ours, and answer with a Report: "ok", or an error saying why not."""
    ask_r, answer_w = channels.ask[0], channels.answer[1]
    if os.read(ask_r, 1) == init.ASK:
        try:
            userns.write_nested_maps(host_proc, pid1, idmap)
            answer = userns.Report("ok")
        except OSError as err:
            answer = userns.Report("error", err.strerror or str(err))
        try:
            userns.write_all(answer_w, answer.encode())
        except BrokenPipeError:
            pass  # PID 1 is gone already: its status tells why
    for fd in (ask_r, answer_w, host_proc):
        os.close(fd)


def _leave_rootfs_as_found(steps, created, config, host_root) -> None:
    """In the namespace child, after PID 1 has exited: it shares PID 1's mount namespace, and so
    its root is the sandbox's root since pivot_root (or, when the setup failed before the pivot, it
    enters that root itself). Step by step in reverse, unmount what the step mounted and take away
    what it had to create (rootpath.undo_created), so `run` leaves ROOTFS, and the sources of binds,
    as it found them. Nothing runs in the sandbox any more (the pid namespace died with PID 1)."""
    if not created:
        return
    try:
        if os.path.samestat(os.stat("/"), host_root):
            os.chroot(root_mountpoint(config.root))
            os.chdir("/")
        with rootpath.RootDir("/") as rd:
            for number in range(len(steps) - 1, 0, -1):
                step = steps[number]
                if step.is_mount and step.op != "root":
                    try:
                        sc.umount2(step.target, sc.MNT_DETACH)
                    except OSError:
                        pass
                rootpath.undo_created(rd, [c for c in created if c.step == number])
    except OSError:
        pass


class _Pid1(Value):
    """What PID 1 is given at its fork: the plan, the payload, and its ends of the pipes."""

    __slots__ = (  # noqa: RUF023 - the fields' order
        "config",
        "steps",
        "argv",
        "env",
        "use_pty",
        "emulation",
        "err_fd",
        "out_w",
        "notice_w",
        "channels",
    )
    config: SandboxConfig
    steps: list[MountStep]  # the mount plan (plan_mounts)
    argv: list[str]  # the payload
    env: dict[str, str]  # its environment
    use_pty: bool  # serve it through a pseudo-terminal (ptyrelay)
    emulation: Emulation | None  # the foreign arch's binfmt_misc handler to register (emulation.py)
    err_fd: int  # the error pipe (Reports) to chrootforge
    out_w: int | None  # the payload's stdout and stderr when --log is given
    notice_w: int  # the notice pipe (Reports) to chrootforge
    channels: _Channels  # the pipes to the namespace child (PID 1 closed the child's ends)

    def __init__(
        self, config, steps, argv, env, use_pty, emulation, err_fd, out_w, notice_w, channels
    ) -> None:
        self._init(config, steps, argv, env, use_pty, emulation, err_fd, out_w, notice_w, channels)


def _pid1(job: _Pid1) -> int:
    """PID 1 before the payload: die with our parent, set up the filesystem, lock it, then serve.

    With an emulation, PID 1 keeps the fd of the sandbox's binfmt_misc for its whole life (the
    payload never gets it: init.spawn closes every fd above stderr)."""
    config, err_fd, notice_w = job.config, job.err_fd, job.notice_w
    life_r, made_w, ask_w, answer_r = job.channels.pid1_ends()
    try:
        sc.set_pdeathsig(signal.SIGKILL)
        os.set_blocking(life_r, False)
        try:
            if os.read(life_r, 1) == b"":
                return userns.SETUP_FAILED  # our parent is already gone
        except BlockingIOError:
            pass
        os.close(life_r)
        sc.sethostname(config.hostname)
        if config.domainname is not None:
            sc.setdomainname(config.domainname)
        notices: list[str] = []
        created: list = []
        binfmt_fd = None
        try:
            if job.emulation is not None:  # while the host's files (the emulator) are in sight
                from chrootforge.sandbox import emulation as emulator

                binfmt_fd = emulator.install(job.emulation, notices)
            mounter.apply_plan(job.steps, notices, created)
        finally:
            userns.write_all(made_w, rootpath.encode_created(created))
            os.close(made_w)
        if binfmt_fd is not None:
            emulator.attach(binfmt_fd)
        for text in notices:
            userns.report(notice_w, text, kind="notice")
        os.close(notice_w)
        init.enter_locked(ask_w, answer_r)
        # The payload runs as the same uid: it must not be able to ptrace PID 1 or open its /proc
        # files (mm, environ, fds, root). Not earlier: our parent had to write our maps.
        sc.set_dumpable(False)
        if config.umask is not None:  # after the mount plan, whose targets keep the caller's
            os.umask(config.umask)
        try:
            # The caller's session keyring would let the payload use the keys in it (possession
            # grants them): the payload gets an empty one of its own.
            sc.join_new_session_keyring()
        except OSError:
            pass  # keyctl refused (a seccomp filter): then the payload cannot use it either
    except CfError as err:
        userns.report(err_fd, str(err), err.hint or "")
        return userns.SETUP_FAILED
    except OSError as err:
        userns.report(err_fd, f"sandbox setup failed: {err}")
        return userns.SETUP_FAILED
    if job.use_pty:
        from chrootforge.sandbox import ptyrelay  # already loaded by run_sandboxed

        return ptyrelay.serve(job.argv, job.env, config.cwd, err_fd)
    return init.serve(job.argv, job.env, config.cwd, err_fd, job.out_w)


def _tee(fd: int, log_handle) -> None:
    out = sys.stdout.buffer
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        log_handle.write(chunk)
        log_handle.flush()
        try:
            out.write(chunk)
            out.flush()
        except BrokenPipeError:
            pass
    os.close(fd)
