"""The options of `chrootforge run` and `chrootforge shell`, and the parser of their words.

`run` starts in the time budget of a few interpreter starts, and argparse (with the gettext, locale
and shutil modules it loads, and a gettext lookup per message) costs a large share of it. So these
two commands parse their own words from this table, and print their help from it; it follows
argparse's conventions: `--opt VALUE`, `--opt=VALUE`, unambiguous prefixes, `-h/--help`.
"""

from __future__ import annotations

from chrootforge.errors import UsageError

TYPE_CHECKING = False  # typing costs milliseconds to import; `run` avoids it (values.py)
if TYPE_CHECKING:
    from typing import Any

HELP = ("-h", "--help")


class Option:
    __slots__ = ("choices", "commands", "default", "help", "kind", "metavar", "name")

    def __init__(
        self,
        name: str,
        kind: str,
        metavar: str = "",
        help: str = "",
        choices: tuple[str, ...] = (),
        default: object = None,
        commands: tuple[str, ...] = ("run", "shell"),
    ) -> None:
        self.name = name
        self.kind = kind  # "append" (repeatable, a list), "value" (the last one wins), "flag"
        self.metavar = metavar or "{" + ",".join(choices) + "}"
        self.help = help
        self.choices = choices
        self.default = [] if kind == "append" else False if kind == "flag" else default
        self.commands = commands

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


OPTIONS = (
    Option("--bind", "append", "SRC:DST[:ro]", "bind a host path into the sandbox (repeatable)"),
    Option("--tmpfs", "append", "DST[:SIZE]", "mount a tmpfs (repeatable)"),
    Option(
        "--network",
        "value",
        help="none (default): own network namespace with only lo; host: share it",
        choices=("none", "host"),
        default="none",
    ),
    Option("--env", "append", "K=V", "set an environment variable (the environment starts clean)"),
    Option("--repo", "append", "NAME=PATH", "bind an ebuild repository read-only at /var/db/repos/NAME"),
    Option("--portage-tmpfs", "value", "SIZE", "mount a tmpfs of SIZE (e.g. 4G, 50%) at /var/tmp/portage"),
    Option("--distfiles", "value", "DIR", "bind DIR at /var/cache/distfiles"),
    Option("--binpkgs", "value", "DIR", "bind DIR at /var/cache/binpkgs"),
    Option(
        "--sys",
        "value",
        help="mount /sys read-only (default: no /sys)",
        choices=("none", "ro"),
        default="none",
    ),
    Option(
        "--platform",
        "value",
        "OS/ARCH[/VARIANT]",
        "the root's platform, e.g. linux/arm64: a foreign one runs under QEMU's static emulator, "
        "registered in the sandbox's own binfmt_misc",
    ),
    Option("--cwd", "value", "DIR", "working directory inside (default: / for run, /root for shell)"),
    Option(
        "--hostname", "value", "NAME", "the sandbox's host name (default: chrootforge)", default="chrootforge"
    ),
    Option("--single-id", "flag", help="degraded mode without /etc/subuid: only id 0 exists inside"),
    Option("--log", "value", "FILE", "append the command's output to FILE", commands=("run",)),
    Option("--tee", "flag", help="with --log: also show the output", commands=("run",)),
)

SUMMARY = {
    "run": "run a command in a rootless sandbox on ROOTFS",
    "shell": "an interactive login shell in the sandbox on ROOTFS",
}
USAGE = {"run": "chrootforge run ROOTFS [options] -- CMD...", "shell": "chrootforge shell ROOTFS [options]"}


class Parsed:
    """The words of a command: option values by dest, ROOTFS and the command after it."""

    __slots__ = ("argv", "help", "rootfs", "values")

    def __init__(self, values: dict, rootfs: str | None, argv: list[str], help: bool) -> None:
        self.values = values
        self.rootfs = rootfs
        self.argv = argv
        self.help = help


def parse(command: str, words: list[str]) -> Parsed:
    """Parse what follows `chrootforge COMMAND`. Options and ROOTFS come before `--`, the command
    after it; without `--`, everything after ROOTFS is the command (`run` only). UsageError on bad
    words; Parsed.help when -h/--help asked for the help instead."""
    options = {o.name: o for o in OPTIONS if command in o.commands}
    values: dict[str, Any] = {o.dest: ([] if o.kind == "append" else o.default) for o in options.values()}
    cut = words.index("--") if "--" in words else None
    head = words if cut is None else words[:cut]
    argv = [] if cut is None else words[cut + 1 :]
    positionals: list[str] = []
    at = 0
    while at < len(head):
        word = head[at]
        at += 1
        if word == "-" or not word.startswith("-"):
            positionals.append(word)
            if cut is None and command == "run":  # ROOTFS, then the command itself
                argv = head[at:]
                break
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        name = _resolve(command, name, [*HELP, *options])
        if name in HELP:
            return Parsed(values, None, [], help=True)
        option = options[name]
        if option.kind == "flag":
            if eq:
                raise _error(command, f"argument {name}: ignored explicit argument {value!r}")
            values[option.dest] = True
            continue
        if not eq:
            if at == len(head):
                raise _error(command, f"argument {name}: expected one argument")
            value = head[at]
            at += 1
        if not value:
            raise _error(command, f"argument {name}: an empty value")
        if option.choices and value not in option.choices:
            raise _error(
                command,
                f"argument {name}: invalid choice: {value!r} (choose from "
                + ", ".join(repr(c) for c in option.choices)
                + ")",
            )
        if option.kind == "append":
            values[option.dest].append(value)
        else:
            values[option.dest] = value
    if not positionals:
        raise _error(command, "the following arguments are required: ROOTFS")
    if not positionals[0]:
        raise _error(command, "ROOTFS is empty")
    extra = positionals[1:] + (argv if command == "shell" else [])
    if extra:
        raise _error(command, f"unexpected arguments: {' '.join(extra)}")
    return Parsed(values, positionals[0], argv, help=False)


def _resolve(command: str, word: str, names: list[str]) -> str:
    """The option `word` names: itself, or the one option it is an unambiguous prefix of."""
    if word in names:
        return word
    matches = [name for name in names if word.startswith("--") and name.startswith(word)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise _error(command, f"ambiguous option: {word} could match {', '.join(matches)}")
    raise _error(command, f"unrecognized arguments: {word}")


def _error(command: str, message: str) -> UsageError:
    return UsageError(message, hint=f"usage: {USAGE[command]} (see chrootforge {command} --help)")


def help_text(command: str) -> str:
    lines = [f"usage: {USAGE[command]}", "", SUMMARY[command], "", "options:"]
    rows = [("-h, --help", "show this help message and exit")]
    rows += [
        (o.name if o.kind == "flag" else f"{o.name} {o.metavar}", o.help)
        for o in OPTIONS
        if command in o.commands
    ]
    for invocation, text in rows:
        if len(invocation) <= 20:
            lines.append(f"  {invocation:<22}{text}")
        else:
            lines += [f"  {invocation}", f"{'':24}{text}"]
    return "\n".join(lines) + "\n"
