"""The kubler.sh hook of an imported kubler image or builder, as text (pure).

chrootforge copies a hook alone into the sandbox, so the script carries what it needs: the image
folder's files (kubler's build container saw them at /config, and build.sh reads them there), the
BOB_ variables kubler exported, the list of helper calls that are spec keys now, and a dispatch on
CF_PHASE. It starts under /bin/sh, as every hook does, and goes on in bash, which kubler's build.sh
files are written for. The helpers come from the kubler-compat hook, which runs first.
"""

from __future__ import annotations

import base64
import shlex

from chrootforge.importers.kubler.outcome import FileEntry, Script, Step

LIBRARY = "/usr/local/lib/chrootforge/kubler-compat.sh"


def render(script: Script, namespace_source: str) -> str:
    q = shlex.quote
    unit = script.unit
    lines = [
        "#!/bin/sh",
        f"# kubler.sh of the kubler {script.kind} {script.image_id} ({unit}), written by",
        f"# `chrootforge import kubler` from {namespace_source}. It runs the kubler hooks of",
        f"# {unit}/build.sh in chrootforge's phases, with kubler's helpers (the kubler-compat hook);",
        "# IMPORT.md lists what it keeps and why. The files below are the image folder, which",
        "# kubler's build container saw at /config. kubler_applied names calls by FUNCTION:LINE of",
        "# build.sh: after an edit of build.sh here, import again (or keep that list in step).",
        '[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"',
        "set -e",
        "KUBLER_COMPAT_LIB=1",
        f". {LIBRARY} || {{ echo 'kubler.sh: the kubler-compat hook must run first' >&2; exit 1; }}",
    ]
    own = f'[ "${{CF_IMAGE:-}}" = {q(script.name)} ]'
    if script.kind == "image":
        image_id = q(script.image_id)
        lines.append(f"if {own}; then kubler_begin {image_id}; else kubler_begin {image_id} replay; fi")
    else:
        lines.append(f"kubler_begin {q(script.image_id)} replay")
    for name, value in sorted(script.env.items()):
        lines.append(f"export {name}={q(value)}")
    if script.applied:
        lines.append("# helper calls that are spec keys now (FUNCTION:LINE:HELPER): not made again")
        lines.append("kubler_applied " + " ".join(q(a) for a in script.applied))
    for entry in script.files:
        lines += _file(entry)
    lines += _dispatch(script)
    return "\n".join(lines) + "\n"


def _file(entry: FileEntry) -> list[str]:
    q = shlex.quote
    mode = f"{entry.mode:o}"
    if entry.link is not None:
        return [f"kubler_link {q(entry.rel)} {q(entry.link)}"]
    text = _as_text(entry.data)
    if text is not None:
        delimiter = "KUBLER_EOF"
        body = text.splitlines()
        while delimiter in body:
            delimiter += "_"
        return [f"kubler_file {q(entry.rel)} {mode} <<'{delimiter}'", *body, delimiter]
    encoded = base64.encodebytes(entry.data).decode().splitlines()
    return [f"kubler_file_b64 {q(entry.rel)} {mode} <<'KUBLER_EOF'", *encoded, "KUBLER_EOF"]


def _as_text(data: bytes) -> str | None:
    """The file as heredoc text, when that gives back the same bytes."""
    if not data or not data.endswith(b"\n") or b"\0" in data or b"\r" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _dispatch(script: Script) -> list[str]:
    q = shlex.quote
    lines = ['case "${CF_PHASE:-}" in', "configure_builder)"]
    own = f'[ "${{CF_IMAGE:-}}" = {q(script.name)} ]'
    if script.kind == "image":
        lines.append(f"\tif {own}; then kubler_stamp; fi")
    if script.builder_function:
        lines.append(f"\tkubler_hook {script.builder_function}")
    lines.append("\t;;")
    if script.kind == "image":
        rootfs = script.functions.get("configure_rootfs")
        if rootfs:
            lines += ["configure_rootfs)", f"\tif {own}; then kubler_hook {rootfs}; fi", "\t;;"]
        finish = script.functions.get("post_emerge")
        if finish or script.emerge_more or script.sync_users:
            lines += ["post_emerge)", f"\t{own} || exit 0"]
            if script.emerge_more:
                lines.append("\tkubler_emerge " + " ".join(q(p) for p in script.emerge_more))
            if script.sync_users:
                lines.append("\tkubler_sync_users")
            if finish:
                lines.append(f"\tkubler_hook {finish}")
            lines.append("\t;;")
        if script.steps:
            lines += ["finish_rootfs)", f"\t{own} || exit 0"]
            for step in script.steps:
                lines += _step(step)
            lines.append("\t;;")
    lines.append("esac")
    return lines


def _step(step: Step) -> list[str]:
    q = shlex.quote
    where = f"\t# {step.site[0]}:{step.site[1]}"
    if step.kind == "workdir":
        return [where, f'\tmkdir -p "$_EMERGE_ROOT"{q(step.dest)}']
    if step.kind in ("copy", "add"):
        srcs = " ".join(q(s) for s in step.argv)
        return [where, f"\tkubler_copy {step.kind.upper()} {q(step.chown)} {q(step.dest)} {srcs}"]
    env = " ".join(q(f"{k}={v}") for k, v in step.env)
    argv = step.argv if step.argv else ("/bin/sh", "-c", step.shell)
    command = " ".join(q(a) for a in argv)
    return [where, f"\tkubler_run {q(step.user)} {q(step.workdir)} {env} -- {command}"]
