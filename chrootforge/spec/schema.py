"""The spec's keys, declared once.

Every key of chrootforge.toml and image.toml is a field of a model dataclass (spec/model.py) declared
with `key(...)`: its TOML type (a `Kind`), default, validation and help text sit on that one line.
A field declared with `section(...)`, `tables(...)` or `table_map(...)` holds a TOML table: `[strip]`,
`[package."ATOM"]`, `[repos]`. From these declarations:

- `read` turns one TOML table into a model's field values (types checked, defaults applied, values
  validated, unknown keys refused with the closest known one), errors at the key's file:line;
- `walk` lists the sections and keys in order, for the key reference in docs/pipeline.md
  (spec/keydocs.py) and for `chrootforge new` (spec/scaffold.py);
- `content_digest` hashes what of a loaded spec decides what the images are, for the build key:
  every key but those declared `content=False` (where an image goes, how it is named, where an
  input is found: the build key has the inputs by content, build.image_key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chrootforge.errors import UsageError, shown
from chrootforge.platforms import parse_platform
from chrootforge.spec import checks, source
from chrootforge.spec.source import SpecFile

REQUIRED = object()  # the default of a key that must be given
_META = "chrootforge.spec"
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+\Z")

Check = Callable[[object], "str | None"]


# -- where a value is, for errors ------------------------------------------------------------------
@dataclass(frozen=True)
class At:
    spec: SpecFile
    path: tuple[str, ...]  # the key path in the file, e.g. ("config", "ports")

    @property
    def name(self) -> str:
        """The key's name as a message shows it (a quoted TOML key may hold anything)."""
        return shown(self.path[-1]) if self.path else ""

    def error(self, message: str, hint: str | None = None) -> UsageError:
        return self.spec.error(self.path, message, hint=hint)

    def bad(self, want: str, value) -> UsageError:
        return self.error(f"'{self.name}' must be {want}, not {type(value).__name__}")

    def child(self, name: str) -> At:
        return At(self.spec, (*self.path, name))


# -- value kinds: TOML type -> Python value ------------------------------------------------------
class Kind:
    toml = "value"  # the type, as the docs name it

    def convert(self, at: At, value):
        raise NotImplementedError

    def literal(self, value) -> str:
        """`value` as TOML (for `chrootforge new` and the docs)."""
        return toml_literal(value)


def text(at: At, value: str, lines: bool = False) -> str:
    """`value`, unless it holds control characters: every spec string is one line of text unless its
    key takes lines (`lines`: newlines and tabs pass), and none ever holds a NUL."""
    problem = checks.control_characters(value, lines)
    if problem:
        raise at.error(f"'{at.name}': {problem}")
    return value


class Str(Kind):
    toml = "string"

    def __init__(self, lines: bool = False):
        self.lines = lines

    def convert(self, at, value):
        if not isinstance(value, str):
            raise at.bad("a string", value)
        return text(at, value, self.lines)


class Bool(Kind):
    toml = "bool"

    def convert(self, at, value):
        if not isinstance(value, bool):
            raise at.bad("true or false", value)
        return value


class Int(Kind):
    toml = "integer"

    def convert(self, at, value):
        if not isinstance(value, int) or isinstance(value, bool):
            raise at.bad("an integer", value)
        return value


class Choice(Kind):
    def __init__(self, *choices: str):
        self.choices = choices
        self.toml = " | ".join(f'"{c}"' for c in choices)

    def convert(self, at, value):
        if value not in self.choices:
            given = f"'{shown(value)}'" if isinstance(value, str) else type(value).__name__
            raise at.error(f"'{at.name}' must be one of {', '.join(self.choices)}, not {given}")
        return value


class StrList(Kind):
    """A list of strings; with `single`, one string stands for a list of it; with `words`, a string
    is split on white space (USE flags, keywords); with `lines`, an item may hold newlines."""

    def __init__(self, single: bool = False, words: bool = False, lines: bool = False):
        self.single, self.words, self.lines = single, words, lines
        self.toml = "list of strings" + (" (or a string)" if single or words else "")

    def convert(self, at, value):
        if isinstance(value, str) and (self.words or self.single):
            value = [value]
        if not isinstance(value, list):
            raise at.bad("a list of strings", value)
        for item in value:
            if not isinstance(item, str):
                raise at.error(
                    f"'{at.name}' must be a list of strings, not a list with {type(item).__name__}"
                )
            text(at, item, self.lines or self.words)  # words: a newline only separates them
        if self.words:
            return tuple(word for v in value for word in v.split())
        return tuple(value)


