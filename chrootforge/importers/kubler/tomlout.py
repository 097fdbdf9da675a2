"""image.toml and chrootforge.toml text from the import's spec values (pure).

Keys are written in the order the spec model declares them (spec/model.py, through spec/schema.py),
with the schema's own TOML literals; a key the model does not declare is an error here already, and
the writer loads every file back with chrootforge's spec loader before anything is published.
"""

from __future__ import annotations

from chrootforge.spec import schema
from chrootforge.spec.schema import quote_key, toml_literal


def render(spec: dict, header: list[str], model: type) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    left = {name: dict(value) if isinstance(value, dict) else value for name, value in spec.items()}
    for table in schema.tables_of(model):
        if not table.name:
            keys = [(k.name, left.pop(k.name)) for k in table.keys if k.name in left]
            if keys:
                lines.append("")
            lines += [f"{quote_key(name)} = {toml_literal(value)}" for name, value in keys]
            continue
        if table.name not in left:
            continue
        values = left.pop(table.name)
        if table.shape == "tables":
            for sub, sub_values in values.items():
                lines += ["", table.header(sub)]
                lines += _keys(sub_values, [k.name for k in table.keys], f"{table.name}.{sub}")
            continue
        lines += ["", table.header()]
        if table.shape == "map":
            lines += [f"{quote_key(k)} = {toml_literal(v)}" for k, v in values.items()]
        else:
            lines += _keys(values, [k.name for k in table.keys], table.name)
    if left:
        raise ValueError(f"not keys of {model.__name__}: {', '.join(left)}")
    return "\n".join(lines) + "\n"


def _keys(values: dict, declared: list[str], where: str) -> list[str]:
    unknown = [k for k in values if k not in declared]
    if unknown:
        raise ValueError(f"not keys of [{where}]: {', '.join(unknown)}")
    return [f"{quote_key(k)} = {toml_literal(values[k])}" for k in declared if k in values]
