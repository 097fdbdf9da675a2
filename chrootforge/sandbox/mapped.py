"""Work under the sandbox's id map on the host filesystem (a user + mount namespace, no pivot).

run_mapped(argv, idmap=None, cwd=None, env=None) -> exit status
    a host command as id 0 of the mapped namespace (extraction helpers, rm of sub-id trees).
call_mapped(idmap, func, *args, **kwargs) -> func's return value
    the one typed way to run Python work under the map (extract a stage, unpack a layer, probe
    overlayfs): a forked child enters the namespace, runs func and sends back its result or its
    exception (pickled), which call_mapped returns or raises. Its signature is func's (a
    ParamSpec), so mypy checks the arguments of every call against func, and the result has
    func's type; what slips past is a TypeError in the caller's traceback.
owned_dir(path, idmap) / remove_tree(path, idmap)
    directories the namespace writes into, and removal of trees it made (see idmap.py for who
    owns what when real root runs chrootforge).
"""

from __future__ import annotations

import os
import signal
import sys

from chrootforge.errors import CfError
from chrootforge.sandbox import syscalls, userns
from chrootforge.sandbox.idmap import IdMap, detect_idmap

TYPE_CHECKING = False  # typing costs `run`'s start a few milliseconds: for the type checker only
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")


def _enter_mount_ns() -> None:
    try:
        syscalls.unshare(syscalls.CLONE_NEWNS)
    except OSError as err:
        raise CfError(f"cannot create a mount namespace: {err.strerror or err}") from err
    # Nothing mounted in here may propagate back to the host.
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)


def _supervise(idmap: IdMap, child, on_started=None) -> int:
    """Fork `child` into the mapped namespace, forward signals to it, wait; its exit status."""
    previous = userns.install_forwarding()
    try:
        pid, err_fd = userns.fork_into_userns(idmap, child)
    except BaseException:
        userns.restore_handlers(previous)
        raise
    try:
        if on_started is not None:
            on_started()
        code = userns.wait_child(pid)
    except BaseException:
        userns.kill_and_reap(pid)
        os.close(err_fd)
        raise
    finally:
        userns.restore_handlers(previous)
    reports = userns.read_reports(err_fd)
    os.close(err_fd)
    userns.raise_reports(reports)
    return code


def run_mapped(argv: list[str], idmap: IdMap | None = None, cwd=None, env: dict | None = None) -> int:
    """Run argv as id 0 of a mapped user namespace; returns its exit status (or 128+signal)."""
    if not argv:
        raise CfError("run_mapped: empty command")
    idmap = idmap or detect_idmap()
    argv = [os.fspath(a) for a in argv]
    environ = dict(os.environ if env is None else env)

    def child(err_fd: int) -> None:
        _enter_mount_ns()
        if cwd is not None:
            os.chdir(cwd)
        userns.close_inherited_fds(err_fd)
        try:
            os.execvpe(argv[0], argv, environ)
        except OSError as err:
            userns.report(err_fd, f"cannot run {argv[0]}: {err.strerror}", kind="exec")
            os._exit(127 if err.errno == 2 else 126)

    return _supervise(idmap, child)


def call_mapped(idmap: IdMap | None, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """func(*args, **kwargs) as id 0 of a user namespace with `idmap` (None: detect_idmap());
    its result, or its exception. (The map comes first: a ParamSpec's *args and **kwargs must be
    the last parameters.)"""
    import pickle  # not at module level: `run` imports this module for check_reachable

    idmap = idmap or detect_idmap()
    result_r, result_w = os.pipe2(os.O_CLOEXEC)
    chunks: list[bytes] = []

    def child(_err_fd: int) -> None:
        os.close(result_r)
        for sig in userns.FORWARDED:  # forwarded to us by the parent: end the work, as exec would
            signal.signal(sig, signal.SIG_DFL)
        outcome: tuple[str, object]
        try:
            _enter_mount_ns()
            outcome = ("ok", func(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises it
            outcome = ("raise", err)
        try:
            data = pickle.dumps(outcome)
        except Exception as err:  # noqa: BLE001 - an unpicklable result or exception
            data = pickle.dumps(("raise", CfError(f"{_name(func)}: {outcome[1]!r} ({err})")))
        userns.write_all(result_w, data)
        os.close(result_w)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def collect() -> None:
        os.close(result_w)
        while chunk := os.read(result_r, 1 << 20):  # read before waiting: the child may block
            chunks.append(chunk)

    try:
        code = _supervise(idmap, child, collect)
    finally:
        for fd in (result_r, result_w):
            try:
                os.close(fd)
            except OSError:
                pass
    if not chunks:
        raise CfError(f"{_name(func)} died in the user namespace (exit status {code})")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "raise":
        raise value
    result: R = value  # what func returned (pickled by the child)
    return result


def _name(func) -> str:
    return getattr(func, "__qualname__", repr(func))


def runs_as_us(idmap: IdMap) -> bool:
    """Is id 0 of the namespace the calling user itself (rootless), so our files are its files?"""
    return idmap.host_uid == os.getuid()


def owned_dir(path, idmap: IdMap | None = None, mode: int = 0o755) -> None:
    """Create `path` (and parents) so that id 0 of the namespace may write into it.

    Rootless, that is us already. Real root's namespace root is another host id (idmap.py), so the
    directory is given to it; existing parents stay as they are."""
    idmap = idmap or detect_idmap()
    os.makedirs(path, mode=mode, exist_ok=True)
    if not runs_as_us(idmap) and os.getuid() == 0:
        os.chown(path, idmap.host_uid, idmap.host_gid)
        os.chmod(path, mode)


def check_reachable(path, idmap: IdMap, what: str, enter: bool = False) -> None:
    """Fail early, naming the directory and the fix, when id 0 of the namespace could not reach
    `path`: as root it is another host id, for which every directory on the way must be
    searchable (a 0700 /root, typically, is not). With `enter`, `path` itself is a directory
    the namespace works in, so it must be searchable too."""
    if runs_as_us(idmap):
        return
    uid, gid = idmap.host_uid, idmap.host_gid
    current = os.path.abspath(path)
    chain = []
    while True:
        chain.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(chain if enter else chain[1:]):
        try:
            st = os.stat(directory)
        except OSError:
            return  # a missing path is reported by whoever needs it, with its own words
        shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
        if not (st.st_mode >> shift) & 0o1:
            from chrootforge.errors import UsageError

            raise UsageError(
                f"{what} {path}: the sandbox's root (host uid {uid}) cannot reach it: "
                f"{directory} is not searchable by that uid",
                hint=f"chmod o+x {directory}, or keep it elsewhere (as root, chrootforge runs the sandbox "
                "as an unprivileged id range, never as host root; see README, Running as root)",
            )


def remove_tree(path, idmap: IdMap | None = None) -> None:
    """rm -rf a tree whose files may belong to sub-ids: real root removes it itself, anyone else
    from inside the mapped namespace (only its id 0 may delete sub-id files there)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    argv = ["rm", "-rf", "--one-file-system", "--", path]
    if os.getuid() == 0:
        import subprocess  # start-up speed: `run` imports this module, never this path

        code = subprocess.call(argv)
    else:
        code = run_mapped(argv, idmap=idmap)
    if code != 0 or os.path.lexists(path):
        raise CfError(f"could not remove {path} (rm exited {code})")
