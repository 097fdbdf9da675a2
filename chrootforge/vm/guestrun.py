"""Boot a guest for one job and return its exit status; leave no QEMU behind on any exit path.

- QEMU runs in its own session (a Ctrl-C reaches only us) with PR_SET_PDEATHSIG=SIGKILL (set by
  setpriv, which then execs it), so a SIGKILL of chrootforge takes it down too; timeout, Ctrl-C,
  SIGTERM and errors kill and reap it.
- The job's stdout/stderr (ttyS1/ttyS2, files in the run dir) are streamed to ours while it runs.
- The status comes from isa-debug-exit and must match the "status N" line of the guest's init;
  without one (a panic, a hang past the timeout, a failed init) it is an error showing the console.
- Each run has a private dir under $XDG_CACHE_HOME/chrootforge/vm-runs/ (job file, logs, scratch
  disk), held while in use (chrootforge.holds): runs killed with SIGKILL are swept by the next run,
  or by `cache prune`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chrootforge import holds, log
from chrootforge.cache.kinds import bookkeeping, kind_root
from chrootforge.errors import CfError
from chrootforge.fsutil import atomic_write
from chrootforge.vm import accel as accel_mod
from chrootforge.vm import qemu
from chrootforge.vm.artifacts import ensure
from chrootforge.vm.job import Job, job_script, parse_status

CONSOLE_TAIL = 25


@dataclass
class BootResult:
    status: int | None
    seconds: float
    first_output: float | None  # seconds from QEMU's start to the job's first output byte
    console: str
    qemu_stderr: str
    timed_out: bool = False


def runs_root() -> Path:
    return kind_root("vm-runs")


def _sweep_stale(root: Path) -> None:
    """Run dirs of killed runs: nobody holds them (a running guest's run holds its own)."""
    for path in root.glob("run.*"):
        with holds.claim(path) as free:
            if free:
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def run_dir() -> Iterator[Path]:
    """A private dir for one guest run, held while it exists (chrootforge.holds), then removed."""
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stale(root)
    path = root / f"run.{os.getpid()}.{os.urandom(4).hex()}"
    mine = holds.Holds()
    mine.hold(path)  # before it exists: neither a sweep nor `cache prune` takes it
    try:
        path.mkdir(mode=0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        mine.release(path)


def make_scratch(path: Path, size_bytes: int, uid: int, gid: int) -> None:
    """A sparse raw ext4 image owned (at its root) by uid:gid, made without root."""
    with open(path, "wb") as handle:
        handle.truncate(size_bytes)
    proc = subprocess.run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-E",
            f"root_owner={uid}:{gid}",
            "-O",
            "^has_journal",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CfError(
            f"mke2fs of the guest's scratch disk failed: {proc.stderr.strip()}",
            hint="apt-get install e2fsprogs",
        )


class _Streamer(threading.Thread):
    """Copies what the guest appends to its output files to our stdout/stderr as it arrives."""

    def __init__(self, pairs: list[tuple[Path, BinaryIO]], started: float):
        super().__init__(daemon=True)
        self.pairs, self.started = pairs, started
        self.offsets = [0] * len(pairs)
        self.first_output: float | None = None
        self.done = threading.Event()

    def pump(self) -> None:
        for i, (path, sink) in enumerate(self.pairs):
            try:
                with open(path, "rb") as handle:
                    handle.seek(self.offsets[i])
                    data = handle.read()
            except FileNotFoundError:
                continue
            if data:
                if self.first_output is None:
                    self.first_output = time.monotonic() - self.started
                self.offsets[i] += len(data)
                with contextlib.suppress(OSError, ValueError):
                    sink.write(data)
                    sink.flush()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.pump()


def boot(machine: qemu.Machine, timeout: float | None, stdout=None, stderr=None) -> BootResult:
    """Run QEMU for `machine` until it exits or `timeout` passes; always reaps it."""
    stdout = stdout if stdout is not None else sys.stdout.buffer
    stderr = stderr if stderr is not None else sys.stderr.buffer
    for path in (machine.console_log, machine.stdout_log, machine.stderr_log):
        path.write_bytes(b"")
    qemu_err = machine.console_log.parent / "qemu.stderr"
    started = time.monotonic()
    with open(qemu_err, "wb") as err_handle:
        # setpriv sets PR_SET_PDEATHSIG, then execs QEMU: a SIGKILL of us takes QEMU down too.
        proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--", *qemu.argv(machine)],
            stdin=subprocess.DEVNULL,
            stdout=err_handle,
            stderr=err_handle,
            start_new_session=True,
        )
    streamer = _Streamer([(machine.stdout_log, stdout), (machine.stderr_log, stderr)], started)
    streamer.start()
    timed_out = False
    previous = _terminate_as_interrupt()
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _restore_sigterm(previous)
        streamer.done.set()
        streamer.join()
        streamer.pump()
    console = machine.console_log.read_text(errors="replace")
    status = None if timed_out else parse_status(console)
    code_status = qemu.exit_status(proc.returncode)
    if status is not None and code_status != status:
        status = None  # the init said it wrote a status, but QEMU did not exit through it
    return BootResult(
        status,
        time.monotonic() - started,
        streamer.first_output,
        console,
        qemu_err.read_text(errors="replace"),
        timed_out,
    )


def _terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt while QEMU runs, so the cleanup above runs too."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def describe_failure(result: BootResult, what: str, timeout: float | None) -> CfError:
    tail = "\n".join("    " + line for line in result.console.splitlines()[-CONSOLE_TAIL:])
    saved = bookkeeping("vm-last-failure.console.log")
    with contextlib.suppress(OSError):
        atomic_write(saved, result.console)
    if result.timed_out:
        message = (
            f"the guest reported no status: {what} was still running after {timeout:g}s "
            "(--timeout); QEMU was stopped"
        )
    elif "chrootforge-vm: job started" not in result.console and result.qemu_stderr.strip():
        message = f"QEMU failed: {result.qemu_stderr.strip().splitlines()[-1]}"
    elif panic := [line for line in result.console.splitlines() if "Kernel panic" in line]:
        reason = panic[0].split("Kernel panic", 1)[1].lstrip(" -")
        message = f"the guest reported no status: its kernel panicked ({reason}) while running {what}"
    else:
        message = f"the guest reported no status (a panic or a failed init) while running {what}"
    return CfError(
        f"{message}\n  console (last lines; all in {saved}):\n{tail}",
        hint="raise --timeout for long jobs" if result.timed_out else None,
    )


@dataclass(frozen=True)
class Resources:
    timeout: float | None = None
    memory_mb: int = 2048
    scratch_bytes: int | None = None


def run_job(
    job: Job,
    resources: Resources = Resources(),
    artifacts=None,
    stdout=None,
    stderr=None,
    accel: str | None = None,
) -> BootResult:
    """Boot a fresh guest for `job`; a result without a status raises a CfError."""

    qemu_path = qemu.find_qemu()
    bios = qemu.find_bios()
    artifacts = artifacts or ensure()
    if accel is None:
        accel, why = choose_accel(artifacts)
        log.info(f"vm: {accel.upper()} ({why})")
    cpus = (os.cpu_count() or 1) if accel == "kvm" else 1
    with run_dir() as rd:
        scratch = None
        if resources.scratch_bytes:
            scratch = rd / "scratch.img"
            make_scratch(scratch, resources.scratch_bytes, *((0, 0) if job.as_root else (job.uid, job.gid)))
        machine = _machine(
            artifacts,
            rd,
            job,
            bios=bios,
            accel=accel,
            cpus=cpus,
            memory_mb=resources.memory_mb,
            shares=job.shares,
            scratch=scratch,
            qemu=qemu_path,
        )
        result = boot(machine, resources.timeout, stdout, stderr)
    if result.status is None:
        raise describe_failure(result, " ".join(job.argv) or "the job", resources.timeout)
    return result


def _machine(artifacts, rd: Path, job: Job, **settings) -> qemu.Machine:
    """A guest of `artifacts` that runs `job`, with its job file and logs in the run dir `rd`."""
    job_file = rd / "job.sh"
    job_file.write_text(job_script(job))
    return qemu.Machine(
        kernel=artifacts.kernel,
        initramfs=artifacts.initramfs,
        rootfs=artifacts.rootfs,
        job_file=job_file,
        console_log=rd / "console.log",
        stdout_log=rd / "stdout.log",
        stderr_log=rd / "stderr.log",
        **settings,
    )


def choose_accel(artifacts) -> tuple[str, str]:
    """(accel, why): KVM if a probe boot of these artifacts under KVM works here (cached), else TCG."""
    qemu_path, bios = qemu.find_qemu(), qemu.find_bios()
    return accel_mod.choose(artifacts.key, lambda t: _probe(artifacts, qemu_path, bios, t))


def _probe(artifacts, qemu_path: str, bios: Path, timeout: float) -> bool:
    with run_dir() as rd:
        machine = _machine(
            artifacts,
            rd,
            Job(argv=("true",), uid=1000, gid=1000, as_root=True),
            bios=bios,
            accel="kvm",
            cpus=1,
            memory_mb=512,
            qemu=qemu_path,
        )
        with open(os.devnull, "wb") as sink:
            result = boot(machine, timeout, sink, sink)
    return result.status == 0
