"""Just enough Gentoo atom syntax: checking an atom, its category/name, and splitting a CPV (used by
the spec and by the Gentoo steps).

`check_atom` follows the grammar of PMS 8.3 as portage's `isvalidatom` reads it (operator and
version, slot, repository, then USE dependencies), without blockers: a package to emerge, mask or
configure is never a blocker. Every pattern is matched whole (`fullmatch`), so a trailing newline
never passes for the end of the string.
"""

from __future__ import annotations

import re

from chrootforge.errors import shown

_CATEGORY = r"[A-Za-z0-9_][A-Za-z0-9+_.-]*"
_NAME = r"[A-Za-z0-9_][A-Za-z0-9+_-]*"
# A version: digits(.digits)* letter? (_suffix digits?)* (-rN)?  (PMS 3.2)
_VERSION = r"\d+(?:\.\d+)*[a-z]?(?:_(?:alpha|beta|pre|rc|p)\d*)*(?:-r\d+)?"
_SLOT_NAME = r"[A-Za-z0-9_][A-Za-z0-9+_.-]*"
_SLOT = rf":(?:\*|=|{_SLOT_NAME}(?:/{_SLOT_NAME})?=?)"
REPO_NAME = r"[A-Za-z0-9_][A-Za-z0-9_-]*"  # PMS 3.1.5
USE_FLAG = r"[A-Za-z0-9][A-Za-z0-9+_@-]*"  # PMS 3.1.4
_USE_DEP = rf"!?-?{USE_FLAG}(?:\([+-]\))?[=?]?"
_ATOM_RE = re.compile(
    rf"(?:(?P<op><=|>=|<|>|=|~)(?P<cpv>{_CATEGORY}/{_NAME}-{_VERSION})(?P<star>\*)?"
    rf"|(?P<cp>{_CATEGORY}/{_NAME}))"
    rf"(?:{_SLOT})?(?:::{REPO_NAME})?(?:\[{_USE_DEP}(?:,{_USE_DEP})*\])?"
)
_CP_RE = re.compile(rf"{_CATEGORY}/{_NAME}")
_VERSION_RE = re.compile(rf"-({_VERSION})\Z")
_CPV_RE = re.compile(rf"{_CATEGORY}/{_NAME}-{_VERSION}")
_ENDS_LIKE_VERSION = re.compile(rf".*-{_VERSION}")  # a package name must not (PMS 3.1.2)
_OPS = ("<=", ">=", "=", "~", "<", ">", "!!", "!")


def split_cpv(cpv: str) -> tuple[str, str]:
    """'cat/pkg-1.2-r1' -> ('cat/pkg', '1.2-r1')."""
    match = _VERSION_RE.search(cpv)
    if not match:
        raise ValueError(f"not a category/package-version: {cpv}")
    return cpv[: match.start()], match.group(1)


def is_cpv(cpv: str) -> bool:
    """Is `cpv` exactly one category/package-version ('cat/pkg-1.2-r1')?"""
    if _CPV_RE.fullmatch(cpv) is None:
        return False
    return not ends_like_version(split_cpv(cpv)[0].split("/", 1)[1])


def atom_cp(atom: str) -> str:
    """'>=cat/pkg-1.2:0/1[use]::repo' -> 'cat/pkg'."""
    rest = atom
    for op in _OPS:
        if rest.startswith(op):
            rest = rest[len(op) :]
            break
    rest = rest.split("::", 1)[0].split("[", 1)[0].split(":", 1)[0].rstrip("*")
    if atom != rest and atom[0] in "<>=~":
        try:
            rest = split_cpv(rest)[0]
        except ValueError:
            pass
    return rest


def provided_cp(entry: str) -> str:
    """The category/name of a package.provided entry, versioned ('cat/pkg-1.0') or not ('cat/pkg')."""
    try:
        return split_cpv(entry)[0]
    except ValueError:
        return entry


def check_atom(atom: str) -> str | None:
    """None if `atom` is a package atom (no blocker), else what is wrong with it."""
    match = _ATOM_RE.fullmatch(atom)
    if match is None:
        cp = atom_cp(atom)
        if atom[:1] in ("<", ">", "=", "~") and _CP_RE.fullmatch(cp) and cp == atom.lstrip("<>=~"):
            return f"'{shown(atom)}' has a version operator but no version"
        if atom[:1].isalnum() and _ATOM_RE.fullmatch(f"={atom}"):
            return f"'{shown(atom)}' names a version without an operator: write ={shown(atom)}"
        return f"'{shown(atom)}' is not a package atom (category/name)"
    if match.group("star") and match.group("op") != "=":
        return f"'{shown(atom)}': a version glob (*) goes with = only"
    name = (match.group("cp") or split_cpv(match.group("cpv"))[0]).split("/", 1)[1]
    if ends_like_version(name):
        return f"'{shown(atom)}' names a version without an operator: write ={shown(atom)}"
    return None


def ends_like_version(name: str) -> bool:
    """A package or repository name must not end in a hyphen and a version (PMS 3.1.2, 3.1.5)."""
    return bool(_ENDS_LIKE_VERSION.fullmatch(name))
