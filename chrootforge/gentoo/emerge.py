"""The emerge command lines (pure)."""

from __future__ import annotations

import shlex

EMERGE_ROOT = "/emerge-root"
CF_MOUNT = "/cf"  # the build's scripts, hooks and generated /etc/portage files, inside the builder
# PORTAGE_LOGDIR: with --jobs above 1 portage writes a package's build output only to its log, and
# ${T}/build.log is on the tmpfs that goes with the sandbox; the executor keeps these in logs/.
PACKAGE_LOGS = "package-logs"


def emerge_argv(packages, jobs: int) -> list[str]:
    """Install `packages` into the image root: binpkgs reused when their USE matches, else built
    (and packaged for the next time). `jobs` is [build] jobs: how many packages emerge builds at
    once (`build --jobs` is how many images chrootforge builds at once; each image's emerge
    takes [build] jobs)."""
    return ["emerge", *_common(jobs), *packages]


def builder_deps_argv(packages, jobs: int = 1) -> list[str]:
    """With ROOT=/, before package.provided names what the image root has: the build-time
    dependencies (DEPEND, BDEPEND) of `packages`, into the builder. A parent's package that a child
    compiles against is then in the builder (package.provided would hide it, and the parent's
    image has no headers), and a library that is both a build and a runtime dependency is compiled
    once: the image's own emerge takes the binpkg this run made."""
    return ["emerge", "--onlydeps", "--onlydeps-with-rdeps=n", *_common(jobs), *packages]


def _common(jobs: int) -> list[str]:
    return [
        "--buildpkg",
        "--usepkg",
        "--binpkg-respect-use=y",
        "--verbose",
        "--color=n",
        "--nospinner",
        "--quiet-build=n",
        "--oneshot",
        f"--jobs={jobs}",
    ]


def command_line(argv, env: dict[str, str] | None = None) -> str:
    """The emerge command as a shell line, with its environment (--plan, emerge.log, the shell)."""
    env = emerge_env() if env is None else env
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, argv)])


def emerge_env(root: str = EMERGE_ROOT) -> dict[str, str]:
    # SYSROOT stays "/": build-time deps (DEPEND) go to the throwaway builder, not the image.
    # (Every step also gets gentoo/repro.py's step_env: the epoch, TZ and the locale.)
    return {
        "ROOT": root,
        "PORTAGE_CONFIGROOT": "/",
        "CLEAN_DELAY": "0",
        "NOCOLOR": "true",
    }
