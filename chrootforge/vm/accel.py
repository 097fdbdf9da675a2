"""KVM or TCG: KVM only after a short probe boot proved that it runs our guest here.

A /dev/kvm that exists is not enough: on hosts with a nested-virtualisation module such as PVM it
accepts a stock kernel and then crawls. The probe boots the real guest with a trivial job; its
result is cached per (artifacts, host kernel, device), so it costs its ~25 s at most once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from chrootforge import log, untrusted
from chrootforge.cache.kinds import bookkeeping
from chrootforge.fsutil import atomic_write, file_lock

KVM = "/dev/kvm"
PROBE_TIMEOUT = 25.0


def _cache_file():
    return bookkeeping("vm-accel.json")


def probe_key(artifacts_key: str) -> str:
    try:
        device = os.stat(KVM).st_rdev
    except OSError:
        device = 0
    return f"{artifacts_key}|{os.uname().release}|{device}"


def choose(artifacts_key: str, probe: Callable[[float], bool]) -> tuple[str, str]:
    """(accel, reason): `probe(timeout)` boots a guest under KVM and says whether it reported back."""
    forced = os.environ.get("CHROOTFORGE_VM_ACCEL", "")
    if forced in ("kvm", "tcg"):
        return forced, f"CHROOTFORGE_VM_ACCEL={forced}"
    if not os.path.exists(KVM):
        return "tcg", "this host has no /dev/kvm"
    if not os.access(KVM, os.R_OK | os.W_OK):
        return "tcg", "no access to /dev/kvm (the kvm group gives it)"
    key = probe_key(artifacts_key)
    cache = _cache_file()
    try:
        known = untrusted.read_json(cache)
    except (OSError, ValueError):
        known = {}
    if key not in known:
        log.info(f"vm: probing KVM with a short boot (at most {PROBE_TIMEOUT:.0f}s, once)")
        works = probe(PROBE_TIMEOUT)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(cache.parent / ".vm-accel.lock"):
            try:
                known = untrusted.read_json(cache)
            except (OSError, ValueError):
                known = {}
            known[key] = works
            atomic_write(cache, json.dumps(known, indent=1, sort_keys=True))
    if known[key]:
        return "kvm", "a probe boot under KVM worked"
    return "tcg", f"{KVM} is present but the guest did not boot under KVM in a probe (cached in {cache})"
