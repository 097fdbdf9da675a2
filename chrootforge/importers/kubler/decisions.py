"""What becomes of each helper call of a kubler image's or builder's hooks (pure).

analysis.py tells static calls from dynamic ones; here each call becomes a key (where, and whether
its phase allows it), is dropped, or stays in the hook, and why. Calls that change one setting in
an order that matters (package.provided; one package's flags) stay together: keys are applied before
any hook runs, so when one of them must stay in a hook, the others stay with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chrootforge.atoms import atom_cp
from chrootforge.importers.kubler import analysis, settings
from chrootforge.importers.kubler.helpers import BY_NAME
from chrootforge.importers.kubler.outcome import PHASE_OF, SCRIPT, Entry, Site
from chrootforge.importers.kubler.recorded import Call, UnitProbe
from chrootforge.spec import checks


@dataclass(frozen=True)
class Decision:
    """A helper call and what becomes of it, before calls of one group are kept together."""

    hook: str
    phase: str
    call: Call
    source: str
    change: settings.Change | None  # when the call converts
    outcome: str  # a key, "dropped: ...", or "kept: why"
    group: str  # the setting it changes, where order matters ("provided", "use:ATOM"), or ""


def _group(call: Call, change: settings.Change | None) -> str:
    if call.name in ("provide_package", "unprovide_package"):
        return "provided"
    if call.name in ("update_use", "update_keywords"):
        if change is not None:
            return f"use:{change.atom}"
        atom = call.args[0] if call.args else ""
        return f"use:{atom}" if atom and not checks.atom(atom) else "use:*"
    return ""


def _kept(kind: str, phase: str) -> str:
    if kind == "builder" and phase != "configure_builder":
        return "omitted (a builder's rootfs hooks do not run for its images)"
    return f"kept in the {phase} hook ({SCRIPT})"


def _in(group: str, groups: set[str] | frozenset[str]) -> bool:
    if not group:
        return False
    return group in groups or (group.startswith("use:") and "use:*" in groups)


@dataclass
class Decided:
    """What a unit's hooks come to (see _Mapper._decide)."""

    own: settings.Settings = field(default_factory=settings.Settings)  # provided..runtime_libs
    own_portage: list[settings.Change] = field(default_factory=list)  # its configure-phase settings
    heads: settings.Settings = field(default_factory=settings.Settings)  # a builder's provided
    inherit: list[tuple[Site, str, settings.Change]] = field(default_factory=list)  # for the chain
    applied: list[str] = field(default_factory=list)  # FUNCTION:LINE:HELPER
    kept: list[str] = field(default_factory=list)  # the hooks that stay
    entries: list[Entry] = field(default_factory=list)


