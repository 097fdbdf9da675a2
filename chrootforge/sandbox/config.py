"""What a sandbox run looks like, as plain values (validated by the mount plan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chrootforge.sandbox.idmap import IdMap

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Bind:
    src: Path
    dst: str  # absolute path inside the sandbox
    readonly: bool = False


@dataclass(frozen=True)
class Tmpfs:
    dst: str
    size: str | None = None  # tmpfs size= option, e.g. "2G" or "50%"
    mode: int = 0o755


@dataclass(frozen=True)
class OverlayRoot:
    """An overlayfs root: read-only lower dirs (first is topmost), the caller's upper and work."""

    lower: list[Path]
    upper: Path
    work: Path


@dataclass
class SandboxConfig:
    root: Path | OverlayRoot
    argv: list[str]
    env: dict[str, str] | None = None  # None: a clean env with PATH/HOME/TERM defaults
    cwd: str = "/"
    hostname: str = "chrootforge"
    network: str = "none"  # "none": own netns with only lo up; "host": the host's
    binds: list[Bind] = field(default_factory=list)
    tmpfs: list[Tmpfs] = field(default_factory=list)
    repos: dict[str, Path] = field(default_factory=dict)  # bound read-only at /var/db/repos/NAME
    portage_tmpfs_size: str | None = None  # tmpfs at /var/tmp/portage when set ("" = default size)
    distfiles: Path | None = None  # bound rw at /var/cache/distfiles
    binpkgs: Path | None = None  # bound rw at /var/cache/binpkgs
    sys: str = "none"  # "none" or "ro"
    interactive: bool = False  # a terminal session (shell): no signal forwarding of INT/QUIT
    log_file: Path | None = None  # stdout+stderr of the payload go to this file (appended)
    log_tee: bool = False  # with log_file: also copy the output to our stdout
    idmap: IdMap | None = None  # None: detect_idmap()
    single_id: bool = False  # with idmap=None: the degraded single-id map

    def payload_env(self) -> dict[str, str]:
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "TERM": "dumb"}
        if self.env is not None:
            env.update(self.env)
        return env
