"""Gentoo LICENSE expressions as SPDX license expressions, for the SBOM (pure).

A LICENSE is a dependency-style string (gentoo/depstring.py): names that all apply, `|| ( ... )` for
a choice, `flag? ( ... )` for USE-conditional parts. It becomes an SPDX expression: AND, OR,
parentheses; `flag?` groups are resolved with the package's USE (portage already stores LICENSE
with USE applied in /var/db/pkg, so this matters for records from elsewhere).

Names map to SPDX license list ids through SPDX_IDS: the Gentoo repository's own
metadata/license-mapping.conf (SPDX -> Gentoo) read the other way. Where one Gentoo name stands for
several SPDX ids, the id is the one whose text the Gentoo license file holds:
- BSD is BSD-3-Clause (licenses/BSD is the three-clause text; BSD-2 and BSD-4 are the others);
- Artistic is Artistic-1.0-Perl (Perl's "Artistic License", the text licenses/Artistic holds);
- GPL-2 is GPL-2.0-only and GPL-2+ is GPL-2.0-or-later (likewise GPL, LGPL, AGPL and FDL).
Any other name becomes LicenseRef-Gentoo-<name> (characters SPDX does not allow become '-'); the
SBOM defines each of those in hasExtractedLicensingInfos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chrootforge.gentoo import depstring

REF_PREFIX = "LicenseRef-Gentoo-"

# Gentoo name -> SPDX id.
SPDX_IDS = {
    "0BSD": "0BSD",
    "AFL-2.1": "AFL-2.1",
    "AFL-3.0": "AFL-3.0",
    "AGPL-3": "AGPL-3.0-only",
    "AGPL-3+": "AGPL-3.0-or-later",
    "Apache-1.0": "Apache-1.0",
    "Apache-1.1": "Apache-1.1",
    "Apache-2.0": "Apache-2.0",
    "Apache-2.0-with-LLVM-exceptions": "Apache-2.0 WITH LLVM-exception",
    "Artistic": "Artistic-1.0-Perl",
    "Artistic-2": "Artistic-2.0",
    "BSD": "BSD-3-Clause",
    "BSD-1": "BSD-1-Clause",
    "BSD-2": "BSD-2-Clause",
    "BSD-4": "BSD-4-Clause",
    "Boost-1.0": "BSL-1.0",
    "BZIP2": "bzip2-1.0.6",
    "CC-BY-3.0": "CC-BY-3.0",
    "CC-BY-4.0": "CC-BY-4.0",
    "CC-BY-SA-3.0": "CC-BY-SA-3.0",
    "CC-BY-SA-4.0": "CC-BY-SA-4.0",
    "CC0-1.0": "CC0-1.0",
    "CDDL": "CDDL-1.0",
    "CDDL-1.1": "CDDL-1.1",
    "curl": "curl",
    "EPL-1.0": "EPL-1.0",
    "EPL-2.0": "EPL-2.0",
    "FDL-1.1": "GFDL-1.1-only",
    "FDL-1.1+": "GFDL-1.1-or-later",
    "FDL-1.2": "GFDL-1.2-only",
    "FDL-1.2+": "GFDL-1.2-or-later",
    "FDL-1.3": "GFDL-1.3-only",
    "FDL-1.3+": "GFDL-1.3-or-later",
    "FTL": "FTL",
    "GPL-1": "GPL-1.0-only",
    "GPL-1+": "GPL-1.0-or-later",
    "GPL-2": "GPL-2.0-only",
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-2-with-classpath-exception": "GPL-2.0-only WITH Classpath-exception-2.0",
    "GPL-3": "GPL-3.0-only",
    "GPL-3+": "GPL-3.0-or-later",
    "HPND": "HPND",
    "icu": "ICU",
    "IJG": "IJG",
    "ISC": "ISC",
    "LGPL-2": "LGPL-2.0-only",
    "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3": "LGPL-3.0-only",
    "LGPL-3+": "LGPL-3.0-or-later",
    "libpng": "Libpng",
    "libpng2": "libpng-2.0",
    "libtiff": "libtiff",
    "MIT": "MIT",
    "MIT-0": "MIT-0",
    "MPL-1.0": "MPL-1.0",
    "MPL-1.1": "MPL-1.1",
    "MPL-2.0": "MPL-2.0",
    "OFL-1.1": "OFL-1.1",
    "openssl": "OpenSSL",
    "PHP-3": "PHP-3.0",
    "PHP-3.01": "PHP-3.01",
    "POSTGRESQL": "PostgreSQL",
    "PSF-2": "PSF-2.0",
    "PYTHON": "Python-2.0",
    "Ruby": "Ruby",
    "Sleepycat": "Sleepycat",
    "tcltk": "TCL",
    "Unicode-DFS-2016": "Unicode-DFS-2016",
    "Unlicense": "Unlicense",
    "vim": "Vim",
    "W3C": "W3C",
    "WTFPL-2": "WTFPL",
    "ZLIB": "Zlib",
    "ZPL": "ZPL-2.1",
}


@dataclass(frozen=True)
class SpdxLicense:
    expression: str  # "NOASSERTION" when there is no LICENSE
    refs: tuple[str, ...] = ()  # the Gentoo names that became LicenseRef-Gentoo-<name>


def ref_id(name: str) -> str:
    return REF_PREFIX + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def _reduce(nodes, use: frozenset[str], refs: set[str]) -> list:
    """SPDX operands of the nodes (all required): ids, ("AND", [...]) and ("OR", [...])."""
    out = []
    for node in nodes:
        if isinstance(node, str):
            spdx = SPDX_IDS.get(node)
            if spdx is None:
                refs.add(node)
                spdx = ref_id(node)
            out.append(spdx)
            continue
        if not node.applies(use):
            continue
        operands = _reduce(node.items, use, refs)
        if operands:
            op = "OR" if node.kind == "any" else "AND"
            out.append(_join(op, operands))
    return out


def _join(op: str, operands: list):
    """One operand: `operands` joined by `op` (nested groups of the same op flattened)."""
    items = _dedupe([o for x in operands for o in _flat(op, x)])
    return items[0] if len(items) == 1 else (op, items)


def _flat(op: str, operand) -> list:
    return operand[1] if isinstance(operand, tuple) and operand[0] == op else [operand]


def _dedupe(items: list) -> list:
    seen, out = set(), []
    for item in items:
        key = repr(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _render(operand, outer: str | None) -> str:
    if isinstance(operand, str):
        # "X WITH Y" is one operand; it needs no parentheses.
        return operand
    op, items = operand
    text = f" {op} ".join(_render(i, op) for i in items)
    return f"({text})" if outer is not None and outer != op else text


def to_spdx(license_: str, use=()) -> SpdxLicense:
    """The SPDX expression of a Gentoo LICENSE value; a malformed one is a ValueError."""
    refs: set[str] = set()
    operands = _reduce(depstring.parse(license_), frozenset(use), refs)
    if not operands:
        return SpdxLicense("NOASSERTION")
    return SpdxLicense(_render(_join("AND", operands), None), tuple(sorted(refs)))
