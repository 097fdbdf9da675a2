"""NS/chrootforge.lock: the exact inputs of a namespace, so a build is the same anywhere, offline too.

    [stage3]  name, release (the stamp of a mirror release), sha512, signer, arch
    [stage3.ARCH]  the same, for each further platform's arch (a multi-platform namespace)
    [tree]    name, date, sha512, signer   (a snapshot)   or   id   (a repository directory)
    [repos]   NAME = tree id                 (each extra repository)

TOML, keys sorted, one value per line, so that a `lock --update` reads as a small diff. The values
are plain values (`Lock`); reading and writing are pure apart from the atomic write.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from chrootforge.errors import UsageError

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


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(lock: Lock, namespace: str) -> str:
    lines = [
        f"# The exact inputs of namespace {namespace!r}, written by `chrootforge lock`.",
        '# `chrootforge lock --update` resolves "latest" again. Builds use these, or refuse.',
        f"version = {VERSION}",
        "",
    ]
    tables = [("stage3", lock.stage3), ("tree", lock.tree)]
    tables[1:1] = [(f"stage3.{_quote(stage.arch)}", stage) for stage in lock.more_stages]
    for section, value in tables:
        lines.append(f"[{section}]")
        for key, item in sorted(vars(value).items()):
            if item and not (section != "stage3" and key == "arch"):
                lines.append(f"{key} = {_quote(item)}")
        lines.append("")
    if lock.repos:
        lines.append("[repos]")
        lines += [f"{_quote(name)} = {_quote(lock.repos[name])}" for name in sorted(lock.repos)]
        lines.append("")
    return "\n".join(lines)


def parse(text: str, path: Path) -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(
            f"{path}: not a valid lock file: {err}", hint="run chrootforge lock NS --update"
        ) from None
    if data.get("version") != VERSION:
        raise UsageError(
            f"{path}: lock file version {data.get('version')!r}, this chrootforge reads {VERSION}",
            hint="run chrootforge lock NS --update",
        )

    def table(name: str, cls, required: tuple[str, ...], values=None, nested: tuple[str, ...] = ()):
        values = data.get(name) if values is None else values
        if not isinstance(values, dict):
            raise UsageError(f"{path}: [{name}] is missing", hint="run chrootforge lock NS --update")
        values = {k: v for k, v in values.items() if k not in nested}
        known = set(cls.__dataclass_fields__)
        for key, value in values.items():
            if key not in known or not isinstance(value, str):
                raise UsageError(f"{path}: [{name}] {key} is not a known string field")
        for key in required:
            if not values.get(key):
                raise UsageError(f"{path}: [{name}] {key} is missing")
        return cls(**values)

    stage_fields = ("name", "sha512", "signer")
    raw_stage = data.get("stage3")
    arches = (
        tuple(k for k, v in raw_stage.items() if isinstance(v, dict)) if isinstance(raw_stage, dict) else ()
    )
    more = tuple(
        table(f"stage3.{arch}", LockedStage, stage_fields, {**raw_stage[arch], "arch": arch})  # type: ignore[index]
        for arch in arches
    )

    tree = table("tree", LockedTree, ())
    if not tree.id and not (tree.name and tree.sha512):
        raise UsageError(f"{path}: [tree] needs an id (a directory) or a name and sha512 (a snapshot)")
    repos = data.get("repos", {})
    if not isinstance(repos, dict) or not all(isinstance(v, str) for v in repos.values()):
        raise UsageError(f"{path}: [repos] must map repository names to tree ids")
    stage3 = table("stage3", LockedStage, stage_fields, nested=arches)
    return Lock(stage3, tree, dict(repos), more)


def load(ns_root: Path) -> Lock | None:
    path = Path(ns_root) / FILENAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from None
    return parse(text, path)


def write(ns_root: Path, lock: Lock, namespace: str) -> Path:
    from chrootforge.fsutil import atomic_write

    path = Path(ns_root) / FILENAME
    atomic_write(path, render(lock, namespace))
    return path
