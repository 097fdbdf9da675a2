"""A TOML spec file with positions: tomllib parses, this module finds the line of any key.

tomllib reports line/column for syntax errors only. Semantic errors (unknown key, wrong type) need the
line of a key, so `locate` scans the source text: it tracks the current [table] header and matches
`key = ...` lines (dotted and quoted keys included). Keys inside inline tables fall back to the line
of the enclosing key.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from chrootforge import untrusted
from chrootforge.errors import UsageError, shown
from chrootforge.fsutil import read_regular

_BARE = r"[A-Za-z0-9_-]+"
_KEY_PART = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_RE = re.compile(rf"^\s*\[(\[)?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?\Z")
_KEYLINE_RE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_KEY_PART)
_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for match in _PART_RE.finditer(dotted):
        token = match.group(0)
        if token[0] == '"':
            token = token[1:-1].encode().decode("unicode_escape")
        elif token[0] == "'":
            token = token[1:-1]
        parts.append(token)
    return tuple(parts)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every table header and key line, by full key path, with its 1-based line number."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    array_index: dict[tuple[str, ...], int] = {}
    in_multiline = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            table = split_key(header.group(2))
            if header.group(1):  # [[array]]: later headers refer to the newest element
                array_index[table] = array_index.get(table, -1) + 1
                found.setdefault(table, number)
                table = (*table, str(array_index[table]))
            found.setdefault(table, number)
            continue
        keyline = _KEYLINE_RE.match(line)
        if keyline:
            path = table + split_key(keyline.group(1))
            for i in range(len(table) + 1, len(path) + 1):
                found.setdefault(path[:i], number)
            rest = line[keyline.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return found


@dataclass
class SpecFile:
    """A parsed TOML spec: `data` plus what is needed to point at a line in errors."""

    path: Path
    text: str
    data: dict
    # Set while a namespace file is read for one platform: `${NAME}` then takes `$NAME_<SUFFIX>`
    # when that is set (schema.expand_path), e.g. ARM64 for linux/arm64.
    env_suffix: str = ""

    def __post_init__(self):
        self._lines = _key_lines(self.text)

    def line_of(self, key: tuple[str, ...]) -> int | None:
        key = tuple(str(k) for k in key)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None

    def where(self, key: tuple[str, ...] = ()) -> str:
        line = self.line_of(key) if key else None
        return f"{self.path}:{line}" if line else str(self.path)

    def error(self, key: tuple[str, ...], message: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{self.where(key)}: {message}", hint=hint)


def load(path: str | Path) -> SpecFile:
    path = Path(path)

    try:
        text = read_regular(path, untrusted.MAX_FILE).decode("utf-8")
    except FileNotFoundError as err:
        raise UsageError(f"{path}: no such file") from err
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: cannot read: {err}") from err
    try:
        data = untrusted.loads_toml(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        pos = _POS_RE.search(message)
        if pos:
            line, col = pos.group(1), pos.group(2)
            message = _POS_RE.sub("", message).strip()
            raise UsageError(
                f"{path}:{line}:{col}: TOML syntax error: {message}",
                hint="see https://toml.io for the syntax",
            ) from err
        if "end of document" in message:  # tomllib gives no position there: it is the last line
            line = text.count("\n") + 1
            raise UsageError(
                f"{path}:{line}: TOML syntax error: {message}", hint="an unclosed [ { or string?"
            ) from err
        raise UsageError(f"{path}: TOML syntax error: {message}") from err
    return SpecFile(path, text, data)


def suggest(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def check_keys(spec: SpecFile, key: tuple[str, ...], table: dict, allowed) -> None:
    """Unknown keys are errors; the hint names the closest allowed key."""
    for name in table:
        if name not in allowed:
            close = suggest(name, allowed)
            what = f"[{'.'.join(key)}]" if key else "the top level"
            hint = f"did you mean '{close}'?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
            raise spec.error((*key, name), f"unknown key '{shown(name)}' in {what}", hint=hint)