class StrMap(Kind):
    """A table of strings (numbers are taken as their text), kept as sorted (key, value) pairs.
    `name_check` checks every key; a value may hold newlines with `lines`."""

    toml = "table of strings"

    def __init__(
        self, sort: bool = True, name_check: Callable[[str], str | None] | None = None, lines: bool = False
    ):
        self.sort, self.name_check, self.lines = sort, name_check, lines

    def convert(self, at, value):
        if not isinstance(value, dict):
            raise at.bad("a table", value)
        out = []
        for k, v in value.items():
            here = at.child(k)
            problem = self.name_check(k) if self.name_check else checks.control_characters(k)
            if problem:
                raise here.error(problem)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)
            elif not isinstance(v, str):
                raise here.error(f"'{at.name}.{shown(k)}' must be a string")
            out.append((k, text(here, v, self.lines)))
        return tuple(sorted(out)) if self.sort else tuple(out)

    def literal(self, value) -> str:
        return toml_literal(dict(value))


class PathKind(Kind):
    """A path: ${VAR} from the environment, ~ expanded, relative to the spec file's folder."""

    toml = "path"

    def convert(self, at, value):
        if not isinstance(value, str):
            raise at.bad("a string", value)
        return expand_path(at, text(at, value))


class PathList(Kind):
    toml = "list of paths (or a path)"

    def convert(self, at, value):
        return tuple(expand_path(at, v) for v in StrList(single=True).convert(at, value))


class Platforms(Kind):
    """A list of "os/arch[/variant]" (chrootforge/platforms.py), normalized, without repeats."""

    toml = 'list of strings ("os/arch[/variant]")'

    def convert(self, at, value):
        out = []
        for text in StrList(single=True).convert(at, value):
            try:
                platform = parse_platform(text, "platform")
            except UsageError as err:
                raise at.error(f"'{at.name}': {err}", hint=err.hint) from err
            if platform in out:
                raise at.error(f"'{at.name}' names {platform} twice")
            out.append(platform)
        if not out:
            raise at.error(f"'{at.name}' is empty", hint='e.g. ["linux/amd64", "linux/arm64"]')
        return tuple(out)

    def literal(self, value) -> str:
        return toml_literal([str(p) for p in value])


class Locales(Kind):
    toml = 'list of strings, or "all"'

    def convert(self, at, value):
        if value == "all" or value is True:
            return None
        return StrList().convert(at, value)

    def literal(self, value) -> str:
        return '"all"' if value is None else toml_literal(value)


def expand_path(at: At, value: str) -> Path:
    """${VAR} from the environment (for one platform's view of a namespace, ${VAR_<ARCH>} first,
    e.g. $STAGE_ARM64 for ${STAGE}), ~ expanded, relative to the spec file's folder."""
    suffix = at.spec.env_suffix

    def var(match):
        name = match.group(1)
        if suffix and f"{name}_{suffix}" in os.environ:
            return os.environ[f"{name}_{suffix}"]
        if name not in os.environ:
            from chrootforge.envvars import unset_hint

            also = f" (nor ${{{name}_{suffix}}})" if suffix else ""
            hint = unset_hint(name, os.environ)
            if suffix:
                hint = f"{hint}; for this platform, {name}_{suffix} is read first"
            raise at.error(f"${{{name}}} is not set in the environment{also}", hint=hint)
        return os.environ[name]

    path = Path(os.path.expanduser(text(at, _VAR_RE.sub(var, value))))
    if not path.is_absolute():
        path = at.spec.path.parent / path
    return Path(os.path.normpath(path))


# -- declarations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    kind: Kind
    help: str
    default: object = REQUIRED
    each: Check | None = None  # checks every string of a list (or the string itself)
    check: Check | None = None  # checks the converted value
    hint: str | None = None  # the remedy shown with a failed check
    toml_name: str | None = None  # the key in the file, when it differs from the field
    section: str = ""  # the table of a model that spans several (the namespace)
    example: object = None  # what `chrootforge new` shows for it (else the default)
    default_doc: str | None = None  # the default in words, when other values decide it
    # False: a name, a destination or where an input comes from, never what an image is; left out
    # of the build key (and so of the image: its labels carry the key).
    content: bool = True
    name: str = ""  # filled in by keys_of()
    field: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def shown_default(self) -> str:
        if self.default_doc:
            return self.default_doc
        if self.required:
            return "required"
        if self.default is None:
            return "unset"
        return self.kind.literal(self.default)


