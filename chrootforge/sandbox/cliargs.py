"""Parse the sandbox command-line values (--bind, --tmpfs, --env, --repo) into config values.

Host paths come back as absolute, symlink-free strings (os.path.realpath: pathlib costs an import).
"""

from __future__ import annotations

import os

from chrootforge.errors import UsageError
from chrootforge.rootpath import check_inside_path
from chrootforge.sandbox.config import Bind, Tmpfs


def _must_exist(path: str, what: str) -> None:
    """A usage error naming `what` when path is missing or cannot be reached."""
    try:
        os.stat(path)
    except FileNotFoundError as err:
        raise UsageError(f"{what} does not exist") from err
    except OSError as err:
        raise UsageError(f"{what}: cannot access it: {err.strerror}") from err


def parse_bind(text: str) -> Bind:
    """SRC:DST[:ro|rw] -> Bind (SRC must exist; DST absolute inside the root, no `..`)."""
    parts = text.split(":")
    mode = "rw"
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        mode = parts[2]
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UsageError(f"malformed --bind {text!r}: expected SRC:DST or SRC:DST:ro")
    src = parts[0]
    _must_exist(src, f"--bind {text!r}: source {src}")
    dst = check_inside_path(parts[1], f"--bind {text!r}: target")
    return Bind(os.path.realpath(src), dst, readonly=(mode == "ro"))


def parse_tmpfs(text: str) -> Tmpfs:
    """DST[:SIZE] -> Tmpfs."""
    dst, _, size = text.partition(":")
    if not dst or (":" in size) or (_ and not size):
        raise UsageError(f"malformed --tmpfs {text!r}: expected DST or DST:SIZE (e.g. /tmp:1G)")
    if size and not (size.rstrip("kKmMgG%").isdigit()):
        raise UsageError(f"--tmpfs {text!r}: bad size {size!r} (e.g. 512M, 2G, 50%)")
    return Tmpfs(check_inside_path(dst, f"--tmpfs {text!r}: target"), size or None)


def parse_env(items: list[str]) -> dict[str, str]:
    from chrootforge.envvars import name_problem, value_problem

    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"malformed --env {item!r}: expected NAME=VALUE")
        problem = name_problem(key) or value_problem(key, value)
        if problem:
            raise UsageError(f"--env: {problem}", hint="write --env NAME=VALUE")
        env[key] = value
    return env


def parse_repo(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path or "/" in name or name in (".", ".."):
        raise UsageError(f"malformed --repo {text!r}: expected NAME=PATH (e.g. gentoo=/var/db/repos/gentoo)")
    if not os.path.isdir(path):
        raise UsageError(f"--repo {text!r}: {path} is not a directory")
    return name, os.path.realpath(path)


def parse_root(text: str) -> str:
    _must_exist(text, f"ROOTFS {text}")
    if not os.path.isdir(text):
        raise UsageError(f"ROOTFS {text} is not a directory")
    return os.path.realpath(text)
