"""`chrootforge run` and `chrootforge shell`: a command or a login shell inside the sandbox.

Both parse their own words (sandbox/runoptions.py), so that `run` never imports argparse: the
top-level CLI hands everything after the command name to handle_words(). Registration stays light:
the handlers import the sandbox only when they run.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds to import; `run` avoids it (values.py)
if TYPE_CHECKING:
    from chrootforge.sandbox.config import HostPath

OWN_WORDS = ("run", "shell")  # commands whose words chrootforge.cli passes on unparsed


def register(sub) -> None:
    from chrootforge.sandbox.runoptions import SUMMARY, USAGE

    for command in OWN_WORDS:
        # Only for the command list and the dispatch: handle_words() parses what follows.
        sub.add_parser(
            command, help=SUMMARY[command], description=SUMMARY[command], usage=USAGE[command], add_help=False
        )


def handle_words(command: str, words: list[str]) -> int:
    """Run `chrootforge COMMAND WORDS...` (command in OWN_WORDS)."""
    import sys

    from chrootforge.sandbox import runoptions as options

    parsed = options.parse(command, words)
    if parsed.help:
        sys.stdout.write(options.help_text(command))
        return 0
    try:
        return (_run if command == "run" else _shell)(parsed)
    except OSError as err:  # unreadable files, a log we cannot open: one clear message
        from chrootforge.errors import CfError

        where = f"{err.filename}: " if err.filename else ""
        raise CfError(f"{where}{err.strerror or err}") from err


def _config(parsed, argv: list[str], interactive: bool):
    import os

    from chrootforge.errors import UsageError
    from chrootforge.sandbox import cliargs
    from chrootforge.sandbox.config import SandboxConfig

    values = parsed.values
    root = cliargs.parse_root(parsed.rootfs)
    repos: dict[str, HostPath] = dict(cliargs.parse_repo(text) for text in values["repo"])
    dirs = {}
    for name in ("distfiles", "binpkgs"):
        value = values[name]
        if value is not None:
            if not os.path.isdir(value):
                raise UsageError(f"--{name} {value} is not a directory")
            dirs[name] = os.path.realpath(value)
    log_file = values.get("log")
    platform = None
    if values["platform"] is not None:
        from chrootforge.platforms import parse_platform

        platform = parse_platform(values["platform"], "--platform")
    return SandboxConfig(
        root=root,
        argv=argv,
        env=cliargs.parse_env(values["env"]),
        cwd=values["cwd"] or ("/root" if interactive else "/"),
        hostname=values["hostname"],
        network=values["network"],
        binds=[cliargs.parse_bind(text) for text in values["bind"]],
        tmpfs=[cliargs.parse_tmpfs(text) for text in values["tmpfs"]],
        repos=repos,
        portage_tmpfs_size=values["portage_tmpfs"],
        sys=values["sys"],
        interactive=interactive,
        single_id=values["single_id"],
        log_file=log_file,
        log_tee=values.get("tee", False),
        platform=platform,
        **dirs,
    )


def _run(parsed) -> int:
    from chrootforge.errors import UsageError

    if not parsed.argv:
        raise UsageError("no command given: chrootforge run ROOTFS [options] -- CMD...")
    if parsed.values["tee"] and not parsed.values["log"]:
        raise UsageError("--tee needs --log FILE")
    config = _config(parsed, parsed.argv, interactive=False)
    from chrootforge.sandbox.runner import run_sandboxed

    return run_sandboxed(config)


def _shell(parsed) -> int:
    import os

    from chrootforge.rootpath import executable_in_root
    from chrootforge.sandbox.runner import run_sandboxed

    config = _config(parsed, ["/bin/sh", "-l"], interactive=True)
    for shell in ("/bin/bash", "/bin/sh"):
        if executable_in_root(os.fspath(config.root), shell):
            config.argv = [shell, "-l"]
            break
    home = "/root" if parsed.values["cwd"] is None else parsed.values["cwd"]
    config.env = {"HOME": "/root", "SHELL": config.argv[0], "PS1": r"(chrootforge) \w \$ ", **config.env}
    config.cwd = home
    return run_sandboxed(config)