class Decisions:
    """The decisions of every unit of a namespace, computed once each."""

    def __init__(self, probes: dict[str, UnitProbe]):
        self.probes = probes
        self.analyses = {
            unit: {r.hook: analysis.analyze_hook(p, r.hook) for r in p.hook_runs}
            for unit, p in probes.items()
        }
        self.repos: dict[str, tuple[Site, str]] = {}  # add_overlay calls that became [repos]
        self._decided: dict[tuple[str, frozenset[str]], Decided] = {}
        self._decisions: dict[str, list[Decision]] = {}

    def hooks_of(self, unit: str) -> dict[str, analysis.HookAnalysis]:
        return self.analyses.get(unit, {})

    def decisions(self, unit: str) -> list[Decision]:
        """What becomes of each helper call of a unit's hooks, before ordering (computed once)."""
        if unit not in self._decisions:
            self._decisions[unit] = self._decide(unit)
        return self._decisions[unit]

    def decided(self, unit: str, dirty: frozenset[str] = frozenset()) -> Decided:
        """The unit's decisions settled: calls in a group that a kept call changes too stay in the
        hook (`dirty` adds groups that hooks run before these change, e.g. the chain's)."""
        key = (unit, dirty)
        if key not in self._decided:
            self._decided[key] = self._settle(unit, self.decisions(unit), dirty)
        return self._decided[key]

    def _decide(self, unit: str) -> list[Decision]:
        kind = "builder" if unit.startswith("builder/") else "image"
        packages = self.package_cps(unit)
        out = []
        for hook, result in self.hooks_of(unit).items():
            phase = PHASE_OF[hook]
            for finding in result.findings:
                call = finding.call
                source = call.command or " ".join((call.name, *call.args))
                helper = BY_NAME[call.name]
                change: settings.Change | None = None
                if not finding.static:
                    outcome = f"kept: {finding.why}"
                elif helper.effect == "drop":
                    outcome = f"dropped: {helper.key}"
                elif helper.effect == "hook":
                    outcome = f"kept: {call.name} has no spec key"
                else:
                    converted = settings.convert(call.name, call.args)
                    if isinstance(converted, str):
                        outcome = f"kept: {converted}"
                    else:
                        change = converted
                        outcome = self.where_to(kind, phase, change, packages)
                out.append(Decision(hook, phase, call, source, change, outcome, _group(call, change)))
        return out

    def where_to(self, kind: str, phase: str, change: settings.Change, packages: set[str]) -> str:
        """The key a static change becomes, or "kept: why" when it stays in the hook."""
        portage = change.kind in ("use", "mask", "unmask")
        if change.kind == "repo":
            repo_id, url = change.items[0], change.items[1] if len(change.items) > 1 else ""
            return (
                f'[repos] {repo_id} = "repos/{repo_id}" in chrootforge.toml: check out {url or repo_id} there'
            )
        if kind == "builder":
            if phase != "configure_builder":
                return "kept: a builder's rootfs hooks do not run for its images"
            if portage:
                return f"{key_text(change)} of every image built in this builder"
            if change.kind in ("provide", "unprovide"):
                return f"`{key_name(change)}` of the images that start a chain with this builder"
            return "kept: it runs before an image's emerge in kubler"
        if phase == "post_emerge":
            if portage:
                return "kept: it runs after this image's emerge (its children get it as a key)"
            if change.kind in ("uninstall", "runtime_libs"):
                extra = (
                    " (force_uninstall = true: kubler's emerge -C checks nothing)"
                    if change.kind == "uninstall"
                    else ""
                )
                return f"`{key_name(change)}`{extra}"
            return "kept: it runs after the image's emerge in kubler"
        if change.kind in ("uninstall", "runtime_libs"):
            return "kept: it runs before the image's emerge in kubler; the key runs after post_emerge"
        if change.kind == "provide":
            clash = [item for item in change.items if item in packages]
            if clash:
                return f"kept: {clash[0]} is in _packages too (chrootforge refuses both)"
        return key_text(change)

    def _settle(self, unit: str, decisions: list[Decision], dirty: frozenset[str]) -> Decided:
        kind = "builder" if unit.startswith("builder/") else "image"
        out = Decided()
        # Calls of one group (package.provided; one package's flags) that stay in a hook run after
        # every key: the others of that group stay with them, so their order is kubler's.
        kept_groups: dict[str, set[str]] = {}
        for d in decisions:
            if d.outcome.startswith("kept") and d.group and d.phase != "post_emerge":
                kept_groups.setdefault(d.hook, set()).add(d.group)
        own_dirty = set(dirty) | {g for d in decisions for g in kept_groups.get(d.hook, set())}
        applied_sites: dict[str, set[tuple[str, int, str]]] = {}
        for d in decisions:
            call = d.call
            outcome = d.outcome
            if kind == "builder" and d.phase != "configure_builder":
                outcome = "kept"
            elif not outcome.startswith("kept") and d.change is not None and _in(d.group, own_dirty):
                outcome = (
                    "kept: a call that stays in a hook changes the same setting; a key would reorder them"
                )
            if outcome.startswith("kept"):
                # still left in the builder for the descendants, unless the hook runs again in
                # their builds (a configure_builder hook)
                if (
                    d.change is not None
                    and d.change.kind in ("use", "mask", "unmask")
                    and d.phase != "configure_builder"
                ):
                    out.inherit.append((call.site, d.source, d.change))
                out.entries.append(Entry(call.site, d.source, _kept(kind, d.phase) + outcome[4:]))
                continue
            out.applied.append(f"{d.hook}:{call.line}:{call.name}")
            applied_sites.setdefault(d.hook, set()).add((call.file, call.line, call.command))
            out.entries.append(Entry(call.site, d.source, outcome))
            change = d.change
            if change is None:
                continue
            if change.kind == "repo":
                self.repos.setdefault(
                    change.items[0], (call.site, change.items[1] if len(change.items) > 1 else "")
                )
            elif change.kind in ("use", "mask", "unmask"):
                out.inherit.append((call.site, d.source, change))
                if kind == "image":
                    out.own_portage.append(change)
            elif kind == "builder":
                out.heads.apply(change)
            else:
                out.own.apply(change)
        for hook, result in self.hooks_of(unit).items():
            phase = PHASE_OF[hook]
            done = applied_sites.get(hook, set())
            calls_at = {(f.call.file, f.call.line, f.call.command) for f in result.findings}
            for cmd in result.commands:
                key = (cmd.file, cmd.line, cmd.text)
                if cmd.text in analysis.TRIVIAL or key in done or key in calls_at:
                    continue
                out.entries.append(
                    Entry((cmd.file, cmd.line), cmd.text, f"{_kept(kind, phase)}: not a kubler helper")
                )
            site = self.probes[unit].functions.get(hook)
            if not result.completed:
                out.entries.append(Entry(site, f"{hook}()", f"{_kept(kind, phase)}, whole: {result.note}"))
            if analysis.needs_hook(result, done):
                out.kept.append(hook)
            else:
                out.entries.append(Entry(site, f"{hook}()", "no hook: what it did are spec keys now"))
        return out

    def dirty_groups(self, link: str, dirty: frozenset[str]) -> set[str]:
        """Groups that a chain link's configure_builder hook, run again in its descendants'
        builds, changes with calls it keeps (`dirty`: the link's own chain's)."""
        out = set()
        settled = self.decided(link, dirty)
        for d in self.decisions(link):
            if d.phase == "configure_builder" and d.group and d.hook in settled.kept:
                if f"{d.hook}:{d.call.line}:{d.call.name}" not in settled.applied:
                    out.add(d.group)
        return out

    def package_cps(self, unit: str) -> set[str]:
        var = self.probes[unit].variables("sh").get("_packages")
        if var is None:
            return set()
        return {atom_cp(w) for w in var.text.split() if not checks.atom(w)}


def key_name(change: settings.Change) -> str:
    return {
        "use": "package",
        "mask": "mask",
        "unmask": "unmask",
        "provide": "provided",
        "unprovide": "unprovided",
        "uninstall": "uninstall",
        "runtime_libs": "runtime_libs",
    }[change.kind]


def key_text(change: settings.Change) -> str:
    if change.kind == "use":
        keys = [k for k, v in (("use", change.use), ("keywords", change.keywords)) if v]
        return " and ".join(f'`[package."{change.atom}"] {k}`' for k in keys)
    return f"`{key_name(change)}`"
