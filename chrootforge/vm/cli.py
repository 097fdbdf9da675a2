"""`chrootforge vm run` and `chrootforge vm prepare`: a throwaway QEMU guest with no network device.

Registration stays light: the handlers import the vm package only when they run.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^(\d+)([KMGT]?)(i?B)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, what: str, default_unit: str = "") -> int:
    """`512M`, `2G`, `2048` (in `default_unit`) -> bytes; anything else is a usage error."""
    from chrootforge.errors import UsageError

    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(f"{what}: {text!r} is not a size", hint="e.g. 2048M or 2G")
    unit = (match.group(2) or default_unit).upper()
    value = int(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise UsageError(f"{what}: {text!r} must be more than 0")
    return value


def register(sub) -> None:
    import argparse

    vm = sub.add_parser(
        "vm",
        help="a throwaway QEMU guest (no network device) for jobs and builds",
        description="Run commands in a fresh QEMU guest built from Debian's packages "
        "without root (see vm/README.md).",
    )
    vsub = vm.add_subparsers(dest="vm_command", metavar="SUBCOMMAND")
    vsub.required = True
    run = vsub.add_parser(
        "run",
        help="run CMD as the unprivileged guest user in a fresh guest",
        description="Boot a fresh guest (no network device), run CMD as the user `cf` (or root "
        "with --root) with the --share directories mounted, and exit with CMD's status.",
        usage="%(prog)s [--share SRC:DST[:ro]]... [--timeout S] [--memory M] [--binfmt PLATFORM]... "
        "-- CMD...",
    )
    run.add_argument(
        "--share",
        action="append",
        default=[],
        metavar="SRC:DST[:ro]",
        help="share a host directory at DST in the guest over 9p (repeatable)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="stop the guest after S seconds: no status is an error (default 3600)",
    )
    run.add_argument(
        "--memory",
        default="2048M",
        metavar="M",
        help="guest memory (default 2048M; MiB unless a unit is given)",
    )
    run.add_argument("--scratch", metavar="SIZE", help="attach a sparse ext4 disk of SIZE at /scratch")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable for CMD (the environment starts clean)",
    )
    run.add_argument(
        "--cwd", default="/home/cf", metavar="DIR", help="working directory in the guest (default /home/cf)"
    )
    run.add_argument(
        "--root",
        action="store_true",
        help="run CMD as the guest's root (to change kernel settings; the user is `cf`)",
    )
    run.add_argument(
        "--binfmt",
        action="append",
        default=[],
        metavar="PLATFORM",
        help="the guest's root registers QEMU's static emulator for PLATFORM (e.g. linux/arm64), "
        "for `chrootforge run --platform` in the guest (repeatable)",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")
    run.set_defaults(func=_run)
    prep = vsub.add_parser(
        "prepare",
        help="build (or find) the guest artifacts and print where they are",
        description="Build the guest's kernel, initramfs and root image from Debian's packages "
        "(without root), or find them in the cache, and print where they are.",
    )
    prep.add_argument("--json", action="store_true", help="print the artifacts' manifest as JSON")
    prep.set_defaults(func=_prepare)


def _run(args) -> int:
    import os

    from chrootforge.errors import UsageError
    from chrootforge.vm import guestrun as runner
    from chrootforge.vm.job import Job, guest_ids, pycache_env
    from chrootforge.vm.recipe import SOURCE_ROOT
    from chrootforge.vm.rootfs import SOURCE_MOUNT
    from chrootforge.vm.shares import Share, parse_share

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("vm run: no command given", hint="chrootforge vm run [options] -- CMD...")
    if "=" in command[0]:
        raise UsageError(
            f"vm run: the command {command[0]!r} holds '='", hint="use --env NAME=VALUE for variables"
        )
    env = []
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or "\0" in value:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE (NAME: letters, digits and _)")
        env.append((name, value))
    shares = [parse_share(text) for text in args.share]
    dests = [s.dest for s in shares]
    if len(set(dests)) != len(dests):
        raise UsageError("--share: two shares have the same guest path")
    if not args.cwd.startswith("/"):
        raise UsageError(f"--cwd {args.cwd!r}: give an absolute guest path")
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    memory = parse_size(args.memory, "--memory", "M") >> 20
    if memory < 256:
        raise UsageError(f"--memory {args.memory}: the guest needs at least 256M")
    scratch = parse_size(args.scratch, "--scratch", "G") if args.scratch else None
    uid, gid = guest_ids(os.getuid(), os.getgid())
    source = Share(SOURCE_ROOT, SOURCE_MOUNT, True)
    emulators: list[Share] = []
    binfmt: list[str] = []
    if args.binfmt:
        from chrootforge.platforms import parse_platform
        from chrootforge.vm.emulators import guest_binfmt

        emulators, binfmt = guest_binfmt([parse_platform(p, "--binfmt") for p in args.binfmt])
    job = Job(
        argv=tuple(command),
        uid=uid,
        gid=gid,
        as_root=args.root,
        cwd=args.cwd,
        env=(*pycache_env(SOURCE_ROOT), *env),
        shares=(source, *shares, *emulators),
        binfmt=tuple(binfmt),
    )
    result = runner.run_job(
        job, runner.Resources(timeout=args.timeout, memory_mb=memory, scratch_bytes=scratch)
    )
    assert result.status is not None  # run_job raises for a result without one
    return result.status


def _prepare(args) -> int:
    import json

    from chrootforge.vm.artifacts import ensure

    artifacts = ensure()
    if args.json:
        print(json.dumps({"dir": str(artifacts.dir), **artifacts.manifest}, indent=1, sort_keys=True))
        return 0
    sizes = artifacts.manifest.get("sizes", {})
    print(f"guest artifacts {artifacts.key} in {artifacts.dir}")
    for name, size in sorted(sizes.items()):
        print(f"  {name:15} {size / 1048576:7.1f} MiB")
    return 0
