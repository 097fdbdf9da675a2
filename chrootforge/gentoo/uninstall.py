"""`uninstall`: packages removed from the image root after emerge and post_emerge.

Portage's own unmerge (`ROOT=/emerge-root emerge --unmerge`) removes the files and the /var/db/pkg
entry, so the records read afterwards (the SBOM, what children inherit) no longer list the package.
Before that, the runtime dependencies (RDEPEND, PDEPEND and IDEPEND, which portage stores in
/var/db/pkg with USE already applied) of the packages that stay are checked: removing something one
of them still needs is an error naming it, unless the image sets `force_uninstall = true`.

Only packages of this image's own emerge can go: the parents' are in lower layers, and their
/var/db/pkg entries are not in the image.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chrootforge import log
from chrootforge.atoms import atom_cp, provided_cp, split_cpv
from chrootforge.errors import CfError
from chrootforge.gentoo import depstring, emerge
from chrootforge.gentoo.records import VDB, InstalledPackage, read_field, vdb_entries

DEP_FILES = ("RDEPEND", "PDEPEND", "IDEPEND")


@dataclass(frozen=True)
class UninstallPlan:
    packages: tuple[str, ...] = ()  # category/name
    force: bool = False

    def argv(self) -> list[str]:
        return ["emerge", "--unmerge", "--color=n", "--nospinner", *self.packages]

    def script(self) -> str:
        return "set -eu\n" + " ".join(shlex.quote(a) for a in self.argv()) + "\n"


def plan_uninstall(
    packages: tuple[str, ...], force: bool, parent_records: list[InstalledPackage] | None
) -> tuple[UninstallPlan, list[str]]:
    """The plan, and what is wrong with it (packages that come from the parents)."""
    problems = []
    by_cp = {p.cp: p for p in parent_records or ()}
    for cp in packages:
        if cp in by_cp:
            problems.append(
                f"uninstall: {cp} is in the parent image '{by_cp[cp].image}', not installed by "
                "this image's emerge"
            )
    return UninstallPlan(tuple(packages), force), problems


# -- the dependency check (pure) -------------------------------------------------------------------
@dataclass(frozen=True)
class Installed:
    cpv: str
    cp: str
    deps: str  # the runtime dependencies, as /var/db/pkg stores them


def _satisfied(node: depstring.Node, present: set[str]) -> bool:
    if isinstance(node, str):
        return node.startswith("!") or atom_cp(node) in present
    if node.kind == "any":
        return any(_satisfied(n, present) for n in node.items)
    return all(_satisfied(n, present) for n in node.items)


def _mentions(node: depstring.Node, target: str) -> bool:
    if isinstance(node, str):
        return not node.startswith("!") and atom_cp(node) == target
    return any(_mentions(n, target) for n in node.items)


def _needs(node: depstring.Node, target: str, present: set[str]) -> list[str]:
    """The dependencies in `node` that fail once `target` is gone (`present` lacks it). A
    USE-conditional group (portage stores them applied, so rarely seen) counts as required."""
    if not _mentions(node, target) or _satisfied(node, present):
        return []
    if isinstance(node, str) or node.kind == "any":
        return [depstring.text(node)]
    return [need for child in node.items for need in _needs(child, target, present)]


def needed_by(installed: list[Installed], removing: set[str], provided: set[str]) -> list[str]:
    """One line per package that stays and needs one being removed (`provided`: the cps of
    package.provided, which satisfy dependencies without being in the image's /var/db/pkg)."""
    present = {p.cp for p in installed if p.cp not in removing} | provided
    out = []
    for pkg in installed:
        if pkg.cp in removing:
            continue
        tree = depstring.parse(pkg.deps)
        for target in sorted(removing):
            needs = [n for node in tree for n in _needs(node, target, present)]
            if needs:
                how = "" if needs == [target] else f" ({', '.join(needs)})"
                out.append(f"{pkg.cpv} needs {target}{how}")
    return out


def read_installed(root: Path) -> list[Installed]:
    found = []
    for category, name in vdb_entries(root):
        cpv = f"{category}/{name}"
        deps = " ".join(read_field(root, f"{VDB}/{cpv}/{dep}") for dep in DEP_FILES)
        found.append(Installed(cpv, split_cpv(cpv)[0], deps))
    return found


# -- the step ----------------------------------------------------------------------------------------
def run(
    plan: UninstallPlan,
    rootfs: Path,
    provided_lines: tuple[str, ...],
    sandbox: Callable[[str, str, dict], None],
    image: str,
) -> None:
    """Check, then unmerge in the builder (`sandbox(phase, script, env)` runs a script there)."""
    installed = read_installed(rootfs)
    have = {p.cp for p in installed}
    missing = [cp for cp in plan.packages if cp not in have]
    if missing:
        raise CfError(
            f"image {image}: uninstall: {', '.join(missing)} not installed by this image's emerge",
            hint="uninstall removes packages the image's own emerge installed: "
            + (", ".join(sorted(have)) or "none"),
        )
    provided = {provided_cp(line) for line in provided_lines}
    try:
        needed = needed_by(installed, set(plan.packages), provided)
    except ValueError as err:
        raise CfError(f"image {image}: uninstall: cannot read the installed dependencies: {err}") from err
    if needed and not plan.force:
        raise CfError(
            f"image {image}: uninstall: " + "; ".join(needed),
            hint="set force_uninstall = true to remove it anyway, or uninstall what needs it too",
        )
    for line in needed:
        log.warn(f"image {image}: uninstall (force_uninstall): {line}")
    sandbox("uninstall", plan.script(), emerge.emerge_env())
    left = {p.cp for p in read_installed(rootfs)} & set(plan.packages)
    if left:
        raise CfError(f"image {image}: uninstall: emerge --unmerge left {', '.join(sorted(left))} installed")
