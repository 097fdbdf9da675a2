"""The job a guest runs, as the shell fragment its stage-2 init sources (vm/guest-init).

The fragment only assigns variables, defines `cf_mounts` and `cf_binfmt` and sets "$@" to the
command; every value is shell-quoted, so no argument, path or variable can inject anything into the
guest's init.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from chrootforge.vm.shares import Share

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_STATUS = re.compile(r"^chrootforge-vm: status (\d+)\s*$", re.MULTILINE)
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUEST_USER_UID = 1000  # the guest user's uid when the host caller is root


@dataclass(frozen=True)
class Job:
    argv: tuple[str, ...]
    uid: int  # the guest user's ids (the host caller's, 1000 for root)
    gid: int
    as_root: bool = False
    cwd: str = "/home/cf"
    env: tuple[tuple[str, str], ...] = ()
    shares: tuple[Share, ...] = ()
    binfmt: tuple[str, ...] = ()  # binfmt_misc registration lines the guest's root writes


def guest_ids(uid: int, gid: int) -> tuple[int, int]:
    """The guest user's ids: the host caller's (so shared files keep their permissions), 1000 for root."""
    return (uid, gid) if uid != 0 else (GUEST_USER_UID, GUEST_USER_UID)


def pycache_env(source_root: Path) -> tuple[tuple[str, str], ...]:
    """The guest reads the source from a read-only share: where it holds no compiled modules, let
    the guest's Pythons share one cache for the boot instead of each compiling everything anew."""
    if (source_root / "chrootforge" / "__pycache__").is_dir():
        return ()
    return (("PYTHONPYCACHEPREFIX", "/tmp/cf-pycache"),)


def share_tag(index: int) -> str:
    return f"cf{index}"


def command_argv(job: Job) -> list[str]:
    """The command with a clean environment: `env -i HOME=... PATH=... NAME=VALUE... CMD...`."""
    home = "/root" if job.as_root else "/home/cf"
    base = {
        "HOME": home,
        "PATH": GUEST_PATH,
        "LANG": "C.UTF-8",
        "USER": "root" if job.as_root else "cf",
        "CHROOTFORGE_VM_GUEST": "1",
    }
    for name, _ in job.env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"bad environment variable name {name!r}")
    if not job.argv or "=" in job.argv[0]:
        raise ValueError(f"bad command {job.argv[:1]!r}: it must be given and hold no '='")
    env = {**base, **dict(job.env)}
    return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *job.argv]


def job_script(job: Job) -> str:
    q = shlex.quote
    lines = [
        "# chrootforge vm job (sourced by /usr/lib/chrootforge-vm/guest-init)",
        f"CF_UID={int(job.uid)}",
        f"CF_GID={int(job.gid)}",
        f"CF_AS_ROOT={1 if job.as_root else 0}",
        f"CF_CWD={q(job.cwd)}",
        "cf_mounts() {",
        "    :",
    ]
    lines += [
        f"    cf_share {share_tag(i)} {'ro' if s.readonly else 'rw'} {q(s.dest)}"
        for i, s in enumerate(job.shares)
    ]
    lines += ["}", "cf_binfmt() {", "    :"]
    lines += [f"    cf_register {q(line)}" for line in job.binfmt]
    lines += ["}", "set -- " + " ".join(q(arg) for arg in command_argv(job))]
    return "\n".join(lines) + "\n"


def parse_status(console: str) -> int | None:
    """The status the guest's init printed before it wrote it to isa-debug-exit (the last one)."""
    found = _STATUS.findall(console)
    return int(found[-1]) if found else None
