"""The mount plan: a pure list of steps that turns a rootfs into the sandbox's filesystem.

Targets are paths inside the new root; `create` says what to create there when missing. The executor
(chrootforge.sandbox.mounter) applies the steps in order inside the new mount namespace.
"""

from __future__ import annotations

import os

from chrootforge.errors import UsageError
from chrootforge.rootpath import check_inside_path
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.config import Bind, OverlayRoot, SandboxConfig, Tmpfs
from chrootforge.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.sandbox.config import HostPath

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
NET_FILES = ("/etc/resolv.conf", "/etc/hosts")
OVERLAY_OPTIONS = "userxattr,index=off,metacopy=off"


class MountStep(Value):
    """One operation of the plan.

    op: "private" (propagation of / private, recursively), "root" (bind or overlay-mount the new
    root at `host`), "mount" (a fresh filesystem), "bind" (host `source` onto target), "remount_ro"
    (make a bind read-only, keeping the flags the kernel locked), "symlink" (target -> source),
    "copy_file" (a private copy of host file `source` bound onto target), "pivot" (pivot_root into
    the new root and detach the old one).
    """

    __slots__ = (  # noqa: RUF023 - the fields' order
        "op",
        "target",
        "source",
        "fstype",
        "flags",
        "data",
        "create",
        "host",
        "fallback",
    )
    op: str
    target: str
    source: str | None
    fstype: str | None
    flags: int
    data: str | None
    create: str | None  # "dir" | "file": created inside the root when missing
    host: str | None  # "root": where the new root is mounted on the host side
    fallback: str | None  # "mount": host path to rbind when a fresh mount is refused

    def __init__(
        self,
        op: str,
        target: str = "",
        source: str | None = None,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
        create: str | None = None,
        host: str | None = None,
        fallback: str | None = None,
    ) -> None:
        self._init(op, target, source, fstype, flags, data, create, host, fallback)

    @property
    def is_mount(self) -> bool:
        """Does this step add a mount point inside the sandbox?"""
        return self.op in ("root", "mount", "bind", "copy_file")


def root_mountpoint(root: HostPath | OverlayRoot) -> str:
    """Host path where the new root is assembled (an overlay is mounted over its top lower dir)."""
    if isinstance(root, OverlayRoot):
        return os.fspath(root.lower[0])
    return os.fspath(root)


def _root_step(root: HostPath | OverlayRoot, readonly: bool = False) -> MountStep:
    ro = sc.MS_RDONLY if readonly else 0
    if isinstance(root, OverlayRoot):
        if not root.lower:
            raise UsageError("an overlay root needs at least one lower directory")
        for path in (*root.lower, root.upper, root.work):
            if any(ch in os.fspath(path) for ch in ",:"):
                raise UsageError(f"overlay directory {path} contains ',' or ':' (unsupported)")
        lower = ":".join(os.fspath(p) for p in root.lower)
        data = f"lowerdir={lower},upperdir={root.upper},workdir={root.work},{OVERLAY_OPTIONS}"
        return MountStep("root", "/", "overlay", "overlay", ro, data, host=root_mountpoint(root))
    return MountStep(
        "root", "/", os.fspath(root), None, sc.MS_BIND | sc.MS_REC | ro, host=root_mountpoint(root)
    )


def _tmpfs(
    dst: str, mode: int, size: str | None = None, flags: int = sc.MS_NOSUID | sc.MS_NODEV, extra: str = ""
) -> MountStep:
    data = f"mode={mode:o}" + (f",size={size}" if size else "") + extra
    return MountStep("mount", dst, "tmpfs", "tmpfs", flags, data, create="dir")


def _bind(src, dst: str, readonly: bool, is_dir: bool) -> list[MountStep]:
    steps = [
        MountStep(
            "bind", dst, os.fspath(src), None, sc.MS_BIND | sc.MS_REC, create="dir" if is_dir else "file"
        )
    ]
    if readonly:
        steps.append(MountStep("remount_ro", dst))
    return steps


def _is_dir(path) -> bool:
    # Only decides whether to create a directory or a file as the target; a missing source is
    # reported by validate_sources() before the plan runs.
    return not os.path.exists(path) or os.path.isdir(path)


