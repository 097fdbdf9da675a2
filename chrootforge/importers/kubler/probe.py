"""Run recorder.bash over a kubler namespace in chrootforge's sandbox, and read what it recorded.

The sandbox has no network and a read-only root; the host's /usr (for bash) is bound read-only,
the namespace's kubler.conf, build.conf and build.sh files (a copy staged for the sandbox, so that
a namespace below a private home is readable by the sandbox's uid) read-only at /kubler, and a tmpfs
is the only place the probed files can write. `parse` turns the recorder's output into values.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from chrootforge.errors import CfError
from chrootforge.importers.kubler.recorded import (
    Call,
    Command,
    Frame,
    HookRun,
    SyntaxProblem,
    UnitProbe,
    Var,
)
from chrootforge.sandbox import Bind, SandboxConfig, Tmpfs, run_sandboxed

RECORDER = Path(__file__).resolve().parent / "recorder.bash"
# Host directories bash needs (bound read-only, or recreated as the same symlink).
HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Mount targets and scratch: the root is read-only, so every target exists before the sandbox starts.
SCRATCH = ("tmp", "etc", "var", "root", "config", "emerge-root", "distfiles", "backup-rootfs", "packages")
TARGETS = ("proc", "dev", "run", "kubler", "cf", *SCRATCH)


def run_probe(source: Path, units: list[str], namespace: str, helpers: list[str]) -> bytes:
    """The recorder's output for `units` (images/NAME, builder/NAME) of the namespace at `source`."""
    work = Path(tempfile.mkdtemp(prefix="chrootforge-kubler."))
    try:
        os.chmod(work, 0o755)
        stage = work / "kubler"
        _stage(source, units, stage)
        root = work / "root"
        binds = [Bind(stage, "/kubler", readonly=True), Bind(RECORDER, "/cf/recorder.bash", readonly=True)]
        binds += _host_tree(root)
        for name in TARGETS:
            (root / name).mkdir(exist_ok=True)
        (root / "cf" / "recorder.bash").touch()
        output = work / "output"
        output.touch()
        config = SandboxConfig(
            root=root,
            argv=["/bin/bash", "--noprofile", "--norc", "/cf/recorder.bash", *units],
            env={
                "LC_ALL": "C",
                "CF_KUBLER_HELPERS": " ".join(helpers),
                "CF_KUBLER_NAMESPACE": namespace,
            },
            binds=binds,
            tmpfs=[Tmpfs(f"/{name}", "64M") for name in SCRATCH],
            readonly_root=True,
            log_file=output,
        )
        for path in [root, *root.iterdir()]:
            if not path.is_symlink():
                os.chmod(path, 0o755)
        code = run_sandboxed(config)
        data = output.read_bytes()
        if code != 0:
            tail = data[-500:].decode(errors="replace").replace("\0", " ")
            raise CfError(f"the kubler probe failed in the sandbox (exit status {code}): {tail}")
        return data
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stage(source: Path, units: list[str], stage: Path) -> None:
    """The files the probe runs, copied where the sandbox's uid can read them."""
    files = ["kubler.conf"] + [f"{unit}/{name}" for unit in units for name in ("build.conf", "build.sh")]
    stage.mkdir(mode=0o755)
    os.chmod(stage, 0o755)
    for rel in files:
        src = source / rel
        if not src.is_file():
            continue
        folder = stage
        for part in Path(rel).parent.parts:  # only the folders below the stage
            folder = folder / part
            folder.mkdir(exist_ok=True)
            os.chmod(folder, 0o755)
        shutil.copyfile(src, stage / rel)
        os.chmod(stage / rel, 0o644)


def _host_tree(root: Path) -> list:
    root.mkdir(mode=0o755)
    binds = []
    for name in HOST_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            (root / name).mkdir()
            binds.append(Bind(host, f"/{name}", readonly=True))
    return binds


# -- reading the output (pure) ---------------------------------------------------------------------
def _records(data: bytes) -> list[list[str]]:
    """Count-prefixed records of NUL-terminated fields; a cut-off record at the end is dropped."""
    fields = data.split(b"\0")
    out = []
    i = 0
    while i < len(fields) - 1:
        try:
            count = int(fields[i])
        except ValueError as err:
            raise CfError(f"the kubler probe's output is malformed near field {i}") from err
        if i + 1 + count > len(fields) - 1:
            break
        out.append([f.decode("utf-8", "surrogateescape") for f in fields[i + 1 : i + 1 + count]])
        i += 1 + count
    return out


