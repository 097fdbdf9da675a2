"""The sandbox: user/mount/pid/uts/ipc/net namespaces, id maps, the mount plan and PID 1.

Public names are loaded on first use (PEP 562), so that importing chrootforge.sandbox.cli to
register the commands costs nothing.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # the real names, so that mypy checks the calls made through this package
    from chrootforge.sandbox.config import Bind, OverlayRoot, SandboxConfig, Tmpfs
    from chrootforge.sandbox.idmap import IdMap, detect_idmap
    from chrootforge.sandbox.mapped import call_mapped, check_reachable, owned_dir, remove_tree, run_mapped
    from chrootforge.sandbox.mountplan import MountStep, plan_mounts
    from chrootforge.sandbox.overlay import overlay_supported
    from chrootforge.sandbox.runner import run_sandboxed

_EXPORTS = {
    "Bind": "config",
    "OverlayRoot": "config",
    "SandboxConfig": "config",
    "Tmpfs": "config",
    "IdMap": "idmap",
    "detect_idmap": "idmap",
    "call_mapped": "mapped",
    "check_reachable": "mapped",
    "owned_dir": "mapped",
    "remove_tree": "mapped",
    "run_mapped": "mapped",
    "overlay_supported": "overlay",
    "run_sandboxed": "runner",
    "MountStep": "mountplan",
    "plan_mounts": "mountplan",
}

__all__ = [
    "Bind",
    "IdMap",
    "MountStep",
    "OverlayRoot",
    "SandboxConfig",
    "Tmpfs",
    "call_mapped",
    "check_reachable",
    "detect_idmap",
    "overlay_supported",
    "owned_dir",
    "plan_mounts",
    "remove_tree",
    "run_mapped",
    "run_sandboxed",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chrootforge.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"chrootforge.sandbox.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
