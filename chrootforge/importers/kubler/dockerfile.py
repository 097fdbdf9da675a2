"""kubler's Dockerfile.template: kubler's own substitution, then Docker's instructions (pure).

kubler renders the template with sed before `docker build`: ${IMAGE_PARENT}, ${DEFAULT_BUILDER},
${NAMESPACE}, ${TAG}, ${MAINTAINER} and every ${BOB_*} become their values; every other ${...} is
left for Docker, which substitutes variables in ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
USER, VOLUME and WORKDIR from the environment built so far (the parent's, then each ENV).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chrootforge import untrusted
from chrootforge.errors import UsageError

_KUBLER_VARS = ("IMAGE_PARENT", "DEFAULT_BUILDER", "NAMESPACE", "TAG", "MAINTAINER")
_VAR = re.compile(r"\$\{(BOB_[A-Za-z0-9_]*|" + "|".join(_KUBLER_VARS) + r")\}")


@dataclass(frozen=True)
class Instruction:
    line: int  # where the instruction starts in Dockerfile.template
    keyword: str  # upper case
    args: str  # the rest, continuation lines joined
    source: str  # the instruction as written (continuations joined), for IMPORT.md


def render(text: str, values: dict[str, str]) -> str:
    """kubler's substitution: its five variables and the BOB_ ones (unknown BOB_ ones stay)."""

    def sub(match: re.Match) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return _VAR.sub(sub, text)


def parse(text: str, where: str) -> list[Instruction]:
    """Docker's instruction syntax: `#` comment lines, a trailing backslash continues the line."""
    out: list[Instruction] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [raw]
        while parts[-1].rstrip().endswith("\\") and i < len(lines):
            parts[-1] = parts[-1].rstrip()[:-1]
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                i += 1  # a comment inside a continued instruction is dropped
            if i < len(lines):
                parts.append(lines[i])
                i += 1
        joined = " ".join(p.strip() for p in parts if p.strip())
        keyword, _, args = joined.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise UsageError(f"{where}:{start}: '{keyword}' is not a Dockerfile instruction")
        out.append(Instruction(start, keyword.upper(), args.strip(), joined))
    return out


def exec_form(args: str) -> list[str] | None:
    """The JSON (exec) form of CMD, ENTRYPOINT, RUN, VOLUME, COPY and ADD, or None (shell form)."""
    if not args.startswith("["):
        return None
    try:
        value = untrusted.loads_json(args, "a Dockerfile instruction")
    except ValueError:  # (BadDocument too): not JSON, so Docker takes it as the shell form
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


# -- Docker's word rules (ENV, LABEL, EXPOSE, VOLUME, COPY, ...) ---------------------------------
def words(text: str, env: dict[str, str]) -> list[str]:
    """Split on white space outside quotes; quotes and backslashes as Docker's lexer treats them;
    $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word} from `env` (unset: empty)."""
    out: list[str] = []
    cur: list[str] = []
    have = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            if have:
                out.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        have = True
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ValueError("unterminated single quote")
            cur.append(text[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$':
                    cur.append(text[i + 1])
                    i += 2
                elif text[i] == "$":
                    value, i = _expand(text, i, env)
                    cur.append(value)
                else:
                    cur.append(text[i])
                    i += 1
            if i >= n:
                raise ValueError("unterminated double quote")
            i += 1
        elif ch == "\\" and i + 1 < n:
            cur.append(text[i + 1])
            i += 2
        elif ch == "$":
            value, i = _expand(text, i, env)
            cur.append(value)
        else:
            cur.append(ch)
            i += 1
    if have:
        out.append("".join(cur))
    return out


def _expand(text: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """The value of the variable reference at text[i] ("$"), and where it ends."""
    if text.startswith("${", i):
        end = text.find("}", i)
        if end < 0:
            raise ValueError("unterminated ${")
        inner = text[i + 2 : end]
        name, op, word = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:[-+])?(.*)", inner, re.S).groups()  # type: ignore[union-attr]
        value = env.get(name, "")
        if op == ":-":
            value = value or word
        elif op == ":+":
            value = word if value else ""
        return value, end + 1
    match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(text, i + 1)
    if not match:
        return "$", i + 1
    return env.get(match.group(0), ""), match.end()


def pairs(text: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV and LABEL: key=value pairs; the old `ENV key value` form when the first word has no `=`.
    Every value is substituted with the environment from before the instruction."""
    items = words(text, env)
    if items and "=" not in items[0]:
        key, _, rest = text.strip().partition(" ")
        return [(key, " ".join(words(rest, env)))]
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"'{item}' is not KEY=VALUE")
        out.append((key, value))
    return out


def ports(items: list[str]) -> list[str]:
    """EXPOSE words as Docker stores them: one port per entry, ranges expanded, /tcp by default."""
    out = []
    for item in items:
        spec, _, proto = item.partition("/")
        proto = proto or "tcp"
        low, dash, high = spec.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"'{item}' is not a port or port range")
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last - first > 1024:
            raise ValueError(f"'{item}' is not a sensible port range")
        out += [f"{port}/{proto}" for port in range(first, last + 1)]
    return out


def flags(args: str) -> tuple[dict[str, str], str]:
    """Leading --name=value options (COPY, ADD, HEALTHCHECK) and the rest."""
    opts: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        name, _, value = word[2:].partition("=")
        opts[name] = value
        rest = rest.lstrip()
    return opts, rest
