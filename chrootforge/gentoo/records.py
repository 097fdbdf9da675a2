"""Installed-package records: read from a root's /var/db/pkg, kept per image for its children.

An image's record list is cumulative: its parent's records plus what its own emerge installed (a
package reinstalled in the child replaces the parent's entry). Children derive package.provided from
it, and the SBOM lists it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chrootforge.atoms import split_cpv


@dataclass(frozen=True)
class InstalledPackage:
    category: str
    name: str
    version: str
    use: tuple[str, ...] = ()  # enabled flags (USE ∩ IUSE)
    iuse: tuple[str, ...] = ()  # flags the package knows (without +/- defaults)
    slot: str = "0"
    repository: str = ""
    license: str = ""
    homepage: str = ""
    description: str = ""
    image: str = ""  # the image whose layer installed it
    files: tuple[str, ...] = field(default=(), compare=False)

    @property
    def cp(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def cpv(self) -> str:
        return f"{self.category}/{self.name}-{self.version}"

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("files")
        return data

    @classmethod
    def from_json(cls, data: dict) -> InstalledPackage:
        data = dict(data)
        for key in ("use", "iuse"):
            data[key] = tuple(data.get(key, ()))
        data.pop("files", None)
        return cls(**data)


def read_field(path: Path) -> str:
    """A /var/db/pkg field file, stripped (empty when missing)."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _contents(path: Path) -> tuple[str, ...]:
    files = []
    for line in read_field(path).splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "obj":
            files.append(rest.rsplit(" ", 2)[0])
        elif kind == "sym":
            files.append(rest.split(" -> ", 1)[0])
    return tuple(files)


def read_vdb(root: str | Path, image: str = "") -> list[InstalledPackage]:
    """Every package in ROOT/var/db/pkg, sorted by category/name."""
    vdb = Path(root) / "var/db/pkg"
    found: list[InstalledPackage] = []
    if not vdb.is_dir():
        return found
    for entry in sorted(vdb.glob("*/*")):
        if not entry.is_dir() or entry.name.startswith("-MERGING-"):
            continue
        pf = read_field(entry / "PF") or entry.name
        category = read_field(entry / "CATEGORY") or entry.parent.name
        cp, version = split_cpv(f"{category}/{pf}")
        iuse = tuple(sorted({flag.lstrip("+-") for flag in read_field(entry / "IUSE").split()}))
        enabled = set(read_field(entry / "USE").split())
        use = tuple(sorted(enabled & set(iuse)))
        found.append(
            InstalledPackage(
                category=category,
                name=cp.split("/", 1)[1],
                version=version,
                use=use,
                iuse=iuse,
                slot=(read_field(entry / "SLOT") or "0").split("/")[0],
                repository=read_field(entry / "repository"),
                license=read_field(entry / "LICENSE"),
                homepage=read_field(entry / "HOMEPAGE"),
                description=read_field(entry / "DESCRIPTION"),
                image=image,
                files=_contents(entry / "CONTENTS"),
            )
        )
    return sorted(found, key=lambda p: (p.cp, p.slot))


def merge(inherited: list[InstalledPackage], own: list[InstalledPackage]) -> list[InstalledPackage]:
    """The child's cumulative list: own packages replace the inherited ones of the same cp and slot."""
    mine = {(p.cp, p.slot) for p in own}
    kept = [p for p in inherited if (p.cp, p.slot) not in mine]
    return sorted(kept + list(own), key=lambda p: (p.cp, p.slot))


def dump(records: list[InstalledPackage]) -> list[dict]:
    return [p.to_json() for p in records]


def load(data: list[dict]) -> list[InstalledPackage]:
    return [InstalledPackage.from_json(d) for d in data]


def dumps(records: list[InstalledPackage]) -> str:
    return json.dumps(dump(records), indent=1, sort_keys=True)
