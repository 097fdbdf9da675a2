"""Typed access to spec values: every wrong type is a UsageError at the key's file:line."""

from __future__ import annotations

import os
import re

from chrootforge.spec.source import SpecFile

_MISSING = object()
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Fields:
    """Reads one table of a spec file; `key` is the table's path (for error positions)."""

    def __init__(self, spec: SpecFile, key: tuple[str, ...], table: dict):
        self.spec, self.key, self.table = spec, key, table

    def _get(self, name, default):
        return self.table.get(name, default)

    def _bad(self, name: str, want: str, value) -> Exception:
        return self.spec.error((*self.key, name), f"'{name}' must be {want}, not {type(value).__name__}")

    def str(self, name: str, default=None):
        value = self._get(name, default)
        if value is not None and not isinstance(value, str):
            raise self._bad(name, "a string", value)
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false", value)
        return value

    def int(self, name: str, default=None):
        value = self._get(name, default)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise self._bad(name, "an integer", value)
        return value

    def str_list(self, name: str, default=(), allow_str: bool = False) -> list[str]:
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return list(default)
        if allow_str and isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(name, "a list of strings", value)
        return list(value)

    def str_map(self, name: str) -> dict[str, str]:
        value = self._get(name, {})
        if not isinstance(value, dict):
            raise self._bad(name, "a table", value)
        for k, v in value.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                value[k] = str(v)
            elif not isinstance(v, str):
                raise self.spec.error((*self.key, name, k), f"'{name}.{k}' must be a string")
        return dict(value)

    def table_of(self, name: str) -> Fields:
        value = self._get(name, {})
        if not isinstance(value, dict):
            raise self._bad(name, "a table", value)
        return Fields(self.spec, (*self.key, name), value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise self.spec.error((*self.key, name), f"'{name}' must be one of {', '.join(choices)}, "
                                  f"not '{value}'")
        return value

    def path(self, name: str, default=None):
        """A path, relative to the spec file's folder, with ${VAR} taken from the environment."""
        value = self.str(name, default)
        if value is None:
            return None
        return expand_path(self.spec, (*self.key, name), value)


def expand_path(spec: SpecFile, key: tuple[str, ...], value: str):
    from pathlib import Path

    def var(match):
        name = match.group(1)
        if name not in os.environ:
            raise spec.error(key, f"${{{name}}} is not set in the environment",
                             hint=f"export {name}=... or give the path directly")
        return os.environ[name]

    expanded = os.path.expanduser(_VAR_RE.sub(var, value))
    path = Path(expanded)
    if not path.is_absolute():
        path = spec.path.parent / path
    return Path(os.path.normpath(path))
