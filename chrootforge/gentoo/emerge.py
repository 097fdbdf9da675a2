"""The emerge command lines (pure)."""

from __future__ import annotations

EMERGE_ROOT = "/emerge-root"
CF_MOUNT = "/cf"  # the build's scripts, hooks and generated /etc/portage files, inside the builder


def emerge_argv(packages, jobs: int) -> list[str]:
    """Install `packages` into the image root: binpkgs reused when their USE matches, else built
    (and packaged for the next time). `jobs` is [build] jobs: how many packages emerge builds at
    once (`build --jobs` is how many images chrootforge builds at once; each image's emerge
    takes [build] jobs)."""
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


def command_line(argv, env: dict[str, str] | None = None) -> str:
    """The emerge command as a shell line, with its environment (--plan, emerge.log, the shell)."""
    import shlex

    env = emerge_env() if env is None else env
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, argv)])


def emerge_env(root: str = EMERGE_ROOT) -> dict[str, str]:
    # SYSROOT stays "/": build-time deps (DEPEND) go to the throwaway builder, not the image.
    return {
        "ROOT": root,
        "PORTAGE_CONFIGROOT": "/",
        "CLEAN_DELAY": "0",
        "LC_ALL": "C.UTF-8",
        "NOCOLOR": "true",
    }
