"""The spec's key reference in docs/pipeline.md, generated from the declarations in spec/model.py.

    python -m chrootforge.spec.keydocs docs/pipeline.md [--check]

rewrites the part of the file between the BEGIN/END markers (with --check: exits 1 when it differs).
"""

from __future__ import annotations

import sys
from pathlib import Path

from chrootforge.spec import schema
from chrootforge.spec.model import Image, Namespace

BEGIN = (
    "<!-- BEGIN spec keys: generated from chrootforge/spec/model.py by "
    "`python -m chrootforge.spec.keydocs docs/pipeline.md` -->"
)
END = "<!-- END spec keys -->"
FILES = (("Namespace", "chrootforge.toml", Namespace), ("Image", "image.toml", Image))
NOT_CONTENT = "†"
LEGEND = (
    f"{NOT_CONTENT}: a name, a destination or where an input is found, not what the images are: "
    "not in the build key nor in the images (the stage3, the tree and the repositories count by "
    "content)."
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _table_md(table: schema.Table) -> list[str]:
    out = []
    if table.name:
        out += [f"#### `{table.header()}`", ""]
    if table.help:
        out += [table.help, ""]
    if table.shape == "map":
        mark = "" if table.section.content else f" {NOT_CONTENT}"
        out += [
            f"Each key is a {table.section.label}, each value a {table.section.value_kind.toml}{mark}.",
            "",
        ]
        return out
    out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for k in table.keys:
        default = k.shown_default()
        if not k.default_doc and not k.required and k.default is not None:
            default = f"`{default}`"
        mark = "" if k.content else f" {NOT_CONTENT}"
        out.append(f"| `{k.name}` | {_cell(k.kind.toml)} | {_cell(default)} | {_cell(k.help)}{mark} |")
    return out + [""]


def render() -> str:
    """The generated block, markers included."""
    out = [BEGIN, "", LEGEND, ""]
    for title, filename, model in FILES:
        out += [f"### {title}: `{filename}`", ""]
        for table in schema.tables_of(model):
            out += _table_md(table)
    out.append(END)
    return "\n".join(out)


def replace_block(text: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError("the BEGIN/END spec keys markers are missing")
    return text[:start] + render() + text[end + len(END) :]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if len(paths) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = Path(paths[0])
    text = path.read_text()
    new = replace_block(text)
    if check:
        if new != text:
            print(
                f"{path}: the spec key reference is out of date; run "
                f"python -m chrootforge.spec.keydocs {path}",
                file=sys.stderr,
            )
            return 1
        return 0
    if new != text:
        from chrootforge.fsutil import atomic_write

        atomic_write(path, new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
