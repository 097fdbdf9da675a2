"""Immutable value classes for the modules `chrootforge run` imports.

`import dataclasses` pulls in inspect (with ast, dis and tokenize) and each decorated class compiles
generated methods: together more than every sandbox module costs to import. The sandbox's plan values
(config, id map, mount steps, created paths) derive from Value instead. A subclass declares its fields
once as __slots__ (in order), annotates them for the type checker, and its __init__ calls
self._init(...) with the values in that order.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs a few milliseconds to import
if TYPE_CHECKING:
    from typing import Any, Self


class Value:
    """Equality, hash, repr and replace() from __slots__; attributes cannot be set after _init()."""

    __slots__: tuple[str, ...] = ()

    def _init(self, *values: Any) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable (use replace())")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self):
        return (type(self), self._fields())  # pickles through __init__, positional in slot order

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (dataclasses.replace)."""
        return type(self)(**{**self.as_dict(), **changes})
