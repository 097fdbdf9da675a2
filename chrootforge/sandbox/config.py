"""What a sandbox run looks like, as plain values (validated by the mount plan).

Paths may be str or os.PathLike: the sandbox only hands them to os functions.
"""

from __future__ import annotations

from chrootforge.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import PathLike

    from chrootforge.platforms import Platform
    from chrootforge.sandbox.idmap import IdMap

    HostPath = str | PathLike[str]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Bind(Value):
    __slots__ = ("src", "dst", "readonly")  # noqa: RUF023 - the fields' order
    src: HostPath
    dst: str  # absolute path inside the sandbox
    readonly: bool

    def __init__(self, src: HostPath, dst: str, readonly: bool = False) -> None:
        self._init(src, dst, readonly)


class Tmpfs(Value):
    __slots__ = ("dst", "size", "mode")  # noqa: RUF023 - the fields' order
    dst: str
    size: str | None  # tmpfs size= option, e.g. "2G" or "50%"
    mode: int

    def __init__(self, dst: str, size: str | None = None, mode: int = 0o755) -> None:
        self._init(dst, size, mode)


class OverlayRoot(Value):
    """An overlayfs root: read-only lower dirs (first is topmost), the caller's upper and work."""

    __slots__ = ("lower", "upper", "work")
    lower: list[HostPath]
    upper: HostPath
    work: HostPath

    def __init__(self, lower: list[HostPath], upper: HostPath, work: HostPath) -> None:
        self._init(lower, upper, work)


class SandboxConfig:
    """One run's settings; callers adjust fields (argv, env, cwd) before run_sandboxed()."""

    __slots__ = (
        "argv",
        "binds",
        "binpkgs",
        "cwd",
        "distfiles",
        "domainname",
        "env",
        "hostname",
        "idmap",
        "interactive",
        "log_file",
        "log_tee",
        "network",
        "platform",
        "portage_tmpfs_size",
        "readonly_root",
        "repos",
        "root",
        "single_id",
        "sys",
        "tmpfs",
        "umask",
    )

    def __init__(
        self,
        root: HostPath | OverlayRoot,
        argv: list[str],
        env: dict[str, str] | None = None,  # None: a clean env with PATH/HOME/TERM defaults
        cwd: str = "/",
        hostname: str = "chrootforge",
        network: str = "none",  # "none": own netns with only lo up; "host": the host's
        binds: list[Bind] | None = None,
        tmpfs: list[Tmpfs] | None = None,
        repos: dict[str, HostPath] | None = None,  # bound read-only at /var/db/repos/NAME
        portage_tmpfs_size: str | None = None,  # tmpfs at /var/tmp/portage when set ("" = default)
        distfiles: HostPath | None = None,  # bound rw at /var/cache/distfiles
        binpkgs: HostPath | None = None,  # bound rw at /var/cache/binpkgs
        sys: str = "none",  # "none" or "ro"
        interactive: bool = False,  # a terminal session (shell): no forwarding of INT/QUIT
        log_file: HostPath | None = None,  # the payload's stdout+stderr go to this file (appended)
        log_tee: bool = False,  # with log_file: also copy the output to our stdout
        idmap: IdMap | None = None,  # None: detect_idmap()
        single_id: bool = False,  # with idmap=None: the degraded single-id map
        platform: Platform | None = None,  # the payload's, when it may not be this machine's
        # The root read-only, before anything is mounted on it: every mount target must already
        # exist there (nothing can be created), and only the tmpfs and binds on it are writable.
        readonly_root: bool = False,
        umask: int | None = None,  # the payload's umask (None: the caller's)
        domainname: str | None = None,  # the UTS namespace's domain name (None: the host's)
    ) -> None:
        self.root = root
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.hostname = hostname
        self.network = network
        self.binds = [] if binds is None else binds
        self.tmpfs = [] if tmpfs is None else tmpfs
        self.repos = {} if repos is None else repos
        self.portage_tmpfs_size = portage_tmpfs_size
        self.distfiles = distfiles
        self.binpkgs = binpkgs
        self.sys = sys
        self.interactive = interactive
        self.log_file = log_file
        self.log_tee = log_tee
        self.idmap = idmap
        self.single_id = single_id
        self.platform = platform
        self.readonly_root = readonly_root
        self.umask = umask
        self.domainname = domainname

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"SandboxConfig({fields})"

    def payload_env(self) -> dict[str, str]:
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "TERM": "dumb"}
        if self.env is not None:
            env.update(self.env)
        return env
