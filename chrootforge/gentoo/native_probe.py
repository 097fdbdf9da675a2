"""The sandbox half of `-march=native` (gentoo/native_cpu.py has the pure half): gcc's answer in a
fresh builder of the stage, memoized per (stage, host CPU) in `<cache>/native-cpu.json`."""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path

from chrootforge import holds, log, untrusted
from chrootforge.cache.kinds import bookkeeping, entry
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.gentoo import inputs as inp
from chrootforge.gentoo.native_cpu import (
    GCC_ARGV,
    NativeCpu,
    host_cpu_id,
    parse_target_help,
    project_uses_native,
)
from chrootforge.sandbox import SandboxConfig, detect_idmap, run_sandboxed
from chrootforge.sources.stage_cache import fresh_builder, pristine_root, remove_builder


def resolve_for(project, inputs, stage_override=None, single_id: bool = False):
    """`inputs` with `native` set when the project uses -march=native (else unchanged)."""
    if not project_uses_native(project):
        return inputs
    return dataclasses.replace(inputs, native=probe(project.namespace, inputs, stage_override, single_id))


def probe(ns, inputs, stage_override=None, single_id: bool = False) -> NativeCpu:
    """The builder's answer for this host's CPU: memoized, else gcc run in a fresh builder."""

    try:
        cpu_id = host_cpu_id(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        import platform

        cpu_id = "machine:" + platform.machine()
    memo_file = bookkeeping("native-cpu.json")
    memo_key = f"{inputs.stage_id}|{cpu_id}"
    memo = _read_memo(memo_file)
    if memo_key in memo:
        try:
            return NativeCpu.from_json(memo[memo_key])
        except (KeyError, TypeError, AttributeError):
            pass
    cpu = _run_gcc(ns, inputs, stage_override, single_id)
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(memo_file.parent / ".native-cpu.lock"):
        memo = _read_memo(memo_file)
        memo[memo_key] = cpu.to_json()
        atomic_write(memo_file, json.dumps(memo, indent=1, sort_keys=True))
    return cpu


def _read_memo(path) -> dict:
    try:
        data = untrusted.read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _run_gcc(ns, inputs, stage_override, single_id: bool) -> NativeCpu:

    idmap = detect_idmap(single_id=single_id)
    pristine = pristine_root(inp.fetch_stage(ns, inputs, stage_override), idmap)
    work = entry("work", f"native-{secrets.token_hex(6)}")
    mine = holds.Holds()
    mine.hold(work)  # before it exists: prune takes an unheld one for a killed probe's
    work.mkdir(parents=True)
    output = work / "gcc.log"
    try:
        root = fresh_builder(pristine, work / "builder", idmap)
        code = run_sandboxed(
            SandboxConfig(root=root, argv=list(GCC_ARGV), idmap=idmap, log_file=output, platform=ns.platform)
        )
        text = output.read_text(errors="replace") if output.exists() else ""
        if code != 0:
            raise CfError(
                f"-march=native: `{' '.join(GCC_ARGV)}` failed in the builder (exit status {code})",
                hint=(text.strip().splitlines() or ["no output"])[-1],
            )
        try:
            cpu = parse_target_help(text)
        except ValueError as err:
            raise CfError(
                f"-march=native: {err}", hint="give the CPU by name, e.g. -march=x86-64-v3"
            ) from err
    finally:
        remove_builder(work, idmap)
        mine.release(work)
    log.info(f"-march=native is {cpu.fingerprint()} here (the builder's gcc)")
    return cpu
