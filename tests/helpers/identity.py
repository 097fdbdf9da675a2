"""Run chrootforge as root and as an unprivileged user with a subuid range (and one without).

When the suite runs as root, it creates the user `cftest` with /etc/subuid and /etc/subgid ranges and
stages a copy of the code that this user can read (the checkout may sit below a 0700 home). When the
suite runs unprivileged, the "root" identity is skipped and the "user" identity is the caller.

The "single" identity is a user with no /etc/subuid or /etc/subgid entry, who can only use
--single-id: as root, the suite creates `cfsingle` for it (and removes any range it has); run
unprivileged, it is the caller, whose commands pass --single-id anyway.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tests.world.cache import SHARED_TMP

REPO = Path(__file__).resolve().parents[2]
TEST_USER = "cftest"
SINGLE_USER = "cfsingle"  # no sub-ids: only --single-id works for it
SUBID_START = 300000
SUBID_COUNT = 65536


def _ensure_subid(path: str, user: str) -> None:
    """Give `user` a range unless it already has one (any start will do; the tests read the map)."""
    text = Path(path).read_text() if os.path.exists(path) else ""
    if any(line.split(":")[0] == user for line in text.splitlines()):
        return
    sep = "" if not text or text.endswith("\n") else "\n"  # some files lack the final newline
    with open(path, "a") as handle:
        handle.write(f"{sep}{user}:{SUBID_START}:{SUBID_COUNT}\n")


def _ensure_shared_tmp() -> None:
    SHARED_TMP.mkdir(parents=True, exist_ok=True)
    if SHARED_TMP.stat().st_uid == os.getuid():  # only its owner may (and needs to) open it up
        os.chmod(SHARED_TMP, 0o1777)


def _drop_subid(path: str, user: str) -> None:
    """Remove every range of `user` (useradd may have added one) by an atomic rewrite."""
    if not os.path.exists(path):
        return
    lines = Path(path).read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.split(":")[0] != user]
    if kept != lines:
        tmp = Path(f"{path}.cftest-tmp")
        tmp.write_text("".join(kept))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)


def ensure_test_user(name: str = TEST_USER) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        # no automatic sub-id ranges (login.defs SUB_UID_COUNT): the ranges are set below
        subprocess.run(
            [
                "useradd",
                "--create-home",
                "--shell",
                "/bin/sh",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
            ]
            + [name],
            check=True,
        )
        entry = pwd.getpwnam(name)
    for path in ("/etc/subuid", "/etc/subgid"):
        if name == SINGLE_USER:
            _drop_subid(path, name)
        else:
            _ensure_subid(path, name)
    runtime = Path(f"/run/user/{entry.pw_uid}")
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, entry.pw_uid, entry.pw_gid)
    runtime.chmod(0o700)
    return entry


def _copytree(src: Path, dst: Path) -> None:
    shutil.copytree(
        src,
        dst,
        symlinks=True,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"),
    )


# Every directory shared_dir() and Identity.mkdtemp() make, with who made it: removed when the
# session ends (those a test removed itself are skipped), so runs leave nothing in SHARED_TMP but
# the caches that are meant to last (world/, cache-<uid>/).
_MADE: list[tuple[str, Path]] = []


def shared_dir(prefix: str) -> Path:
    """A fresh world-readable directory under SHARED_TMP (where the test user can reach it)."""
    _ensure_shared_tmp()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SHARED_TMP))
    path.chmod(0o755)
    _MADE.append(("root" if os.getuid() == 0 else "user", path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _remove_test_dirs():
    yield
    from tests.helpers.rootfs import remove_as

    for name, path in reversed(_MADE):
        if path.exists():
            remove_as(get_identity(name), path)  # files of sub-ids go under the identity's map


def stage_user_env() -> Path:
    """A world-readable copy of the code and its dependencies, for the unprivileged test user.

    Each session gets its own copy (removed at exit), so concurrent sessions never race on it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="userenv.", dir=SHARED_TMP))
    atexit.register(shutil.rmtree, tmp, True)
    for name in ("chrootforge", "hooks", "examples", "vm"):
        if (REPO / name).exists():
            _copytree(REPO / name, tmp / "src" / name)
    shutil.copy(REPO / "pyproject.toml", tmp / "src" / "pyproject.toml")  # the vm guest's requirements
    _copytree(Path(sysconfig.get_paths()["purelib"]), tmp / "site")
    if Path(sysconfig.get_paths()["platlib"]) != Path(sysconfig.get_paths()["purelib"]):
        _copytree(Path(sysconfig.get_paths()["platlib"]), tmp / "site")
    for pth in (tmp / "site").glob("__editable__*"):
        pth.unlink()  # editable finders point back into the (maybe unreadable) checkout
    for root, _dirs, files in os.walk(tmp):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    os.chmod(tmp, 0o755)
    return tmp


