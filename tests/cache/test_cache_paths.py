"""`chrootforge/cache/kinds.py` is the one place that builds a path in the user cache: every other
module asks it (kind_root, entry, bookkeeping), so that every entry has a kind that `cache ls`
counts and `cache prune` removes, and every name is confined to the cache."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chrootforge.cache import kinds
from chrootforge.rootpath import PathRefused

PACKAGE = Path(__file__).resolve().parents[2] / "chrootforge"
ROOT_GETTERS = {"user_cache_dir", "cache_home"}  # what hands out the cache root itself
KIND_PATHS = {"kind_root", "runs_root", "default_root", "cache_root"}  # a kind's own directory
# (module, constant) that name another machine's cache: the --vm guest's, set in its environment
ELSEWHERE = {("chrootforge/vm/vmbuild.py", "XDG_CACHE_HOME")}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text())


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def test_only_kinds_gets_the_cache_root():
    """Nobody but kinds.py (and fsutil, which defines it) can start a path at the cache root."""
    found = []
    for module, tree in _modules():
        if module in ("chrootforge/fsutil.py", "chrootforge/cache/kinds.py"):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.Name | ast.Attribute):
                names = [_name(node)]
            for name in names:
                if name == "user_cache_dir" or (
                    name == "cache_home" and not module.startswith("chrootforge/cache/")
                ):
                    found.append(f"{module}:{node.lineno}: {name}")
            if (
                isinstance(node, ast.Constant)
                and node.value in ("XDG_CACHE_HOME", ".cache", "/var/cache/chrootforge")
                and (module, node.value) not in ELSEWHERE
            ):
                found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert found == [], "cache paths built outside chrootforge/cache/kinds.py:\n" + "\n".join(found)


def test_nobody_joins_names_onto_a_kinds_directory_by_hand():
    """`kind_root(...) / "name"` would make an entry that kinds.py does not know about (a path of
    no kind is never pruned) or take an unchecked name: ask kinds.entry() instead."""
    found = []
    for module, tree in _modules():
        if module == "chrootforge/cache/kinds.py":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.left, ast.Call)
                and _name(node.left.func) in ROOT_GETTERS | KIND_PATHS
            ):
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "paths joined onto a cache directory outside kinds.py:\n" + "\n".join(found)


def test_what_modules_ask_for_is_in_the_table():
    """Every literal kind, entry and bookkeeping name that modules ask for is in kinds' tables."""
    asked = []
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in ("kind_root", "entry", "bookkeeping"):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    asked.append((module, _name(node.func), first.value))
    assert asked, "the scan found no use of kinds.py at all"
    for module, func, value in asked:
        table = kinds.BOOKKEEPING if func == "bookkeeping" else kinds.BY_NAME
        assert value in table, f"{module}: {func}({value!r}) is not in kinds.py's tables"


@pytest.mark.parametrize(
    "name",
    ["../x", "..", ".", "a/b", "/etc/passwd", "", ".hold", "x\0y", "stage3/../../../x", "a" * 256],
)
def test_a_name_cannot_leave_its_kind(name, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(PathRefused):
        kinds.entry("stages", name)
    with pytest.raises(PathRefused):
        kinds.confined(tmp_path, name)


def test_entries_are_where_the_table_says(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = tmp_path / "chrootforge"
    assert kinds.entry("binhost", "u1", "k1") == root / "binhost" / "u1" / "k1"
    assert kinds.entry("work", "0a1b") == root / "work" / "0a1b"
    assert kinds.bookkeeping("native-cpu.json") == root / "native-cpu.json"
    with pytest.raises(ValueError):
        kinds.entry("binhost", "only-one")
    with pytest.raises(ValueError):
        kinds.bookkeeping("anything.json")
