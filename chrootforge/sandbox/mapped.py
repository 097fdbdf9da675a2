"""run_mapped: a host command in a new user + mount namespace with the full id map (no pivot).

Used to extract stages, write layers from trees owned by sub-ids, and delete such trees.
"""

from __future__ import annotations

import os
import sys

from chrootforge.errors import CfError
from chrootforge.sandbox import syscalls, userns
from chrootforge.sandbox.idmap import IdMap, detect_idmap


def run_mapped(argv: list[str], idmap: IdMap | None = None, cwd=None,
               env: dict | None = None) -> int:
    """Run argv as id 0 of a mapped user namespace; returns its exit status (or 128+signal)."""
    if not argv:
        raise CfError("run_mapped: empty command")
    idmap = idmap or detect_idmap()
    argv = [os.fspath(a) for a in argv]
    environ = dict(os.environ if env is None else env)

    def child(err_fd: int) -> None:
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
        except OSError as err:
            raise CfError(f"cannot create a mount namespace: {os.strerror(err.errno)}") from None
        # Nothing mounted in here may propagate back to the host.
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        if cwd is not None:
            os.chdir(cwd)
        userns.close_inherited_fds(err_fd)
        try:
            os.execvpe(argv[0], argv, environ)
        except OSError as err:
            userns.report(err_fd, f"cannot run {argv[0]}: {err.strerror}", kind="exec")
            os._exit(127 if err.errno == 2 else 126)

    previous = userns.install_forwarding()
    try:
        pid, err_fd = userns.fork_into_userns(idmap, child)
    except BaseException:
        userns.restore_handlers(previous)
        raise
    try:
        code = userns.wait_child(pid)
    except BaseException:
        userns.kill_and_reap(pid)
        raise
    finally:
        userns.restore_handlers(previous)
    reports = userns.read_reports(err_fd)
    os.close(err_fd)
    userns.raise_reports(reports)
    return code


def remove_tree(path, idmap: IdMap | None = None) -> None:
    """rm -rf a tree whose files may belong to sub-ids (so only the mapped namespace may delete)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    code = run_mapped(["rm", "-rf", "--one-file-system", "--", path], idmap=idmap)
    if code != 0 or os.path.lexists(path):
        raise CfError(f"could not remove {path} (rm exited {code})")


def run_module_mapped(module: str, args: list, idmap: IdMap | None = None) -> int:
    """`python -m MODULE ARGS...` via run_mapped, with this chrootforge importable in the child
    (whatever the caller's sys.path trick was: a checkout, a venv, a test's staged copy)."""
    from pathlib import Path

    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return run_mapped([sys.executable, "-m", module, *map(os.fspath, args)], idmap=idmap, env=env)
