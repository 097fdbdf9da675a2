"""The class behind several of issue 18's accepted-but-wrong values: in Python, `$` also matches
before a trailing newline, so `re.match(r"^x$", "x\n")` succeeds and a name with a newline passes a
check. Patterns anchor their end with `\\Z` (or are used with fullmatch); this test keeps `$` out of
every pattern literal in chrootforge/ except MULTILINE ones, where it means "end of a line"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chrootforge"
_FUNCS = {"compile", "match", "fullmatch", "search"}


def _pattern_literals(tree: ast.AST):
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in _FUNCS or not isinstance(node.func.value, ast.Name):
            continue
        if node.func.value.id != "re" or not node.args:
            continue
        flags = ast.unparse(node)
        if "MULTILINE" in flags or "re.M" in flags:
            continue
        first = node.args[0]
        parts = [first] if isinstance(first, ast.Constant) else list(getattr(first, "values", []))
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                yield node.lineno, part.value


def test_no_pattern_ends_with_a_dollar():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _pattern_literals(ast.parse(path.read_text())):
            if re.search(r"(?<!\\)\$\)*$", text):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert not offenders, "end patterns with \\Z, not $:\n" + "\n".join(offenders)


def test_the_anchor_refuses_a_trailing_newline():
    from chrootforge import imageref as reference
    from chrootforge.oci import refs, shapes

    assert shapes.DIGEST_RE.match("sha256:" + "a" * 64)
    assert not shapes.DIGEST_RE.match("sha256:" + "a" * 64 + "\n")
    assert not refs._TAG_RE.match("latest\n")
    assert not reference._TAG_RE.match("latest\n")
