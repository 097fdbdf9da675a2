"""Deeply nested documents: one bounded parser (chrootforge/untrusted.py) for everything read from
outside, and one clear line instead of a RecursionError wherever such a document can arrive."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from chrootforge import untrusted
from tests.registry.checks import cli, one_error_line

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit
MIDDLING = '{"a":' * 200 + "1" + "}" * 200  # parses, but nests past MAX_DEPTH


@pytest.mark.parametrize("text", [DEEP, MIDDLING])
def test_deep_json_is_one_error_naming_the_source(text):
    with pytest.raises(untrusted.BadDocument, match=r"^the thing nests deeper than 64 levels"):
        untrusted.loads_json(text, "the thing")
    with pytest.raises(ValueError):  # callers that tolerate a damaged cache keep doing so
        untrusted.loads_json(text.encode(), "the thing")


def test_ordinary_json_and_its_errors():
    ok = '{"a":' * 63 + "[]" + "}" * 63
    assert untrusted.loads_json(ok, "x")
    with pytest.raises(untrusted.BadDocument, match=r"^f is not valid JSON: Expecting"):
        untrusted.loads_json(b"{", "f")
    with pytest.raises(untrusted.BadDocument, match=r"^f is not valid JSON: not UTF-8 text$"):
        untrusted.loads_json(b'{"secret": "\xff\xfe"}', "f")  # never the bytes themselves


def test_deep_toml_is_a_toml_syntax_error():
    deep = "a = " + "[" * 5000 + "1" + "]" * 5000 + "\n"
    for text in (deep, "a = " + "[" * 100 + "1" + "]" * 100 + "\n"):
        with pytest.raises(tomllib.TOMLDecodeError, match="nests deeper than 64 levels"):
            untrusted.loads_toml(text)


def _calls(pattern: str) -> list[str]:
    found = []
    for path in sorted((ROOT / "chrootforge").rglob("*.py")):
        if path.name == "untrusted.py" and path.parent.name == "chrootforge":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_every_json_and_toml_reader_goes_through_untrusted():
    """The one place that bounds the depth: no other module parses JSON or TOML itself."""
    assert _calls(r"\bjson\.loads?\(|\bJSONDecoder\b|\btomllib\.loads?\(|\.json\(\)") == []


def test_deep_spec_file_is_one_line(tmp_path):
    ns = tmp_path / "ns"
    ns.mkdir()
    (ns / "chrootforge.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    out = cli("build", str(ns), "--plan")
    assert out.returncode == 2, out.stderr
    one_error_line(out.stderr, f"{ns / 'chrootforge.toml'}: TOML syntax error: the document nests deeper")


def test_deep_auth_file_is_one_line(tmp_path):
    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": ' + DEEP + "}")
    out = cli("pull", "docker://127.0.0.1:9/r/x:1", f"{tmp_path / 'L'}:x", "--authfile", str(auth))
    assert out.returncode == 1, out.stderr
    one_error_line(out.stderr, f"the auth file {auth} nests deeper than 64 levels")


def test_deep_commit_config_is_one_line(tmp_path):
    (tmp_path / "tree").mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"Env": []})[:-1] + ', "x": ' + DEEP + "}")
    out = cli(
        "commit",
        str(tmp_path / "tree"),
        "--layout",
        str(tmp_path / "L"),
        "--tag",
        "t",
        "--config",
        str(config),
    )
    assert out.returncode == 2, out.stderr
    one_error_line(out.stderr, f"--config {config} nests deeper than 64 levels")
