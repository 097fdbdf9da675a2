"""Foreign-arch emulation in the guest: its root registers QEMU's static emulators host-wide.

The guest's kernel (Debian 12's 6.1) does not let a user namespace mount binfmt_misc, so
chrootforge's sandbox in the guest takes the guest's own registration (sandbox/emulation.py says
so). The host's emulators are shared read-only into the guest; the registrations carry the F flag,
so the guest's kernel holds them open from the moment its init writes them.
"""

from __future__ import annotations

from pathlib import Path

from chrootforge.platforms import Platform, machine_platform, runs_natively
from chrootforge.sandbox import binfmt, emulation
from chrootforge.vm.shares import Share

GUEST_EMULATORS = "/cf/emulators"
GUEST_MACHINE = "x86_64"  # the guest's CPU (qemu-system-x86_64)


def guest_binfmt(platforms: list[Platform]) -> tuple[list[Share], list[str]]:
    """The shares and registration lines for the platforms the guest's CPU does not run itself;
    a CfError naming the package when an emulator is missing on the host."""
    guest = machine_platform(GUEST_MACHINE)
    shares: list[Share] = []
    lines: list[str] = []
    for platform in dict.fromkeys(platforms):
        if runs_natively(platform, guest):
            continue
        plan = emulation.plan(platform, guest)
        if plan is None or plan.registration is None:  # only the host's registration: not shareable
            raise emulation.missing_emulator(platform, guest)
        host_path = Path(plan.registration.interpreter)
        dest = f"{GUEST_EMULATORS}/{len(shares)}"
        shares.append(Share(host_path.parent, dest, True))
        lines.append(binfmt.registration(plan.qemu, f"{dest}/{host_path.name}").line().decode())
    return shares, lines
