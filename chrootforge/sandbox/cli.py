"""`chrootforge run` and `chrootforge shell`: a command or a login shell inside the sandbox.

Registration stays light: the handlers import the sandbox only when they run.
"""

from __future__ import annotations


def _options(parser) -> None:
    parser.add_argument("--bind", action="append", default=[], metavar="SRC:DST[:ro]",
                        help="bind a host path into the sandbox (repeatable)")
    parser.add_argument("--tmpfs", action="append", default=[], metavar="DST[:SIZE]",
                        help="mount a tmpfs (repeatable)")
    parser.add_argument("--network", choices=("none", "host"), default="none",
                        help="none (default): own network namespace with only lo; host: share it")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="set an environment variable (the environment starts clean)")
    parser.add_argument("--repo", action="append", default=[], metavar="NAME=PATH",
                        help="bind an ebuild repository read-only at /var/db/repos/NAME")
    parser.add_argument("--portage-tmpfs", metavar="SIZE",
                        help="mount a tmpfs of SIZE (e.g. 4G, 50%%) at /var/tmp/portage")
    parser.add_argument("--distfiles", metavar="DIR", help="bind DIR at /var/cache/distfiles")
    parser.add_argument("--binpkgs", metavar="DIR", help="bind DIR at /var/cache/binpkgs")
    parser.add_argument("--sys", choices=("none", "ro"), default="none",
                        help="mount /sys read-only (default: no /sys)")
    parser.add_argument("--cwd", default=None, metavar="DIR", help="working directory inside")
    parser.add_argument("--hostname", default="chrootforge")
    parser.add_argument("--single-id", action="store_true",
                        help="degraded mode without /etc/subuid: only id 0 exists inside")


def register(sub) -> None:
    import argparse

    run = sub.add_parser("run", help="run a command in a rootless sandbox on ROOTFS",
                         usage="%(prog)s ROOTFS [options] -- CMD...")
    _options(run)
    _log_options(run)
    run.add_argument("rest", nargs=argparse.REMAINDER, metavar="ROOTFS [options] -- CMD...")
    run.set_defaults(func=_run)
    shell = sub.add_parser("shell", help="an interactive login shell in the sandbox on ROOTFS",
                           usage="%(prog)s ROOTFS [options]")
    _options(shell)
    shell.add_argument("rest", nargs=argparse.REMAINDER, metavar="ROOTFS [options]")
    shell.set_defaults(func=_shell)


def _log_options(parser) -> None:
    parser.add_argument("--log", metavar="FILE", help="append the command's output to FILE")
    parser.add_argument("--tee", action="store_true", help="with --log: also show the output")


def _split(args, command: str, with_cmd: bool) -> list[str]:
    """argparse hands everything from ROOTFS on to `rest`; parse the options there (they may
    follow ROOTFS) and return the command after `--`."""
    import argparse

    rest = list(args.rest)
    if "--" in rest:
        cut = rest.index("--")
        head, cmd = rest[:cut], rest[cut + 1:]
    elif with_cmd:
        head, cmd = rest[:1], rest[1:]
    else:  # shell takes no command: its options may follow ROOTFS too
        head, cmd = rest, []
    parser = argparse.ArgumentParser(prog=f"chrootforge {command}")
    _options(parser)
    if with_cmd:
        _log_options(parser)
    parser.add_argument("rootfs", metavar="ROOTFS")
    parser.parse_args(head, namespace=args)
    if not with_cmd and cmd:
        parser.error(f"unexpected arguments: {' '.join(cmd)}")
    return cmd


def _config(args, argv: list[str], interactive: bool):
    from pathlib import Path

    from chrootforge.sandbox import cliargs
    from chrootforge.sandbox.config import SandboxConfig

    root = cliargs.parse_root(args.rootfs)
    repos = dict(cliargs.parse_repo(text) for text in args.repo)
    dirs = {}
    for name in ("distfiles", "binpkgs"):
        value = getattr(args, name)
        if value is not None:
            if not Path(value).is_dir():
                from chrootforge.errors import UsageError

                raise UsageError(f"--{name} {value} is not a directory")
            dirs[name] = Path(value).resolve()
    return SandboxConfig(
        root=root, argv=argv, env=cliargs.parse_env(args.env),
        cwd=args.cwd or ("/root" if interactive else "/"), hostname=args.hostname,
        network=args.network, binds=[cliargs.parse_bind(text) for text in args.bind],
        tmpfs=[cliargs.parse_tmpfs(text) for text in args.tmpfs], repos=repos,
        portage_tmpfs_size=args.portage_tmpfs, sys=args.sys, interactive=interactive,
        single_id=args.single_id, log_file=Path(args.log) if getattr(args, "log", None) else None,
        log_tee=getattr(args, "tee", False), **dirs)


def _guarded(handler):
    """OS errors (unreadable files, a log we cannot open) become one clear message."""

    def wrapper(args) -> int:
        try:
            return handler(args)
        except OSError as err:
            from chrootforge.errors import CfError

            where = f"{err.filename}: " if err.filename else ""
            raise CfError(f"{where}{err.strerror or err}") from None

    return wrapper


@_guarded
def _run(args) -> int:
    from chrootforge.errors import UsageError

    argv = _split(args, "run", with_cmd=True)
    if not argv:
        raise UsageError("no command given: chrootforge run ROOTFS [options] -- CMD...")
    if args.tee and not args.log:
        raise UsageError("--tee needs --log FILE")
    from chrootforge.sandbox.runner import run_sandboxed

    return run_sandboxed(_config(args, argv, interactive=False))


@_guarded
def _shell(args) -> int:
    import os

    from chrootforge.rootpath import executable_in_root
    from chrootforge.sandbox.runner import run_sandboxed

    _split(args, "shell", with_cmd=False)
    config = _config(args, ["/bin/sh", "-l"], interactive=True)
    for shell in ("/bin/bash", "/bin/sh"):
        if executable_in_root(os.fspath(config.root), shell):
            config.argv = [shell, "-l"]
            break
    home = "/root" if args.cwd is None else args.cwd
    config.env = {"HOME": "/root", "SHELL": config.argv[0], "PS1": r"(chrootforge) \w \$ ",
                  **config.env}
    config.cwd = home
    return run_sandboxed(config)
