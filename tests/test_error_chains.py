"""Issue 22: an error that wraps another keeps it as its cause (`raise ... from err`), so that
`--debug` shows what went wrong underneath. `from None` would drop it: inside an except handler,
no raise uses it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chrootforge"


def _drops_cause(handler: ast.ExceptHandler):
    todo = list(handler.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Raise) and isinstance(node.cause, ast.Constant) and node.cause.value is None:
            yield node.lineno
        todo.extend(ast.iter_child_nodes(node))


def test_no_handler_drops_the_cause():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler):
                offenders += [f"{path.relative_to(PACKAGE.parent)}:{line}" for line in _drops_cause(node)]
    assert not offenders, "raise ... from err, not from None:\n" + "\n".join(sorted(offenders))


def test_the_cause_shows_under_debug(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "ns"
    bad.mkdir()
    (bad / "chrootforge.toml").write_text("name = [unclosed\n")
    out = subprocess.run(
        [sys.executable, "-m", "chrootforge", "--debug", "build", "--plan", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "The above exception was the direct cause" in out.stderr, out.stderr
