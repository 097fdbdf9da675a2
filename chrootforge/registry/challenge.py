"""WWW-Authenticate parsing (RFC 7235): `Basic realm="x"`, `Bearer realm="..",service="..",scope=".."`.

Pure: a header value in, a list of Challenge values out; anything that does not follow the grammar
is a ChallengeError (one clear line naming the registry), never a guess.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlparse

from chrootforge.errors import CfError

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class ChallengeError(CfError):
    pass


@dataclasses.dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "basic", "bearer", ...
    params: dict

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> None:
        raise ValueError(why)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in _TOKEN_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        self.pos += 1  # the opening quote
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                self.fail("unterminated quoted string")
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ch == "\\":
                if not self.peek():
                    self.fail("unterminated quoted string")
                ch = self.peek()
                self.pos += 1
            elif ord(ch) < 0x20 and ch != "\t":
                self.fail("control character in quoted string")
            out.append(ch)

    def param_follows(self) -> bool:
        """Whether `token =` starts at the current position (else a new challenge does)."""
        save = self.pos
        try:
            if not self.token():
                return False
            self.spaces()
            return self.peek() == "="
        finally:
            self.pos = save


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of one header value; ValueError (with the reason) when malformed."""
    p = _Parser(header)
    out: list[Challenge] = []
    while True:
        while p.peek() in (" ", "\t", ","):  # peek() is "" at the end, in no tuple
            p.pos += 1
        if not p.peek():
            break
        scheme = p.token()
        if not scheme:
            p.fail(f"unexpected {p.peek()!r} where an auth scheme should start")
        params: dict[str, str] = {}
        p.spaces()
        while p.param_follows():
            name = p.token().lower()
            p.spaces()
            p.pos += 1  # '='
            p.spaces()
            value = p.quoted() if p.peek() == '"' else p.token()
            if name in params:
                p.fail(f"parameter {name!r} given twice")
            params[name] = value
            p.spaces()
            if p.peek() == ",":
                p.pos += 1
                p.spaces()
            elif p.peek():
                p.fail(f"unexpected {p.peek()!r} after parameter {name!r}")
        if p.peek() and not params:
            p.fail(f"auth scheme {scheme!r} is followed by {p.peek()!r}")
        out.append(Challenge(scheme.lower(), params))
    if not out:
        p.fail("empty header")
    return out


def _describe(header: str) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in header)
    return clean if len(clean) <= 120 else clean[:120] + "…"


def select_challenge(header: str | None, registry: str) -> Challenge:
    """The challenge chrootforge answers (Bearer before Basic), checked; ChallengeError otherwise."""
    what = f"{registry} sent a malformed WWW-Authenticate header"
    if not header:
        raise ChallengeError(
            f"{registry} answered 401 without a WWW-Authenticate header",
            hint="the registry (or a proxy in front of it) is misconfigured",
        )
    try:
        challenges = parse_challenges(header)
    except ValueError as err:
        raise ChallengeError(f"{what} ({err}): {_describe(header)}") from err
    by_scheme = {c.scheme: c for c in challenges}
    if "bearer" in by_scheme:
        bearer = by_scheme["bearer"]
        realm = bearer.params.get("realm", "")
        url = urlparse(realm)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ChallengeError(f"{what} (Bearer realm {_describe(realm)!r} is not an http(s) URL)")
        return bearer
    if "basic" in by_scheme:
        return by_scheme["basic"]
    schemes = ", ".join(sorted(by_scheme))
    raise ChallengeError(
        f"{registry} asks for unsupported authentication ({schemes})",
        hint="chrootforge speaks Basic and Bearer (token) authentication",
    )
