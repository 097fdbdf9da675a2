"""package.provided of an image: what emerge takes as installed without installing it (pure).

Three sources, minus what the image's `unprovided` names (by category/name):
- the parents' package records: their packages are in the image's lower layers. Portage's
  package.provided ignores USE, so the choice is ours: a parent's package counts as provided unless
  the image asks for it with USE the parent did not build it with; then it is left out, and the
  image's emerge installs it again (into its own layer) with the wanted flags;
- the explicit entries the parents passed down (their `provided`, recorded in their state);
- the image's own `provided`: category/name-VERSION as it is, or category/name with the tree's best
  visible version, which only the builder knows (`portageq best_visible`, run before emerge).

The explicit entries (inherited and own) are what the image passes down to its children; they are
not packages of the image, so the SBOM never lists them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from chrootforge.atoms import atom_cp, provided_cp, split_cpv
from chrootforge.gentoo.records import InstalledPackage
from chrootforge.gentoo.status import read_status

RESOLVED_FILE = "provided"  # in the build's status dir: the versions resolved in the builder
PROVIDED_FILE = "/etc/portage/profile/package.provided"


@dataclass(frozen=True)
class ProvidedPlan:
    lines: tuple[str, ...]  # package.provided entries known before the build (cpvs)
    reinstalled: tuple[str, ...] = ()  # parent packages left out because of USE, with why
    explicit: tuple[str, ...] = ()  # explicit entries known now: inherited and own versioned ones
    resolve: tuple[str, ...] = ()  # own category/name entries, versioned in the builder
    dropped: tuple[str, ...] = ()  # entries `unprovided` removed, with where they came from
    unprovided: tuple[str, ...] = ()  # the image's own `unprovided` (shown before the parent is built)

    def resolve_script(self, status_dir: str, provided_file: str = PROVIDED_FILE) -> str:
        """Shell (run in the builder once /etc/portage is set up) adding the best visible version of
        each `resolve` entry to package.provided, and recording it in status_dir."""
        if not self.resolve:
            return ""
        out = shlex.quote(f"{status_dir}/{RESOLVED_FILE}")
        return (
            f"for cp in {' '.join(shlex.quote(cp) for cp in self.resolve)}; do\n"
            '  cpv=$(portageq best_visible / "$cp") || cpv=""\n'
            '  if [ -z "$cpv" ]; then\n'
            '    echo "chrootforge: provided: no version of $cp is visible in the tree '
            '(missing, masked or not keyworded)" >&2\n'
            "    exit 3\n"
            "  fi\n"
            f'  echo "$cpv" >> {shlex.quote(provided_file)}\n'
            f'  echo "$cpv" >> {out}\n'
            "done\n"
        )

    def passed_down(self, resolved: tuple[str, ...]) -> tuple[str, ...]:
        """The explicit entries the image's children inherit, once `resolve` is resolved."""
        return tuple(sorted(set(self.explicit) | set(resolved)))


def read_resolved(status_dir: Path) -> tuple[str, ...]:
    """The versions the builder resolved (empty when nothing was to be resolved)."""
    text = read_status(status_dir, RESOLVED_FILE)
    if text is None:
        return ()
    return tuple(sorted({line.strip() for line in text.splitlines() if line.strip()}))


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


def plan_provided(
    parent_records: list[InstalledPackage],
    child_use: dict[str, tuple[str, ...]],
    *,
    parent_provided: tuple[str, ...] = (),
    provided: tuple[str, ...] = (),
    unprovided: tuple[str, ...] = (),
) -> ProvidedPlan:
    """`child_use` maps cat/pkg -> the child's package.use flags for it; `parent_provided` are the
    explicit entries the parent passed down; `provided`/`unprovided` are the image's own keys."""
    drop = set(unprovided)
    lines, reinstalled, dropped = set(), [], []
    for pkg in parent_records:
        if pkg.cp in drop:
            dropped.append(f"{pkg.cpv} (a package of the parents)")
            continue
        bad = use_conflicts(pkg, child_use.get(pkg.cp, ()))
        if bad:
            reinstalled.append(
                f'{pkg.cpv} (parent built it with USE="{" ".join(pkg.use)}", '
                f"this image wants {' '.join(bad)})"
            )
            continue
        lines.add(pkg.cpv)
    explicit = set()
    for cpv in parent_provided:
        if provided_cp(cpv) in drop:
            dropped.append(f"{cpv} (provided by the parents)")
        else:
            explicit.add(cpv)
    resolve = []
    for entry in provided:
        try:
            split_cpv(entry)
            explicit.add(entry)
        except ValueError:
            resolve.append(entry)
    return ProvidedPlan(
        tuple(sorted(lines | explicit)),
        tuple(reinstalled),
        tuple(sorted(explicit)),
        tuple(resolve),
        tuple(dropped),
        tuple(unprovided),
    )


def child_use_map(settings) -> dict[str, tuple[str, ...]]:
    return {atom_cp(s.atom): tuple(s.use) for s in settings if s.use}
