"""Commented chrootforge.toml and image.toml files from the spec's declarations (`chrootforge new`).

`render(model, values)` writes every table and key of the file: the keys in `values` as they are,
the others commented out (`#key = ...`) with their example or default, each under its help text.
"""

from __future__ import annotations

import textwrap

from chrootforge.spec import schema

WIDTH = 100


def _comment(text: str, prefix: str = "# ") -> list[str]:
    return textwrap.wrap(
        text, WIDTH - len(prefix), initial_indent=prefix, subsequent_indent=prefix, break_on_hyphens=False
    )


def _key_lines(k: schema.Key, path: tuple[str, ...], values: dict, shown: dict, why: dict) -> list[str]:
    default = k.shown_default()
    about = k.help + ("" if k.required else f" (default: {default})")
    out = _comment(about)
    if path in values:
        if path in why:  # a value that is not the default says why it is not
            out += _comment(f"Not the default here: {why[path]}")
        out.append(f"{k.name} = {k.kind.literal(values[path])}")
    else:
        out.append(f"#{k.name} = {k.kind.literal(shown.get(path, schema.placeholder(k)))}")
    return out


def render(
    model: type,
    values: dict[tuple[str, ...], object],
    title: str,
    *,
    shown: dict[tuple[str, ...], object] | None = None,
    example_names: dict[str, str] | None = None,
    why: dict[tuple[str, ...], str] | None = None,
) -> str:
    """The file for `model` (Namespace or Image).

    `values` maps key paths, e.g. ("tree", "snapshot") or ("build", "network"), to the values
    written uncommented; `why` to the reason a value differs from the key's documented default
    (written above it); `shown` to what a commented-out key shows instead of its example or
    default; `example_names` names the example table of a `tables` section (e.g. {"package": the
    first package}).
    """
    shown, why = shown or {}, why or {}
    out = _comment(title)
    out += _comment(
        "Commented-out keys show their default or an example; docs/pipeline.md describes every key."
    )
    for table in schema.tables_of(model):
        out.append("")
        if table.name:
            out += _comment(table.help)
        if table.shape == "map":
            given = {path[1]: v for path, v in values.items() if len(path) == 2 and path[0] == table.name}
            out.append(("" if given else "#") + f"[{table.name}]")
            for name, value in given.items():
                if (table.name, name) in why:
                    out += _comment(f"Not the default here: {why[(table.name, name)]}")
                out.append(f"{schema.quote_key(name)} = {table.section.value_kind.literal(value)}")
            for name, value in (table.section.example or {}).items():
                if name not in given:
                    out.append(f"#{schema.quote_key(name)} = {table.section.value_kind.literal(value)}")
            continue
        if table.shape == "tables":
            examples = table.section.example or {}
            name = (example_names or {}).get(table.name) or next(iter(examples), "NAME")
            example: dict = next(iter(examples.values()), {})
            out.append("#" + table.header(name))
            for k in table.keys:
                out += _comment(k.help)
                out.append(f"#{k.name} = {k.kind.literal(example.get(k.name, schema.placeholder(k)))}")
            continue
        if table.name:
            out.append(table.header())
        for k in table.keys:
            out += _key_lines(k, (table.name, k.name) if table.name else (k.name,), values, shown, why)
    return "\n".join(out) + "\n"