def plan_mounts(config: SandboxConfig) -> list[MountStep]:
    """The ordered mount steps for `config` (pure except for telling dir sources from files)."""
    single = config.idmap.single_id if config.idmap is not None else config.single_id
    steps = [MountStep("private"), _root_step(config.root, config.readonly_root)]
    # /proc fresh in the new pid namespace; masked /proc (some containers) refuses: rbind the host's.
    steps.append(
        MountStep(
            "mount",
            "/proc",
            "proc",
            "proc",
            sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
            create="dir",
            fallback="/proc",
        )
    )
    # /dev: device nodes cannot be created in a user namespace, so bind the host's harmless ones.
    steps.append(_tmpfs("/dev", 0o755, "64k", sc.MS_NOSUID | sc.MS_NOEXEC))
    steps += [MountStep("bind", f"/dev/{n}", f"/dev/{n}", None, sc.MS_BIND, create="file") for n in DEV_NODES]
    steps.append(
        MountStep(
            "mount",
            "/dev/pts",
            "devpts",
            "devpts",
            sc.MS_NOSUID | sc.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620",
            create="dir",
        )
    )
    steps.append(_tmpfs("/dev/shm", 0o1777, None, sc.MS_NOSUID | sc.MS_NODEV))
    steps += [MountStep("symlink", f"/dev/{name}", target) for name, target in DEV_LINKS]
    if config.sys == "ro":
        steps.append(
            MountStep(
                "mount",
                "/sys",
                "sysfs",
                "sysfs",
                sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                create="dir",
                fallback="/sys",
            )
        )
    elif config.sys != "none":
        raise UsageError(f"sys must be 'none' or 'ro', not {config.sys!r}")
    steps.append(_tmpfs("/run", 0o755))
    if config.network == "host":
        steps += [MountStep("copy_file", path, path, create="file") for path in NET_FILES]
    elif config.network != "none":
        raise UsageError(f"network must be 'none' or 'host', not {config.network!r}")
    for name in sorted(config.repos):
        if not name or "/" in name or name in (".", ".."):
            raise UsageError(f"bad repository name {name!r}")
        steps += _bind(config.repos[name], f"/var/db/repos/{name}", True, True)
    if config.portage_tmpfs_size is not None:
        owner = "" if single else ",uid=250,gid=250"  # portage:portage, like a real Gentoo
        steps.append(_tmpfs("/var/tmp/portage", 0o775, config.portage_tmpfs_size or None, extra=owner))
    for path, dst in ((config.distfiles, "/var/cache/distfiles"), (config.binpkgs, "/var/cache/binpkgs")):
        if path is not None:
            steps += _bind(path, dst, False, True)
    for bind in config.binds:
        dst = check_inside_path(bind.dst, "bind target")
        steps += _bind(bind.src, dst, bind.readonly, _is_dir(bind.src))
    for tmp in config.tmpfs:
        steps.append(_tmpfs(check_inside_path(tmp.dst, "tmpfs target"), tmp.mode, tmp.size))
    steps.append(MountStep("pivot"))
    return steps


def expected_mountpoints(steps: list[MountStep]) -> list[str]:
    """Inside paths that the plan mounts something on, in order (what mountinfo should list)."""
    return [step.target for step in steps if step.is_mount]


def validate_sources(config: SandboxConfig, idmap=None) -> None:
    """Fail early (UsageError) on a missing root or bind source, or (with `idmap`) one that the
    namespace's root could not reach, before any namespace exists."""
    root = config.root
    dirs = list(root.lower) + [root.upper, root.work] if isinstance(root, OverlayRoot) else [root]
    for path in dirs:
        if not os.path.exists(path):
            raise UsageError(f"root {path} does not exist")
        if not os.path.isdir(path):
            raise UsageError(f"root {path} is not a directory")
    sources: list[tuple[str, str | os.PathLike[str] | None]]
    sources = [(f"repository {n}", p) for n, p in config.repos.items()]
    sources += [("distfiles cache", config.distfiles), ("binpkgs cache", config.binpkgs)]
    sources += [(f"bind source for {b.dst}", b.src) for b in config.binds]
    for what, source in sources:
        if source is not None and not os.path.exists(source):
            raise UsageError(f"{what} {source} does not exist")
    if idmap is not None:
        from chrootforge.sandbox.mapped import check_reachable

        for what, source in [("root", p) for p in dirs] + sources:
            if source is not None:
                check_reachable(source, idmap, what)


__all__ = [
    "Bind",
    "MountStep",
    "Tmpfs",
    "expected_mountpoints",
    "plan_mounts",
    "root_mountpoint",
    "validate_sources",
]
