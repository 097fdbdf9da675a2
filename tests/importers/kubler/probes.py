"""Hand-made probe records for the importer's pure tests (what recorder.bash would record)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chrootforge.importers.kubler.outcome import FileEntry, Folder
from chrootforge.importers.kubler.recorded import Call, Command, HookRun, UnitProbe, Var


@dataclass
class C:
    """A helper call in a hook: where, what, and how the two probe runs saw it."""

    line: int
    name: str
    args: tuple[str, ...]
    top: bool = True  # a whole statement of the hook (in bash's listing)
    own: bool = True
    subshell: int = 0
    b_args: tuple[str, ...] | None = None  # run B's arguments, when they differ
    runs: str = "AB"
    command: str = ""

    def text(self) -> str:
        return self.command or " ".join((self.name, *(f"'{a}'" for a in self.args)))


@dataclass
class U:
    unit: str
    conf: dict[str, str] = field(default_factory=dict)  # build.conf, line by line from 1
    sh: dict[str, str] = field(default_factory=dict)  # build.sh, line by line from 1
    sh_b: dict[str, str] = field(default_factory=dict)  # run B's values, when they differ
    hooks: dict[str, list] = field(default_factory=dict)  # hook -> [C | ("cmd", line, text)]
    ended: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # hook run -> end
    dockerfile: str = "FROM ${IMAGE_PARENT}\nADD rootfs.tar /\n"
    files: tuple[FileEntry, ...] = ()

    def probe(self, kubler_conf: dict[str, str]) -> UnitProbe:
        p = UnitProbe(self.unit)
        for run in "AB":
            conf = {
                n: Var(n, "s", (v,), ("kubler.conf", i + 1)) for i, (n, v) in enumerate(kubler_conf.items())
            }
            conf |= {
                n: Var(n, "s", (v,), (f"{self.unit}/build.conf", i + 1))
                for i, (n, v) in enumerate(self.conf.items())
            }
            sh = {}
            for i, (n, v) in enumerate(self.sh.items()):
                value = self.sh_b.get(n, v) if run == "B" else v
                sh[n] = Var(n, "s", (value,), (f"{self.unit}/build.sh", i + 1))
            for n, v in conf.items():
                if n.startswith("BOB_"):
                    sh[n] = v
            p.vars[run] = {"default": {}, "conf": conf, "sh": sh}
            p.vars_end[run] = ("done", "0", "")
            p.top_commands += [
                Command("", run, f"{self.unit}/build.conf", i + 1, 0, f'{n}="{v}"')
                for i, (n, v) in enumerate(self.conf.items())
            ]
            p.top_commands += [
                Command("", run, f"{self.unit}/build.sh", i + 1, 0, f'{n}="{v}"')
                for i, (n, v) in enumerate(self.sh.items())
            ]
        file = f"{self.unit}/build.sh"
        for hook, items in self.hooks.items():
            p.functions[hook] = (file, 100)
            listing = [f"{hook} () ", "{ "]
            for item in items:
                text = item.text() if isinstance(item, C) else item[2]
                top = item.top if isinstance(item, C) else True
                listing.append(("    " if top else "        ") + text + ";")
            p.listings[hook] = "\n".join([*listing, "}"])
            for run in "AB":
                calls, commands = [], []
                for item in items:
                    if isinstance(item, C):
                        if run not in item.runs:
                            continue
                        args = item.b_args if run == "B" and item.b_args is not None else item.args
                        if item.own and not item.subshell:
                            commands.append(Command(hook, run, file, item.line, 0, item.text()))
                        calls.append(
                            Call(
                                hook,
                                run,
                                file,
                                item.line,
                                item.own and not item.subshell,
                                item.subshell,
                                hook if item.own else "_a_function",
                                item.text() if item.own else "",
                                item.name,
                                args,
                            )
                        )
                    else:
                        commands.append(Command(hook, run, file, item[1], 0, item[2]))
                end = self.ended.get(f"{hook} {run}", ("done", "0", ""))
                p.hook_runs.append(HookRun(hook, run, tuple(calls), tuple(commands), end, ""))
        return p

    def folder(self) -> Folder:
        return Folder(self.unit, self.files, self.dockerfile if self.unit.startswith("images/") else None)


def namespace(*units: U, kubler_conf: dict[str, str] | None = None):
    conf = {"DEFAULT_BUILDER": "ns/bob"} if kubler_conf is None else kubler_conf
    return {u.unit: u.probe(conf) for u in units}, {u.unit: u.folder() for u in units}
