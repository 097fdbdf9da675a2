"""Just enough Gentoo atom syntax: the category/name of an atom, and splitting a CPV (used by the spec
and by the Gentoo steps)."""

from __future__ import annotations

import re

_CP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9+_.-]*/[A-Za-z0-9_][A-Za-z0-9+_-]*$")
# A version: digits(.digits)* letter? (_suffix digits?)* (-rN)?  (PMS 3.2)
_VERSION_RE = re.compile(r"-(\d+(?:\.\d+)*[a-z]?(?:_(?:alpha|beta|pre|rc|p)\d*)*(?:-r\d+)?)$")
_OPS = ("<=", ">=", "=", "~", "<", ">", "!!", "!")


def split_cpv(cpv: str) -> tuple[str, str]:
    """'cat/pkg-1.2-r1' -> ('cat/pkg', '1.2-r1')."""
    match = _VERSION_RE.search(cpv)
    if not match:
        raise ValueError(f"not a category/package-version: {cpv}")
    return cpv[: match.start()], match.group(1)


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
    """None if `atom` looks like a package atom, else what is wrong with it."""
    cp = atom_cp(atom)
    if not _CP_RE.match(cp):
        return f"'{atom}' is not a package atom (category/name)"
    if atom[0] in "<>=~" and cp == atom.lstrip("<>=~"):
        return f"'{atom}' has a version operator but no version"
    return None
