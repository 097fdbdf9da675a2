"""Installed-package records: read from a root's /var/db/pkg, kept per image for its children.

An image's record list is cumulative: its parent's records plus what its own emerge installed (a
package reinstalled in the child replaces the parent's entry). Children derive package.provided from
it, and the SBOM lists it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chrootforge.atoms import is_cpv, split_cpv
from chrootforge.errors import CfError, shown
from chrootforge.rootpath import RootDir, read_inside


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


VDB = "var/db/pkg"
MAX_FIELD = 1 << 20  # a /var/db/pkg field file (DESCRIPTION, LICENSE, RDEPEND, ...)
MAX_CONTENTS = 256 << 20  # CONTENTS: one line per file


def read_field(root: str | Path, rel: str, limit: int = MAX_FIELD) -> str:
    """A field file of a /var/db/pkg entry of ROOT, stripped (empty when missing). The host reads
    what a sandbox wrote: inside the root only (rootpath.read_inside); a symlink out, a FIFO or a
    huge file is a CfError."""
    data = read_inside(root, rel, limit, what="package record")
    return "" if data is None else data.decode(errors="replace").strip()


def vdb_entries(root: str | Path) -> list[tuple[str, str]]:
    """(category, directory) of every package entry of ROOT/var/db/pkg, sorted, without following a
    symlink; an entry whose name is no category/package-version is refused (CfError)."""
    found = []
    with RootDir(root) as rd, rd.open_dir(VDB, what="package database") as vdb:
        if vdb is None:
            return []
        for category in os.listdir(vdb):
            if not _is_dir(vdb, category):
                continue
            fd = os.open(category, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=vdb)
            try:
                for name in os.listdir(fd):
                    if name.startswith("-MERGING-") or not _is_dir(fd, name):
                        continue
                    if not is_cpv(f"{category}/{name}"):
                        raise CfError(
                            f"/{VDB}/{shown(category)}/{shown(name)} in {root} is no package record "
                            "(not category/package-version)",
                            hint="the build wrote a damaged or hostile package database",
                        )
                    found.append((category, name))
            finally:
                os.close(fd)
    return sorted(found)


def _is_dir(fd: int, name: str) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)


def _contents(root: str | Path, rel: str) -> tuple[str, ...]:
    files = []
    for line in read_field(root, rel, MAX_CONTENTS).splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "obj":
            files.append(rest.rsplit(" ", 2)[0])
        elif kind == "sym":
            files.append(rest.split(" -> ", 1)[0])
    return tuple(files)


def read_vdb(root: str | Path, image: str = "") -> list[InstalledPackage]:
    """Every package in ROOT/var/db/pkg, sorted by category/name."""
    found: list[InstalledPackage] = []
    for category, name in vdb_entries(root):
        entry = f"{VDB}/{category}/{name}"

        def field(key: str, entry: str = entry) -> str:
            return read_field(root, f"{entry}/{key}")

        # The directory's name is the record's identity: PF and CATEGORY only repeat it.
        cp, version = split_cpv(f"{category}/{name}")
        iuse = tuple(sorted({flag.lstrip("+-") for flag in field("IUSE").split()}))
        enabled = set(field("USE").split())
        use = tuple(sorted(enabled & set(iuse)))
        found.append(
            InstalledPackage(
                category=category,
                name=cp.split("/", 1)[1],
                version=version,
                use=use,
                iuse=iuse,
                slot=(field("SLOT") or "0").split("/")[0],
                repository=field("repository"),
                license=field("LICENSE"),
                homepage=field("HOMEPAGE"),
                description=field("DESCRIPTION"),
                image=image,
                files=_contents(root, f"{entry}/CONTENTS"),
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