@dataclass(frozen=True)
class Section:
    """A field holding a TOML table: one model (`table`), a model per name (`tables`, e.g.
    [package."ATOM"]) or free names with one kind of value (`map`, e.g. [repos])."""

    shape: str  # "table" | "tables" | "map"
    help: str
    model: type | None = None  # the model of the table's keys (table, tables)
    value: Kind | None = None  # the kind of every value (map)
    label: str = ""  # what the names are (tables, map), e.g. "ATOM"
    name_check: Check | None = None  # checks every name (tables, map)
    example: dict | None = None  # shown by `chrootforge new` (tables, map)
    toml_name: str | None = None
    content: bool = True  # as Key.content
    name_field: str = "name"  # tables: the model's field that holds the table's name
    name: str = ""
    field: str = ""

    # The shape decides which of model/value is set; these read the one the shape promises.
    @property
    def table_model(self) -> type:
        if self.model is None:
            raise TypeError(f"section {self.name!r} ({self.shape}) has no model")
        return self.model

    @property
    def value_kind(self) -> Kind:
        if self.value is None:
            raise TypeError(f"section {self.name!r} ({self.shape}) has no value kind")
        return self.value


def key(kind: Kind, help: str, default: object = REQUIRED, **options):
    """A model field that is a spec key (see Key for the options)."""
    meta = {_META: Key(kind, help, default, **options)}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(model: type, help: str | None, **options):
    """A field holding one [table] whose keys `model` declares; absent = all defaults.
    (help is often a model's __doc__, which is typed Optional.)"""
    section = Section("table", help or "", model=model, **options)
    return dataclasses.field(default=None, metadata={_META: section})


def tables(model: type, help: str | None, label: str, **options):
    """A field holding a table per name ([package."ATOM"]), each with `model`'s keys."""
    return dataclasses.field(
        default=(), metadata={_META: Section("tables", help or "", model=model, label=label, **options)}
    )


def table_map(value: Kind, help: str, label: str, **options):
    """A field holding a table of free names, each with a value of `value`'s kind ([repos])."""
    return dataclasses.field(
        default_factory=dict, metadata={_META: Section("map", help, value=value, label=label, **options)}
    )


def declared(model: type) -> list[Key | Section]:
    """The keys and sections `model` declares, in field order, with their TOML names filled in."""
    out = []
    for f in dataclasses.fields(model):
        decl = f.metadata.get(_META)
        if decl is not None:
            out.append(dataclasses.replace(decl, name=decl.toml_name or f.name, field=f.name))
    return out


def keys_of(model: type, table: str = "") -> list[Key]:
    """The keys of one TOML table of `model` (for models spanning several: the one named `table`)."""
    return [d for d in declared(model) if isinstance(d, Key) and d.section == table]


def sections_of(model: type) -> list[Section]:
    return [d for d in declared(model) if isinstance(d, Section)]


def allowed_names(model: type, table: str = "") -> list[str]:
    names = [k.name for k in keys_of(model, table)]
    if not table:
        names += [s.name for s in sections_of(model)]
        names += sorted({k.section for k in keys_of_all(model) if k.section})
    return names


def keys_of_all(model: type) -> list[Key]:
    return [d for d in declared(model) if isinstance(d, Key)]


# -- reading -----------------------------------------------------------------------------------------
def read(spec: SpecFile, path: tuple[str, ...], table: dict, model: type, table_name: str = "") -> dict:
    """{field: value} for the keys of one TOML table (defaults for the absent ones).

    Unknown keys are refused (the hint names the closest one). Section fields are not read here:
    the loader reads each section's table with `subtable` + `read`.
    """
    source.check_keys(spec, path, table, allowed_names(model, table_name))
    at = At(spec, path)
    out = {}
    for k in keys_of(model, table_name):
        if k.name not in table:
            if k.required:
                raise at.error(
                    f"missing key '{k.name}'" + (f" in [{'.'.join(path)}]" if path else ""),
                    hint=k.hint or f"{k.name}: {k.help}",
                )
            # A path's default is relative to the spec file, like a given path.
            relative = isinstance(k.kind, PathKind) and isinstance(k.default, str)
            out[k.field] = k.kind.convert(at.child(k.name), k.default) if relative else k.default
            continue
        here = at.child(k.name)
        value = k.kind.convert(here, table[k.name])
        validate(here, k, value)
        out[k.field] = value
    return out


def validate(at: At, k: Key, value) -> None:
    if k.each is not None and value is not None:
        for item in (value,) if isinstance(value, str) else value:
            problem = k.each(item)
            if problem:
                raise at.error(problem, hint=k.hint)
    if k.check is not None:
        problem = k.check(value)
        if problem:
            raise at.error(problem, hint=k.hint)


