"""Which helper calls of a hook are static (pure): the rule, applied to what the probe recorded.

A call is static, and may become a spec key, when all of these hold:

1. the hook function makes it itself, in its own shell: not a function it calls, not a subshell,
   pipeline or command substitution (the probe saw it at the hook's level, BASH_SUBSHELL 0);
2. it is a whole statement of the function's body: bash's own listing of the function
   (`declare -f`, bash's canonical form of what it parsed) has the call's simple command as a
   line of the body, so no `if`, `case`, loop, `&&` or `||` decides whether it runs;
3. both probe runs reach it, as often, with the same arguments. The runs differ in all the state a
   hook reads at build time: run A takes every test ([[ ]], [ ], test) of the hook as true and
   every command as succeeding with no output; run B evaluates the tests and makes every command
   fail with a line of output; variables that kubler's build container computes (_LIB, CHOST,
   CFLAGS, PKGDIR, BOB_HOST_UID, ...) differ. A call that an early `return` or `exit` may skip, or
   whose arguments come from a command, a file or such a variable, differs between the runs;
4. both runs of the hook ran to their end (no `exit`, no endless loop).

Everything else is dynamic: it stays in the hook, where the compatibility library performs it when
the image builds. Keeping a call is always correct; a key is only an improvement, so the rule errs
on the side of keeping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chrootforge.importers.kubler.recorded import Call, Command, HookRun, UnitProbe

TRIVIAL = (":", "true", "return", "return 0")  # commands that do nothing a hook must keep


@dataclass(frozen=True)
class Finding:
    call: Call
    static: bool
    why: str  # why it is dynamic ("" when static)


@dataclass(frozen=True)
class HookAnalysis:
    hook: str
    findings: tuple[Finding, ...]
    commands: tuple[Command, ...]  # what the hook function ran itself, by line (both runs)
    completed: bool
    note: str  # how a run ended when it did not end normally


def top_statements(listing: str) -> set[str]:
    """The whole statements of a function body in bash's `declare -f` listing: bash prints each at
    four spaces of indentation, ending with `;` (the last without), compound commands spread over
    more lines and indented deeper."""
    out = set()
    for line in listing.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            out.add(line[4:].removesuffix(";"))
    return out


def analyze_hook(probe: UnitProbe, hook: str) -> HookAnalysis:
    runs = probe.runs_of(hook)
    a, b = runs.get("A"), runs.get("B")
    completed = bool(a and b and a.completed and b.completed)
    note = "" if completed else _ending(a, b)
    statements = top_statements(probe.listings.get(hook, ""))
    findings: list[Finding] = []
    a_calls = _by_site(a)
    b_calls = _by_site(b)
    for key in sorted(set(a_calls) | set(b_calls)):
        in_a, in_b = a_calls.get(key, []), b_calls.get(key, [])
        for i, call in enumerate(in_a or in_b):
            other = (in_b if in_a else in_a)[i] if i < len(in_b if in_a else in_a) else None
            findings.append(Finding(call, *_judge(call, other, in_a, in_b, statements, completed, note)))
    commands = _commands(a, b)
    return HookAnalysis(hook, tuple(findings), commands, completed, note)


def _judge(call, other, in_a, in_b, statements, completed, note) -> tuple[bool, str]:
    if not completed:
        return False, f"the probe of the hook did not run to its end ({note})"
    if not call.own:
        if call.subshell:
            return False, "made in a subshell, pipeline or command substitution"
        return False, f"made by the function {call.caller}, not by the hook itself"
    if call.command not in statements:
        return False, "a condition, loop or list of the hook decides whether it runs"
    if not in_a or not in_b:
        run = "A" if in_a else "B"
        return False, f"only one probe run made it (run {run}): the build container's state decides"
    if len(in_a) != len(in_b) or other is None:
        return False, "the probe runs made it a different number of times"
    if other.args != call.args or other.name != call.name:
        return False, "its arguments depend on the build container's state"
    return True, ""


def _by_site(run: HookRun | None) -> dict[tuple[str, int, str], list[Call]]:
    out: dict[tuple[str, int, str], list[Call]] = defaultdict(list)
    for call in run.calls if run else ():
        out[(call.file, call.line, call.name)].append(call)
    return out


def _commands(a: HookRun | None, b: HookRun | None) -> tuple[Command, ...]:
    seen: dict[tuple[str, int, str], Command] = {}
    for run in (a, b):
        for cmd in run.commands if run else ():
            seen.setdefault((cmd.file, cmd.line, cmd.text), cmd)
    return tuple(seen[k] for k in sorted(seen))


def _ending(a: HookRun | None, b: HookRun | None) -> str:
    for run in (a, b):
        if run is None:
            return "a probe run is missing"
        if not run.completed:
            how, status, line = run.end
            if how == "budget":
                return f"run {run.run} ran too many commands (an endless loop?)"
            if how == "exit":
                return f"run {run.run} called exit {status}" + (f" at line {line}" if line else "")
            return f"run {run.run} was stopped (status {status})"
    return ""


def needs_hook(analysis: HookAnalysis, applied: set[tuple[str, int, str]]) -> bool:
    """Whether anything of the hook is left to run once the calls in `applied` (file, line,
    command) are spec keys: another command, a dynamic call, or a hook the probe could not follow."""
    if not analysis.completed:
        return True
    for cmd in analysis.commands:
        if cmd.text in TRIVIAL:
            continue
        if (cmd.file, cmd.line, cmd.text) in applied:
            continue
        return True
    return any(not f.static for f in analysis.findings)
