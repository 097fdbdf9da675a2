"""The part of YAML that registries.d files use, read strictly (pure).

registries.d(5) files are trees of mappings whose leaves are URLs and booleans. This reads block
mappings (indented with spaces), plain, 'single' and "double" quoted scalars, `{}`, comments and
a leading `---`; anything else (sequences, anchors, multi-line scalars, tabs, flow collections,
duplicate keys) is refused with the file and line, never guessed. A leaf is a str, or None when
empty.
"""

from __future__ import annotations

import re

from chrootforge import untrusted

_KEY_RE = re.compile(
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{}\[\]&*!|>%@`,?:-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s+(?P<value>.*))?\Z"""
)


class YamlError(ValueError):
    def __init__(self, where: str, line: int, message: str):
        super().__init__(f"{where}:{line}: {message}")


def _strip_comment(text: str) -> str:
    """The line without a trailing comment (a # after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str, where: str, line: int) -> str | dict | None:
    text = text.strip()
    if not text or text in ("~", "null"):
        return None
    if text == "{}":
        return {}
    if text[0] == '"':
        if len(text) < 2 or not text.endswith('"'):
            raise YamlError(where, line, "an unterminated double-quoted string")
        try:
            value = untrusted.loads_json(text, where)  # YAML's double-quoted escapes are a superset of JSON's
        except ValueError as err:
            raise YamlError(
                where, line, f"a double-quoted string chrootforge cannot read: {text[:60]}"
            ) from err
        if not isinstance(value, str):
            raise YamlError(where, line, "expected a string")
        return value
    if text[0] == "'":
        if len(text) < 2 or not text.endswith("'") or "'" in text[1:-1].replace("''", ""):
            raise YamlError(where, line, "an unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[0] in "[{&*!|>%@`" or text.startswith("- "):
        raise YamlError(
            where, line, f"{text[:40]!r}: only mappings of plain or quoted values are read in registries.d"
        )
    return text


def _key(text: str, where: str, line: int) -> str:
    value = _scalar(text, where, line)
    if not isinstance(value, str) or not value:
        raise YamlError(where, line, "a mapping key must be a non-empty string")
    return value


def loads(text: str, where: str) -> dict:
    """The document's top-level mapping ({} for an empty document)."""
    root: dict = {}
    stack: list[list] = [[None, root]]  # [indent, mapping]; the root's indent is its first line's
    pending: tuple[dict, str] | None = None  # a key with no value: its child mapping may follow
    seen_content = False
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError(where, number, "a tab in the indentation (YAML indents with spaces)")
        body = _strip_comment(raw)
        if not body.strip() or (body.strip() == "---" and not seen_content):
            continue
        seen_content = True
        indent = len(body) - len(body.lstrip(" "))
        match = _KEY_RE.match(body.strip())
        if not match:
            raise YamlError(where, number, f"{body.strip()[:60]!r} is not a `key: value` line")
        if pending is not None and indent > stack[-1][0]:
            child: dict = {}
            pending[0][pending[1]] = child
            stack.append([indent, child])
        pending = None
        while stack[-1][0] is not None and indent < stack[-1][0] and len(stack) > 1:
            stack.pop()
        if stack[-1][0] is None:
            stack[-1][0] = indent
        if indent != stack[-1][0]:
            raise YamlError(where, number, "the indentation does not match any mapping above")
        mapping = stack[-1][1]
        key = _key(match.group("key"), where, number)
        if key in mapping:
            raise YamlError(where, number, f"the key {key!r} is defined twice")
        value = match.group("value")
        if value is None or not value.strip():
            mapping[key] = None
            pending = (mapping, key)
        else:
            mapping[key] = _scalar(value, where, number)
    return root
