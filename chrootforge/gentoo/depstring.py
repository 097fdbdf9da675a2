"""Gentoo's dependency-specification syntax (PMS 8.2), as used by *DEPEND and LICENSE (pure).

Items separated by blanks are all required; `|| ( a b )` needs one of them; `( a b )` groups;
`flag? ( ... )` applies only with the USE flag, `!flag? ( ... )` only without it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    kind: str  # "all" | "any" | "use"
    items: tuple[Node, ...]
    flag: str = ""  # kind "use": the flag, and whether it is `!flag?`
    negated: bool = False

    def applies(self, use) -> bool:
        return self.kind != "use" or (self.flag in use) != self.negated

    def text(self) -> str:
        inner = " ".join(text(i) for i in self.items)
        head = {"all": "", "any": "|| ", "use": f"{'!' if self.negated else ''}{self.flag}? "}[self.kind]
        return f"{head}( {inner} )"


Node = str | Group


def text(node: Node) -> str:
    return node if isinstance(node, str) else node.text()


def parse(value: str) -> tuple[Node, ...]:
    """The top-level items of `value`; a malformed string is a ValueError."""
    tokens = value.replace("(", " ( ").replace(")", " ) ").split()
    return _items(tokens, 0, nested=False)[0]


def _items(tokens: list[str], pos: int, nested: bool) -> tuple[tuple[Node, ...], int]:
    items: list[Node] = []
    while pos < len(tokens):
        token = tokens[pos]
        if token == ")":
            if not nested:
                raise ValueError("unbalanced ')'")
            return tuple(items), pos + 1
        if token == "||" or token.endswith("?") or token == "(":
            start = pos + (0 if token == "(" else 1)
            if start >= len(tokens) or tokens[start] != "(":
                raise ValueError(f"'{token}' must be followed by a ( group )")
            group, pos = _items(tokens, start + 1, nested=True)
            if token == "||":
                items.append(Group("any", group))
            elif token == "(":
                items.append(Group("all", group))
            else:
                flag = token[:-1]
                items.append(Group("use", group, flag.lstrip("!"), flag.startswith("!")))
            continue
        items.append(token)
        pos += 1
    if nested:
        raise ValueError("unbalanced '('")
    return tuple(items), pos