def parse(data: bytes) -> tuple[list[SyntaxProblem], dict[str, UnitProbe]]:
    """The recorder's output as values: syntax problems, and per unit what its probes saw."""
    problems: list[SyntaxProblem] = []
    units: dict[str, UnitProbe] = {}
    rest = data
    while rest:
        recs = _records_prefix(rest)
        if recs is None:
            raise CfError("the kubler probe's output is malformed")
        record, used = recs
        rest = rest[used:]
        kind = record[0]
        if kind == "syntax":
            problems.append(SyntaxProblem(record[1], record[2], record[3]))
            continue
        if kind != "frame":
            raise CfError(f"the kubler probe's output is malformed (a {kind!r} record outside a frame)")
        _, mode, run, unit, hook, status, stderr, size = record
        body, rest = rest[: int(size)], rest[int(size) :]
        frame = Frame(unit, mode, run, hook, int(status), stderr, _records(body))
        probe = units.setdefault(unit, UnitProbe(unit))
        _add_frame(probe, frame)
    return problems, units


def _records_prefix(data: bytes) -> tuple[list[str], int] | None:
    """The first record of data and how many bytes it took."""
    end = data.find(b"\0")
    if end < 0:
        return None
    try:
        count = int(data[:end])
    except ValueError:
        return None
    pos = end + 1
    fields = []
    for _ in range(count):
        nxt = data.find(b"\0", pos)
        if nxt < 0:
            return None
        fields.append(data[pos:nxt].decode("utf-8", "surrogateescape"))
        pos = nxt + 1
    return fields, pos


def _add_frame(probe: UnitProbe, frame: Frame) -> None:
    if frame.mode == "vars":
        _add_vars(probe, frame)
        return
    hook = ""
    calls: list[Call] = []
    commands: list[Command] = []
    end = ("killed", str(frame.status), "")
    for rec in frame.records:
        kind = rec[0]
        if kind == "hook":
            hook = rec[1]
        elif kind == "call" and rec[1]:
            calls.append(_call(rec, frame.run))
        elif kind == "cmd" and rec[1]:
            commands.append(Command(rec[1], frame.run, rec[2], int(rec[3]), int(rec[4]), rec[5]))
        elif kind == "end":
            end = (rec[1], rec[2], rec[3])
    if not hook:
        return
    probe.hook_runs.append(HookRun(hook, frame.run, tuple(calls), tuple(commands), end, frame.stderr))


def _call(rec: list[str], run: str) -> Call:
    _, hook, file, line, own, subshell, caller, command, name, *args = rec
    return Call(
        hook=hook,
        run=run,
        file=file,
        line=int(line) if line.isdigit() else 0,
        own=own == "1",
        subshell=int(subshell) if subshell.isdigit() else 0,
        caller=caller,
        command=command,
        name=name,
        args=tuple(args),
    )


def _add_vars(probe: UnitProbe, frame: Frame) -> None:
    for rec in frame.records:
        kind = rec[0]
        if kind == "var":
            _, what, name, vkind, site, *values = rec
            var = Var(name, vkind, tuple(values), _site(site))
            probe.vars.setdefault(frame.run, {}).setdefault(what, {})[name] = var
        elif kind == "function" and frame.run == "A":
            name, where = rec[1], rec[2]
            line, _, file = where.partition(" ")
            probe.functions[name] = (file.removeprefix("/kubler/"), int(line) if line.isdigit() else 0)
        elif kind == "listing" and frame.run == "A":
            probe.listings[rec[1]] = rec[2]
        elif kind == "call" and not rec[1]:
            probe.top_calls.append(_call(rec, frame.run))
        elif kind == "cmd" and not rec[1]:
            probe.top_commands.append(Command("", frame.run, rec[2], int(rec[3]), int(rec[4]), rec[5]))
        elif kind == "end":
            probe.vars_end[frame.run] = (rec[1], rec[2], rec[3])
    probe.stderr.setdefault(frame.run, frame.stderr)


def _site(site: str) -> tuple[str, int] | None:
    file, _, line = site.rpartition(":")
    if not file or not line.isdigit():
        return None
    return file, int(line)