@dataclasses.dataclass
class Identity:
    """Who runs a command: `root` (real root) or `user` (unprivileged with a subuid range)."""

    name: str
    uid: int
    gid: int
    home: str
    python: list[str]  # argv prefix that starts Python with chrootforge importable
    env: dict[str, str]

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def _wrap(self, argv: list[str]) -> list[str]:
        if self.uid == os.getuid():
            return argv
        env = [f"{k}={v}" for k, v in self.env.items()]
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--init-groups",
            "--",
            "env",
            "-i",
            *env,
            *argv,
        ]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 600)
        kwargs.setdefault("check", False)
        if self.uid == os.getuid():
            env = dict(os.environ)
            env.update(self.env)
            env.update(kwargs.pop("env", {}) or {})
            kwargs["env"] = env
            return subprocess.run(argv, **kwargs)  # noqa: PLW1510 - check is in kwargs
        extra = kwargs.pop("env", {}) or {}
        wrapped = self._wrap(["env", *[f"{k}={v}" for k, v in extra.items()], *argv])
        return subprocess.run(wrapped, **kwargs)  # noqa: PLW1510 - check is in kwargs

    def popen(self, argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
        if self.uid == os.getuid():
            full = dict(os.environ)
            full.update(self.env)
            full.update(env or {})
            return subprocess.Popen(argv, env=full, **kwargs)
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return subprocess.Popen(self._wrap(["env", *extra, *argv]), **kwargs)

    def cf_argv(self, *args: str) -> list[str]:
        return [*self.python, "-m", "chrootforge", *args]

    def cf(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run `chrootforge ARGS...` as this identity."""
        return self.run(self.cf_argv(*args), **kwargs)

    def mkdtemp(self, prefix: str = "t.") -> Path:
        """A fresh directory this identity owns, outside root's private pytest tmp."""
        _ensure_shared_tmp()
        # Hex names only: podman derives image names from oci: paths, and tempfile's `_` can make
        # them invalid references (`x._y`).
        while True:
            path = SHARED_TMP / f"{self.name}.{prefix}{secrets.token_hex(4)}"
            try:
                path.mkdir(mode=0o700)
                break
            except FileExistsError:
                continue
        os.chown(path, self.uid, self.gid) if os.getuid() == 0 else None
        if self.is_root:
            path.chmod(0o711)  # root's sandbox runs as an unprivileged range that must pass through
        _MADE.append((self.name, path))
        return path


_identities: dict[str, Identity] = {}
_staged: list[Path] = []


def _user_env() -> Path:
    """stage_user_env(), once for every unprivileged identity of the session."""
    if not _staged:
        _staged.append(stage_user_env())
    return _staged[0]


def _base_env(home: str, uid: int) -> dict[str, str]:
    return {
        "HOME": home,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "XDG_RUNTIME_DIR": f"/run/user/{uid}",
        "XDG_CACHE_HOME": str(SHARED_TMP / f"cache-{uid}"),
        "LANG": "C.UTF-8",
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "1700000000"),
    }


def get_identity(name: str) -> Identity:
    if name in _identities:
        return _identities[name]
    me = pwd.getpwuid(os.getuid())
    if name == "root":
        if os.getuid() != 0:
            pytest.skip("the suite runs unprivileged: the root identity is not available")
        ident = Identity("root", 0, 0, me.pw_dir, [sys.executable], {})
    elif os.getuid() == 0:
        entry = ensure_test_user(SINGLE_USER if name == "single" else TEST_USER)
        base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
                str(base),
                "-c",
                "pass",
            ],
            check=False,
            capture_output=True,
        )
        if probe.returncode != 0:
            pytest.skip(f"the test user cannot run {base}; create the venv with /usr/bin/python3")
        _ensure_shared_tmp()
        stage = _user_env()
        env = _base_env(entry.pw_dir, entry.pw_uid)
        env["PYTHONPATH"] = f"{stage / 'src'}:{stage / 'site'}"
        env["CHROOTFORGE_SRC"] = str(stage / "src")
        ident = Identity(name, entry.pw_uid, entry.pw_gid, entry.pw_dir, [str(base)], env)
    elif name == "single":
        ident = Identity(
            "single", me.pw_uid, me.pw_gid, me.pw_dir, [sys.executable], {"CHROOTFORGE_SRC": str(REPO)}
        )
    else:
        if not any(
            line.split(":")[0] in (me.pw_name, str(me.pw_uid))
            for line in Path("/etc/subuid").read_text().splitlines()
        ):
            pytest.skip(f"{me.pw_name} has no /etc/subuid range")
        ident = Identity(
            "user", me.pw_uid, me.pw_gid, me.pw_dir, [sys.executable], {"CHROOTFORGE_SRC": str(REPO)}
        )
    _identities[name] = ident
    return ident


@pytest.fixture(params=["root", "user"])
def identity(request) -> Identity:
    """Parametrizes a test over real root and an unprivileged user with a subuid range."""
    return get_identity(request.param)


@pytest.fixture
def root_identity() -> Identity:
    return get_identity("root")


@pytest.fixture
def user_identity() -> Identity:
    return get_identity("user")


@pytest.fixture
def single_identity() -> Identity:
    """A user without /etc/subuid or /etc/subgid ranges (as root: cfsingle; else the caller)."""
    return get_identity("single")
