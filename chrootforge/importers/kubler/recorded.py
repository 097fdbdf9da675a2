"""What the kubler probe recorded, as plain values (recorder.bash writes it, probe.parse reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SyntaxProblem:
    unit: str  # images/NAME, builder/NAME, or "" for kubler.conf
    file: str  # relative to the namespace
    message: str  # bash -n's own words


@dataclass(frozen=True)
class Frame:
    unit: str
    mode: str  # "vars" | "hook"
    run: str  # "A" | "B"
    hook: str
    status: int
    stderr: str
    records: list[list[str]]


@dataclass(frozen=True)
class Var:
    name: str
    kind: str  # "s" scalar, "a" array, "A" associative (keys and values alternate)
    values: tuple[str, ...]
    site: tuple[str, int] | None  # the file:line whose command last changed it; None: kubler's default

    @property
    def text(self) -> str:
        return " ".join(self.values) if self.kind != "s" else (self.values[0] if self.values else "")


@dataclass(frozen=True)
class Call:
    """A call of one of kubler's helpers."""

    hook: str  # the hook function being probed ("" while build.sh was sourced)
    run: str
    file: str
    line: int
    own: bool  # made by the hook function itself, in its own shell (not a function it called)
    subshell: int
    caller: str
    command: str  # the simple command bash ran for it (own calls only)
    name: str
    args: tuple[str, ...]

    @property
    def site(self) -> tuple[str, int]:
        return self.file, self.line


@dataclass(frozen=True)
class Command:
    """A simple command the hook function ran itself (or build.sh's top level, hook "")."""

    hook: str
    run: str
    file: str
    line: int
    subshell: int
    text: str


@dataclass(frozen=True)
class HookRun:
    hook: str
    run: str
    calls: tuple[Call, ...]
    commands: tuple[Command, ...]
    end: tuple[str, str, str]  # ("done" | "exit" | "budget" | "killed", status, last line)
    stderr: str

    @property
    def completed(self) -> bool:
        return self.end[0] == "done"


@dataclass
class UnitProbe:
    unit: str
    vars: dict[str, dict[str, dict[str, Var]]] = field(default_factory=dict)  # run -> dump -> name
    functions: dict[str, tuple[str, int]] = field(default_factory=dict)  # defined by build.sh
    listings: dict[str, str] = field(default_factory=dict)  # hook -> bash's `declare -f`
    hook_runs: list[HookRun] = field(default_factory=list)
    top_calls: list[Call] = field(default_factory=list)
    top_commands: list[Command] = field(default_factory=list)
    vars_end: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    stderr: dict[str, str] = field(default_factory=dict)

    def variables(self, dump: str, run: str = "A") -> dict[str, Var]:
        """`dump`: "default" (kubler's), "conf" (after build.conf), "sh" (after build.sh)."""
        return self.vars.get(run, {}).get(dump, {})

    def runs_of(self, hook: str) -> dict[str, HookRun]:
        return {r.run: r for r in self.hook_runs if r.hook == hook}
