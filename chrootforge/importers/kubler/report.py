"""IMPORT.md: what became of each line of the kubler namespace (pure)."""

from __future__ import annotations

from chrootforge.importers.kubler.outcome import Entry, NamespaceResult

WIDTH = 200  # longer sources are cut (the file:line points at the whole)


def render(result: NamespaceResult, command: str, version: str) -> str:
    images, builders = result.images, result.builders
    lines = [
        f"# IMPORT.md: the kubler namespace `{result.kubler_name}`",
        "",
        f"Written by `{command}` (chrootforge {version}). Each line names a place in the kubler",
        "namespace (FILE:LINE, relative to it), what is there, and what became of it: a spec key,",
        "a hook that keeps it (and why), or nothing (and why). docs/import.md describes the mapping",
        "and the rule that tells a static helper call (a key) from a dynamic one (kept in a hook).",
        "",
        "Summary:",
        "",
        f"- images: {len(images)} ({', '.join(images) or 'none'}); builders: {len(builders)}"
        + (f" ({', '.join(builders)})" if builders else ""),
    ]
    counts = _counts(result)
    lines += [
        f"- helper calls that became spec keys: {counts['key']}; dropped (chrootforge does it, or "
        f"documentation only): {counts['dropped']}; kept in hooks: {counts['kept']}",
        f"- images with kubler hooks: {sum(1 for i in images.values() if i.hooks)} of {len(images)}",
        "",
        "## The namespace: chrootforge.toml",
        "",
        *_entries(result.entries),
    ]
    for name, builder in builders.items():
        lines += ["", f"## Builder {name} ({builder.unit})", ""]
        if builder.script is not None:
            lines.append(f"Its configure_builder hook is kept in `kubler-builders/{name}/kubler.sh`.")
            lines.append("")
        lines += _entries(builder.entries)
    for name, image in images.items():
        lines += ["", f"## Image {name} ({image.unit} → {name}/image.toml)", ""]
        if image.hooks:
            for phase, refs in image.hooks.items():
                lines.append(f"- hooks {phase}: " + ", ".join(f"`{r}`" for r in refs))
        else:
            lines.append("- no hooks: everything is a spec key")
        lines += _entries(image.entries)
    return "\n".join(lines) + "\n"


def _counts(result: NamespaceResult) -> dict[str, int]:
    counts = {"key": 0, "dropped": 0, "kept": 0}
    seen = set()
    entry_lists = [u.entries for u in result.builders.values()] + [i.entries for i in result.images.values()]
    for entries in entry_lists:
        for entry in entries:
            if entry.site is None or (entry.site, entry.source) in seen or "inherited" in entry.outcome:
                continue
            seen.add((entry.site, entry.source))
            if "build.sh" not in entry.site[0] or entry.source.endswith("()"):
                continue
            if entry.outcome.startswith("kept"):
                counts["kept"] += 1
            elif entry.outcome.startswith("dropped"):
                counts["dropped"] += 1
            elif entry.outcome.startswith(("`", "[")):
                counts["key"] += 1
    return counts


def _entries(entries: list[Entry]) -> list[str]:
    def order(entry: Entry):
        if entry.site is None:
            return (1, "", 0)
        return (0, _file_rank(entry.site[0]), entry.site[1])

    out = []
    for entry in sorted(entries, key=order):
        where = f"`{entry.site[0]}:{entry.site[1]}` " if entry.site else ""
        out.append(f"- {where}{_code(entry.source)} → {entry.outcome}")
    return out


def _file_rank(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    rank = {"kubler.conf": "0", "build.conf": "1", "build.sh": "2", "Dockerfile.template": "3"}
    return rank.get(name, "4") + path


def _code(text: str) -> str:
    text = " ".join(text.split("\n"))
    if len(text) > WIDTH:
        text = text[: WIDTH - 1] + "…"
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"
