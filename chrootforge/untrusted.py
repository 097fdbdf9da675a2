"""Parsing documents that arrive from outside: a layout's index.json, manifests and configs,
registry answers, auth files, caches and state files (JSON), spec and lock files (TOML).

The one place that bounds their nesting: Python's parsers recurse, so a document nested a few
thousand levels deep would otherwise end in a RecursionError (and code walking a parsed document
recursively, json.dumps included, would fail the same way later). Every document chrootforge
reads nests less than 20 levels; MAX_DEPTH leaves ample room. Errors are one line naming the
file or URL (`where`).

`BadDocument` is both a CfError (one clear line for the user) and a ValueError, so callers that
tolerate a corrupt cache file (`except ValueError`) keep doing so.
"""

from __future__ import annotations

import json
from pathlib import Path

from chrootforge.errors import CfError

MAX_DEPTH = 64


class BadDocument(CfError, ValueError):
    """A document that is not valid JSON, or nests deeper than MAX_DEPTH."""


def _too_deep(where: str) -> str:
    return f"{where} nests deeper than {MAX_DEPTH} levels; refusing it"


def depth_exceeds(doc, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed document nests deeper than `limit` (iterative: safe on any depth)."""
    todo = [(doc, 1)]
    while todo:
        value, depth = todo.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads_json(data: bytes | str, where: str, pairs_hook=None):
    """The parsed JSON document, or BadDocument naming `where`. `pairs_hook` is json's
    object_pairs_hook (e.g. to refuse duplicate keys, as the signature formats demand); what it
    raises passes through."""
    raised: list[BaseException] = []

    def guarded(pairs):
        try:
            return pairs_hook(pairs)
        except BaseException as err:  # the hook's own refusal is the caller's error, not ours
            raised.append(err)
            raise

    try:
        doc = json.loads(data, object_pairs_hook=guarded if pairs_hook else None)
    except RecursionError as err:
        raise BadDocument(_too_deep(where)) from err
    except UnicodeDecodeError as err:  # (its message would quote the bytes: auth files hold secrets)
        raise BadDocument(f"{where} is not valid JSON: not UTF-8 text") from err
    except ValueError as err:  # json's messages give a position, never the content
        if raised:
            raise raised[0] from err
        raise BadDocument(f"{where} is not valid JSON: {err}") from err
    if depth_exceeds(doc):
        raise BadDocument(_too_deep(where))
    return doc


MAX_FILE = 64 << 20  # a JSON or TOML file read by name (auth files, caches, state, specs, locks)


def read_json(path: str | Path, where: str | None = None, limit: int = MAX_FILE):
    """A JSON file, parsed (OSError as open() raises it, and for a FIFO that has no writer, a
    device, a directory or more than `limit` bytes: never a read that blocks or does not end;
    BadDocument naming the file)."""
    from chrootforge.fsutil import read_input

    return loads_json(read_input(path, limit), where or str(path))


def loads_toml(text: str) -> dict:
    """tomllib.loads with the same bound; a too-deep document is a tomllib.TOMLDecodeError, so the
    caller's usual one-line syntax error (naming the file) reports it."""
    import tomllib  # start-up speed: push and pull read JSON only; tomllib (and typing) cost ~5 ms

    try:
        doc = tomllib.loads(text)
    except RecursionError as err:
        raise tomllib.TOMLDecodeError(_too_deep("the document")) from err
    if depth_exceeds(doc):
        raise tomllib.TOMLDecodeError(_too_deep("the document"))
    return doc
