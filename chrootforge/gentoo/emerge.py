"""The emerge command lines (pure)."""

from __future__ import annotations

EMERGE_ROOT = "/emerge-root"
CF_MOUNT = "/cf"  # the build's scripts, hooks and generated /etc/portage files, inside the builder


def emerge_argv(packages, jobs: int = 1) -> list[str]:
    """Install `packages` into the image root: binpkgs reused when their USE matches, else built
    (and packaged for the next time)."""
    return [
        "emerge",
        "--buildpkg",
        "--usepkg",
        "--binpkg-respect-use=y",
        "--verbose",
        "--color=n",
        "--nospinner",
        "--quiet-build=n",
        "--oneshot",
        f"--jobs={jobs}",
        *packages,
    ]


def emerge_env(root: str = EMERGE_ROOT) -> dict[str, str]:
    # SYSROOT stays "/": build-time deps (DEPEND) go to the throwaway builder, not the image.
    return {
        "ROOT": root,
        "PORTAGE_CONFIGROOT": "/",
        "CLEAN_DELAY": "0",
        "LC_ALL": "C.UTF-8",
        "NOCOLOR": "true",
    }
