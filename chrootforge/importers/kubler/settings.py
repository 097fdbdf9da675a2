"""Static helper calls as spec values (pure): update_use/update_keywords (flaggie's syntax, which
kubler's helpers pass on), mask/unmask, provide/unprovide, uninstall and the runtime libraries.

`convert(call)` returns the change a call makes, or why it cannot be a key. `Settings` accumulates
changes in the order kubler made them and gives the final spec values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chrootforge.atoms import check_atom
from chrootforge.importers.kubler.helpers import RUNTIME_LIBS
from chrootforge.spec import checks

# Keyword tokens flaggie recognises without a "kw::" prefix: ~ARCH, -ARCH, ** and ARCH itself.
ARCHES = frozenset("alpha amd64 arm arm64 hppa ia64 loong m68k mips ppc ppc64 riscv s390 sparc x86".split())


@dataclass(frozen=True)
class Change:
    kind: str  # "use" | "mask" | "unmask" | "provide" | "unprovide" | "uninstall" | "runtime_libs" | "repo"
    atom: str = ""  # "use": the package atom
    use: tuple[tuple[str, bool], ...] = ()  # "use": (flag, on)
    keywords: tuple[tuple[str, bool], ...] = ()  # "use": (keyword, on)
    items: tuple[str, ...] = ()  # the other kinds: their entries ("repo": id)


def convert(name: str, args: tuple[str, ...]) -> Change | str:
    """The change a static call of helper `name` makes, or why it cannot be a spec key."""
    if name in ("update_use", "update_keywords"):
        return _flaggie(args)
    if name in ("mask_package", "unmask_package"):
        if len(args) != 1:
            return f"{name} takes one atom; kubler uses only the first"
        return _checked(name.split("_")[0], args, checks.atom)
    if name == "provide_package":
        return _checked("provide", args, checks.provided_entry)
    if name == "unprovide_package":
        return _checked("unprovide", args, checks.cp)
    if name == "uninstall_package":
        return _checked("uninstall", args, checks.cp)
    if name in RUNTIME_LIBS:
        if args:
            return f"{name} takes no arguments"
        return Change("runtime_libs", items=RUNTIME_LIBS[name])
    if name == "add_overlay":
        if not args or not 1 <= len(args) <= 3 or checks.name("repository")(args[0]):
            return "add_overlay needs a repository id (lower case letters, digits, . _ -)"
        return Change("repo", items=args[:2])
    return f"{name} has no spec key"


def _checked(kind: str, args: tuple[str, ...], check) -> Change | str:
    if not args:
        return "no package given"
    for arg in args:
        problem = check(arg)
        if problem:
            return problem
    return Change(kind, items=args)


def _flaggie(args: tuple[str, ...]) -> Change | str:
    if not args:
        return "no package given"
    atom, tokens = args[0], args[1:]
    if atom[:1] in "+-%?":
        return "global flags (no package): chrootforge has no per-image key for them"
    problem = check_atom(atom)
    if problem:
        return problem
    if not tokens:
        return "no flags given"
    use: list[tuple[str, bool]] = []
    keywords: list[tuple[str, bool]] = []
    for token in tokens:
        op, rest = token[:1], token[1:]
        if op not in "+-" or not rest:
            return f"'{token}': only +flag and -flag have a key (flaggie's {op or 'bare'} form does not)"
        on = op == "+"
        space, sep, word = rest.partition("::")
        if not sep:
            space, word = "", rest
        if space not in ("", "use", "kw"):
            return f"'{token}': flaggie's {space}:: settings have no key"
        if space == "kw" or (not space and _is_keyword(word)):
            keywords.append((word, on))
        elif checks.use_flag(word) or word.startswith("-"):
            return f"'{token}' is not a USE flag"
        else:
            use.append((word, on))
    return Change("use", atom=atom, use=tuple(use), keywords=tuple(keywords))


def _is_keyword(word: str) -> bool:
    return word.startswith("~") or word in ("**", "*") or word.lstrip("-") in ARCHES


@dataclass
class PackageFlags:
    use: dict[str, bool] = field(default_factory=dict)
    keywords: dict[str, bool] = field(default_factory=dict)


@dataclass
class Settings:
    """Changes applied in kubler's order; later ones win, as flaggie and package.provided did."""

    packages: dict[str, PackageFlags] = field(default_factory=dict)
    mask: list[str] = field(default_factory=list)
    unmask: list[str] = field(default_factory=list)
    provided: list[str] = field(default_factory=list)
    unprovided: list[str] = field(default_factory=list)
    uninstall: list[str] = field(default_factory=list)
    runtime_libs: list[str] = field(default_factory=list)

    def apply(self, change: Change) -> None:
        if change.kind == "use":
            flags = self.packages.setdefault(change.atom, PackageFlags())
            for flag, on in change.use:
                flags.use.pop(flag, None)
                flags.use[flag] = on
            for word, on in change.keywords:
                flags.keywords.pop(word, None)
                flags.keywords[word] = on
            return
        lists = {
            "mask": self.mask,
            "unmask": self.unmask,
            "uninstall": self.uninstall,
            "runtime_libs": self.runtime_libs,
        }
        if change.kind in lists:
            target = lists[change.kind]
            target += [item for item in change.items if item not in target]
        elif change.kind == "provide":
            for item in change.items:
                if item not in self.provided:
                    self.provided.append(item)
                self.unprovided = [u for u in self.unprovided if u != item]
        elif change.kind == "unprovide":
            # kubler deletes package.provided lines that start with the name (a version follows)
            for item in change.items:
                self.provided = [p for p in self.provided if p != item and not p.startswith(item + "-")]
                if item not in self.unprovided:
                    self.unprovided.append(item)

    def package_tables(self) -> dict[str, dict[str, list[str]]]:
        out = {}
        for atom, flags in self.packages.items():
            table = {}
            if flags.use:
                table["use"] = [f if on else f"-{f}" for f, on in flags.use.items()]
            if flags.keywords:
                table["keywords"] = [w if on else f"-{w}" for w, on in flags.keywords.items()]
            if table:
                out[atom] = table
        return out
