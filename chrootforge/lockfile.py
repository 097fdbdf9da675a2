"""NS/chrootforge.lock: the exact inputs of a namespace, so a build is the same anywhere, offline too.

    [stage3]  name, release (the stamp of a mirror release), sha512, signer, arch
    [stage3.ARCH]  the same, for each further platform's arch (a multi-platform namespace)
    [tree]    name, date, sha512, signer   (a snapshot)   or   id   (a repository directory)
    [repos]   NAME = tree id                 (each extra repository)

TOML, keys sorted, one value per line, so that a `lock --update` reads as a small diff. The values
are plain values (`Lock`); reading and writing are pure apart from the atomic write.

Every field is checked against Gentoo's naming grammar (sources/grammar.py) when the file is read:
its values become mirror URLs and cache names, and a lock file is only a text file someone may
have edited. Whether the lock fits the namespace's spec is gentoo/inputs.py's concern.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from chrootforge import untrusted
from chrootforge.errors import UsageError
from chrootforge.sources import grammar

FILENAME = "chrootforge.lock"
VERSION = 1


@dataclass(frozen=True)
class LockedStage:
    name: str
    sha512: str
    signer: str
    release: str = ""  # a mirror release stamp; "" for a local stage file
    arch: str = ""  # Gentoo's arch of the stage; "" (a lock written before platforms): any


@dataclass(frozen=True)
class LockedTree:
    id: str = ""  # a repository directory: its content id
    name: str = ""  # a snapshot: file name, date, sha512 and signer
    date: str = ""
    sha512: str = ""
    signer: str = ""


@dataclass(frozen=True)
class Lock:
    stage3: LockedStage  # the first platform's
    tree: LockedTree
    repos: dict[str, str] = field(default_factory=dict)
    more_stages: tuple[LockedStage, ...] = ()  # the other platforms', each with its arch

    def stage_for(self, arch: str) -> LockedStage | None:
        """The pinned stage3 of `arch` (Gentoo's name), if the lock has one."""
        for stage in (self.stage3, *self.more_stages):
            if stage.arch in ("", arch):
                return stage
        return None

    def stages(self) -> tuple[tuple[str, LockedStage], ...]:
        """Each pinned stage3 with its lock section: ("stage3", first), ("stage3.ARCH", more)..."""
        return (("stage3", self.stage3), *((f"stage3.{s.arch}", s) for s in self.more_stages))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(lock: Lock, namespace: str) -> str:
    lines = [
        f"# The exact inputs of namespace {namespace!r}, written by `chrootforge lock`.",
        '# `chrootforge lock --update` resolves "latest" again. Builds use these, or refuse.',
        f"version = {VERSION}",
        "",
    ]
    for section, value in (*lock.stages(), ("tree", lock.tree)):
        lines.append(f"[{section}]")
        for key, item in sorted(vars(value).items()):
            if item and not (section.startswith("stage3.") and key == "arch"):  # the section names it
                lines.append(f"{key} = {_quote(item)}")
        lines.append("")
    if lock.repos:
        lines.append("[repos]")
        lines += [f"{_quote(name)} = {_quote(lock.repos[name])}" for name in sorted(lock.repos)]
        lines.append("")
    return "\n".join(lines)


_HINT = "run `chrootforge lock NS --update` to write it again"

# field -> its check (sources/grammar.py); "" (absent) is allowed where the field is optional
_CHECKS = {
    ("stage3", "sha512"): grammar.sha512,
    ("stage3", "signer"): grammar.signer,
    ("stage3", "release"): grammar.stamp,
    ("stage3", "arch"): grammar.arch,
    ("tree", "id"): grammar.tree_id,
    ("tree", "date"): grammar.day,
    ("tree", "sha512"): grammar.sha512,
    ("tree", "signer"): grammar.signer,
}


class _Reader:
    """Errors name the lock file, the line and the field: `NS/chrootforge.lock:7: [stage3] name ...`."""

    def __init__(self, text: str, path: Path):
        self.lines, self.path = text.splitlines(), path

    def where(self, section: str, key: str | None = None) -> str:
        header = re.compile(rf"\s*\[\s*{re.escape(section)}\s*\]")
        assign = re.compile(rf'\s*"?{re.escape(key)}"?\s*=') if key is not None else None
        inside = False
        for number, line in enumerate(self.lines, 1):
            if header.match(line):
                inside = True
                if assign is None:
                    return f"{self.path}:{number}"
            elif line.lstrip().startswith("["):
                inside = False
            elif inside and assign is not None and assign.match(line):
                return f"{self.path}:{number}"
        return str(self.path)

    def error(self, section: str, key: str | None, problem: str) -> UsageError:
        what = f"[{section}] {key}" if key is not None else f"[{section}]"
        return UsageError(f"{self.where(section, key)}: {what} {problem}", hint=_HINT)


def parse(text: str, path: Path) -> Lock:
    try:
        data = untrusted.loads_toml(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: not a valid lock file: {err}", hint=_HINT) from err
    if data.get("version") != VERSION:
        raise UsageError(
            f"{path}: lock file version {data.get('version')!r}, this chrootforge reads {VERSION}", hint=_HINT
        )
    reader = _Reader(text, path)
    for name in data:
        if name not in ("version", "stage3", "tree", "repos"):
            raise UsageError(f"{path}: {name!r} is not a part of a lock file", hint=_HINT)

    def table(name: str, cls, required: tuple[str, ...], values=None, nested: tuple[str, ...] = ()):
        values = data.get(name) if values is None else values
        if not isinstance(values, dict):
            raise UsageError(f"{path}: [{name}] is missing", hint=_HINT)
        values = {k: v for k, v in values.items() if k not in nested}
        known = {f.name for f in fields(cls)}
        for key, value in values.items():
            if key not in known or not isinstance(value, str):
                raise reader.error(name, key, "is not a known string field")
        for key in required:
            if not values.get(key):
                raise reader.error(name, key, "is missing")
        for key, value in values.items():
            check = _CHECKS.get((name.split(".")[0], key))
            problem = check(value) if check is not None and value else None
            if problem:
                raise reader.error(name, key, f"is wrong: {problem}")
        return cls(**values)

    stage_fields = ("name", "sha512", "signer")
    raw_stage = data.get("stage3")
    # [stage3.ARCH]: the stage of each further platform (TOML nests it in [stage3])
    arches = (
        tuple(k for k, v in raw_stage.items() if isinstance(v, dict)) if isinstance(raw_stage, dict) else ()
    )
    for arch in arches:
        problem = grammar.arch(arch)
        if problem:
            raise reader.error(f"stage3.{arch}", None, f"is wrong: {problem}")
    stage = table("stage3", LockedStage, stage_fields, nested=arches)
    more = tuple(
        table(f"stage3.{arch}", LockedStage, stage_fields, {**raw_stage[arch], "arch": arch})  # type: ignore[index]
        for arch in arches
    )
    for section, pinned in (("stage3", stage), *((f"stage3.{s.arch}", s) for s in more)):
        # a mirror release's file name carries its stamp; a local stage's is any plain file name
        problem = (
            grammar.stage_file(pinned.name, pinned.release)
            if pinned.release
            else grammar.file_name(pinned.name)
        )
        if problem:
            raise reader.error(section, "name", f"is wrong: {problem}")
    tree = table("tree", LockedTree, ())
    if tree.id and (tree.name or tree.sha512 or tree.date or tree.signer):
        raise reader.error(
            "tree", None, "pins both a directory (id) and a snapshot (name, sha512): one of them"
        )
    if not tree.id:
        if not (tree.name and tree.sha512 and tree.signer):
            raise reader.error(
                "tree", None, "needs an id (a directory) or a name, sha512 and signer (a snapshot)"
            )
        problem = grammar.file_name(tree.name)
        dated = grammar.SNAPSHOT_FILE.fullmatch(tree.name)
        if not problem and dated and dated.group(1) != "latest" and tree.date != dated.group(1):
            problem = f"names the snapshot of {dated.group(1)}, but date is {tree.date or 'missing'}"
        if problem:
            raise reader.error("tree", "name", f"is wrong: {problem}")
    repos = data.get("repos", {})
    if not isinstance(repos, dict):
        raise reader.error("repos", None, "must map repository names to tree ids")
    for name, value in repos.items():
        problem = grammar.repo_name(name) or (
            grammar.tree_id(value) if isinstance(value, str) else "not a string"
        )
        if problem:
            raise reader.error("repos", name, f"is wrong: {problem}")
    return Lock(stage, tree, dict(repos), more)


def changes(old: Lock | None, new: Lock) -> list[str]:
    """What differs between two locks, one short line per field ("[stage3] release A -> B")."""
    if old is None:
        return ["written"]
    out = []
    old_stages, new_stages = dict(old.stages()), dict(new.stages())
    for section in sorted(set(old_stages) ^ set(new_stages)):
        out.append(f"[{section}] {'written' if section in new_stages else 'removed'}")
    pairs: list[tuple[str, LockedStage | LockedTree, LockedStage | LockedTree]] = [
        (s, old_stages[s], new_stages[s]) for s in new_stages if s in old_stages
    ]
    for section, a, b in (*pairs, ("tree", old.tree, new.tree)):
        for f in fields(a):
            before, after = getattr(a, f.name), getattr(b, f.name)
            if before != after:
                out.append(f"[{section}] {f.name} {before or '(none)'} -> {after or '(none)'}")
    for name in sorted(set(old.repos) | set(new.repos)):
        if old.repos.get(name) != new.repos.get(name):
            out.append(f"[repos] {name} {old.repos.get(name, '(none)')} -> {new.repos.get(name, '(none)')}")
    return out


def load(ns_root: Path) -> Lock | None:
    path = Path(ns_root) / FILENAME
    from chrootforge.fsutil import read_regular

    try:
        text = read_regular(path, untrusted.MAX_FILE).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from err
    return parse(text, path)


def write(ns_root: Path, lock: Lock, namespace: str) -> Path:
    from chrootforge.fsutil import atomic_write

    path = Path(ns_root) / FILENAME
    atomic_write(path, render(lock, namespace))
    return path
