"""package.provided from the parent images' records, respecting USE.

Portage's package.provided ignores USE: a package listed there is simply "installed". So the choice is
ours: a parent's package counts as provided unless the child asks for it with USE the parent did not
build it with. Then it is left out, and the child's emerge installs it again (into the child layer)
with the wanted flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from chrootforge.atoms import atom_cp
from chrootforge.gentoo.records import InstalledPackage


@dataclass(frozen=True)
class ProvidedPlan:
    lines: tuple[str, ...]               # the package.provided entries (cat/pkg-version)
    reinstalled: tuple[str, ...]          # parent packages left out because of USE, with why


def use_conflicts(pkg: InstalledPackage, wanted: tuple[str, ...]) -> list[str]:
    """The flags of `wanted` (e.g. ('static', '-ipv6')) that the parent built differently."""
    have = set(pkg.use)
    bad = []
    for flag in wanted:
        off = flag.startswith("-")
        name = flag.lstrip("-")
        if name not in pkg.iuse:
            continue  # a flag the package does not have cannot differ
        if off and name in have or not off and name not in have:
            bad.append(flag)
    return bad


def plan_provided(parent_records: list[InstalledPackage], child_use: dict[str, tuple[str, ...]]) -> ProvidedPlan:
    """`child_use` maps cat/pkg -> the child's package.use flags for it."""
    lines, reinstalled = [], []
    for pkg in parent_records:
        wanted = child_use.get(pkg.cp, ())
        bad = use_conflicts(pkg, wanted)
        if bad:
            reinstalled.append(f"{pkg.cpv} (parent built it with USE=\"{' '.join(pkg.use)}\", "
                               f"this image wants {' '.join(bad)})")
            continue
        lines.append(pkg.cpv)
    return ProvidedPlan(tuple(sorted(lines)), tuple(reinstalled))


def child_use_map(settings) -> dict[str, tuple[str, ...]]:
    return {atom_cp(s.atom): tuple(s.use) for s in settings if s.use}
