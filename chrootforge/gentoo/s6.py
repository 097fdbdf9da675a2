"""s6 service directories for an image (pure).

Layout (the gentoo-bb/kubler style): /etc/service/NAME/{run,finish} and the scan dir /service with a
symlink per enabled service. PID 1 is `s6-svscan -t0 /service`. Since s6 2.11, s6-svscan handles
SIGTERM itself (it brings the supervision tree down and exits), which is what `podman stop` sends, so
no .s6-svscan/SIGTERM handler script is needed; stop_signal stays SIGTERM.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from chrootforge.spec.model import Service

SERVICE_DIR = "/etc/service"
SCAN_DIR = "/service"
SVSCAN_CMD = ("s6-svscan", "-t0", SCAN_DIR)


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute path inside the image
    kind: str  # "file" | "dir" | "symlink"
    content: str = ""  # file content, or the symlink target
    mode: int = 0o644


def _script(command: str) -> str:
    # The service's stderr joins stdout so `podman logs` shows both.
    return f"#!/bin/sh\nexec 2>&1\nexec {command}\n"


def service_entries(services) -> list[FileEntry]:
    """The files, dirs and links making up the service tree, parents before children."""
    if not services:
        return []
    out = [FileEntry(SERVICE_DIR, "dir", mode=0o755), FileEntry(SCAN_DIR, "dir", mode=0o755)]
    for svc in sorted(services, key=lambda s: s.name):
        base = f"{SERVICE_DIR}/{svc.name}"
        out.append(FileEntry(base, "dir", mode=0o755))
        out.append(FileEntry(f"{base}/run", "file", _script(svc.run), 0o755))
        if svc.finish:
            out.append(FileEntry(f"{base}/finish", "file", f"#!/bin/sh\n{svc.finish}\n", 0o755))
        out.append(FileEntry(f"{SCAN_DIR}/{svc.name}", "symlink", base))
    return out


def install_script(entries: list[FileEntry], root: str = "/emerge-root") -> str:
    """Shell creating the entries under `root` (run inside the builder, as the image's root)."""
    lines = ["set -eu"]
    for e in entries:
        target = shlex.quote(f"{root}{e.path}")
        if e.kind == "dir":
            lines.append(f"mkdir -p {target} && chmod {e.mode:o} {target}")
        elif e.kind == "symlink":
            lines.append(f"ln -sfn {shlex.quote(e.content)} {target}")
        else:
            lines.append(f"cat > {target} <<'CF_EOF'\n{e.content}CF_EOF")
            lines.append(f"chmod {e.mode:o} {target}")
    return "\n".join(lines) + "\n"


def all_services(images: list) -> list[Service]:
    """Services of an image and its ancestors (a child inherits its parents' services)."""
    seen: dict[str, Service] = {}
    for image in images:
        for svc in image.services:
            seen[svc.name] = svc
    return list(seen.values())
