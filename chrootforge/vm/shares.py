"""Host directories shared into the guest over 9p: `SRC:DST[:ro]`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from chrootforge.errors import UsageError

# Guest paths a share may not cover: the guest's own mounts and what its init uses (with everything
# below them), and top directories a share would hide.
RESERVED_TREES = ("/proc", "/sys", "/dev", "/run", "/scratch", "/opt/chrootforge", "/cf")
RESERVED_DIRS = (
    "/",
    "/bin",
    "/etc",
    "/home",
    "/home/cf",
    "/lib",
    "/opt",
    "/root",
    "/sbin",
    "/tmp",
    "/usr",
    "/var",
)


@dataclass(frozen=True)
class Share:
    source: Path  # a host directory
    dest: str  # an absolute guest path
    readonly: bool = True


def check_dest(dest: str, what: str) -> str:
    path = PurePosixPath(dest)
    if not path.is_absolute() or ".." in path.parts:
        raise UsageError(f"{what}: the guest path {dest!r} must be absolute, without '..'")
    norm = str(path)
    if norm in RESERVED_DIRS or any(norm == r or norm.startswith(r + "/") for r in RESERVED_TREES):
        raise UsageError(
            f"{what}: the guest path {norm} is the guest's own",
            hint="share it somewhere else, e.g. under /mnt or /srv",
        )
    return norm


def check_input_dir(path: Path) -> Path:
    """A host input the build shares at its own path: it may not cover the guest's own mounts."""
    norm = str(path)
    if norm == "/" or any(norm == r or norm.startswith(r + "/") for r in RESERVED_TREES):
        raise UsageError(
            f"--vm: the input {norm} cannot be shared at its own path in the guest",
            hint=f"move it out of {', '.join(RESERVED_TREES)}",
        )
    return path


def parse_share(text: str) -> Share:
    """`SRC:DST[:ro]` (read-write unless :ro) -> Share; the source must be a directory."""
    parts = text.split(":")
    readonly = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        readonly = parts[2] == "ro"
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UsageError(f"--share {text!r}: expected SRC:DST or SRC:DST:ro")
    source = Path(parts[0]).resolve()
    if not source.is_dir():
        raise UsageError(
            f"--share {text!r}: {source} is not a directory",
            hint="9p shares directories; share the folder that holds the file",
        )
    if not os.access(source, os.R_OK | os.X_OK) or (not readonly and not os.access(source, os.W_OK)):
        raise UsageError(f"--share {text!r}: {source} is not {'readable' if readonly else 'writable'} by you")
    return Share(source, check_dest(parts[1], f"--share {text!r}"), readonly)


def minimal_dirs(paths: list[Path]) -> list[Path]:
    """The directories of `paths`, dropping those inside another one of them, sorted."""
    out: list[Path] = []
    for path in sorted({p.resolve() for p in paths}, key=lambda p: (len(p.parts), str(p))):
        if not any(path == kept or kept in path.parents for kept in out):
            out.append(path)
    return sorted(out)