def subtable(spec: SpecFile, path: tuple[str, ...], parent: dict, name: str) -> dict:
    """The table `name` of `parent` ({} when absent); anything else there is an error."""
    value = parent.get(name, {})
    if not isinstance(value, dict):
        raise At(spec, (*path, name)).bad("a table", value)
    return value


def read_map(spec: SpecFile, path: tuple[str, ...], table: dict, sec: Section) -> dict:
    """A `map` section: {name: value}, every name checked, every value of the section's kind."""
    out = {}
    for name, value in table.items():
        at = At(spec, (*path, name))
        if sec.name_check is not None:
            problem = sec.name_check(name)
            if problem:
                raise at.error(problem)
        out[name] = sec.value_kind.convert(at, value)
    return out


def read_tables(
    spec: SpecFile, path: tuple[str, ...], table: dict, sec: Section
) -> Iterator[tuple[str, dict]]:
    """A `tables` section: (name, {field: value}) for every named table."""
    for name, value in table.items():
        at = At(spec, (*path, name))
        if sec.name_check is not None:
            problem = sec.name_check(name)
            if problem:
                raise at.error(problem)
        if not isinstance(value, dict):
            allowed = ", ".join(allowed_names(sec.table_model))
            raise at.error(f"[{sec.name}.{quote_key(name)}] must be a table with {allowed}")
        yield name, read(spec, at.path, value, sec.table_model)


# -- the build key's view of a spec ----------------------------------------------------------------
def content_of(value) -> dict:
    """What of a loaded model (a Namespace, an Image, or a table's model) decides what the images
    are: every declared key and table but those declared `content=False`, as loaded (defaults
    filled in, strings split or joined as their kind does: so comments, layout, key order and
    spelling a default out do not count). A content key never holds a host path: json.dumps
    refuses one, so a key cannot come to depend on where a file is."""
    out: dict = {}
    for decl in declared(type(value)):
        if not decl.content:
            continue
        item = getattr(value, decl.field)
        if isinstance(decl, Section) and decl.shape == "table":
            item = content_of(item) if item is not None else None
        elif isinstance(decl, Section) and decl.shape == "tables":
            item = {getattr(entry, decl.name_field): content_of(entry) for entry in item}
        elif isinstance(decl, Section):
            item = dict(item)
        out[decl.name] = item
    return out


def content_digest(value) -> str:
    """sha256 of the canonical JSON of content_of(value)."""
    blob = json.dumps(content_of(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# -- TOML text ---------------------------------------------------------------------------------------
def quote_key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def toml_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{quote_key(k)} = {toml_literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
            return toml_literal(dict(value))  # (key, value) pairs: a table
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


# -- the tables of a file, in order (for the docs and `chrootforge new`) ------------------------------
@dataclass(frozen=True)
class Table:
    name: str  # "" (top level), "strip", "output", "package", ...
    help: str
    keys: tuple[Key, ...]  # table, tables: the keys of each table
    decl: Section | None = None  # None: the top level, or a table of a flat model ([output])

    @property
    def shape(self) -> str:
        return self.decl.shape if self.decl else "table"

    @property
    def section(self) -> Section:
        if self.decl is None:
            raise TypeError(f"table [{self.name}] is not a declared section")
        return self.decl

    def header(self, name: str | None = None) -> str:
        """`[strip]`, `[package."ATOM"]` (or with `name` for the ATOM)."""
        if self.shape == "tables":
            label = quote_key(name) if name else self.section.label
            return f"[{self.name}.{label}]"
        return f"[{self.name}]"


def tables_of(model: type) -> list[Table]:
    """Every TOML table of a file whose root model is `model`, in declaration order."""
    out: list[Table] = [Table("", model.__doc__ or "", tuple(keys_of(model)))]
    flat = getattr(model, "TABLES", {})
    for decl in declared(model):
        if isinstance(decl, Section):
            keys = tuple(keys_of(decl.model)) if decl.model else ()
            out.append(Table(decl.name, decl.help, keys, decl))
        elif decl.section and all(t.name != decl.section for t in out):
            out.append(Table(decl.section, flat.get(decl.section, ""), tuple(keys_of(model, decl.section))))
    return out


def placeholder(k: Key):
    """What `chrootforge new` shows for a key: its example, else its default, else an empty value."""
    if k.example is not None:
        return k.example
    if k.default is not REQUIRED and k.default is not None:
        return k.default
    if isinstance(k.kind, (StrList, PathList, Locales)):
        return []
    if isinstance(k.kind, StrMap):
        return {}
    if isinstance(k.kind, Bool):
        return False
    if isinstance(k.kind, Int):
        return 0
    return ""
