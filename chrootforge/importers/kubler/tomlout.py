"""image.toml and chrootforge.toml text from the import's spec values (pure).

Values are written with the spec schema's own TOML literals; the writer loads every file back with
chrootforge's spec loader before anything is published.
"""

from __future__ import annotations

from chrootforge.spec.schema import quote_key, toml_literal

# Tables whose entries are tables themselves ([package."ATOM"]).
NESTED = ("package",)


def render(spec: dict, header: list[str]) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    top = {k: v for k, v in spec.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in spec.items() if isinstance(v, dict)}
    if top:
        lines.append("")
    for key, value in top.items():
        lines.append(f"{quote_key(key)} = {toml_literal(value)}")
    for name, table in tables.items():
        if name in NESTED:
            for sub, values in table.items():
                lines += ["", f"[{name}.{quote_key(sub)}]"]
                lines += [f"{quote_key(k)} = {toml_literal(v)}" for k, v in values.items()]
            continue
        lines += ["", f"[{name}]"]
        lines += [f"{quote_key(k)} = {toml_literal(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
