"""Platforms: what OCI's image-spec calls "os/architecture[/variant]", and what each one means to
the kernel (uname -m), to QEMU (its user-mode emulator) and to Gentoo (ARCH, the releases/ dir).

One table (ARCHES) holds every architecture chrootforge knows; everything else reads it. Light on
purpose: `chrootforge run --platform` parses its value here (no dataclasses, no typing).
"""

from __future__ import annotations

import os

from chrootforge.errors import UsageError
from chrootforge.values import Value


class Arch(Value):
    """One architecture: its GOARCH-style OCI name and its other names."""

    __slots__ = ("name", "machines", "qemu", "gentoo", "variants", "default_variant")  # noqa: RUF023
    name: str  # the image-spec's `architecture` (Go's GOARCH)
    machines: tuple[str, ...]  # what uname -m says on such a machine
    qemu: str  # QEMU's user-mode target (qemu-<qemu>-static)
    gentoo: str  # Gentoo's ARCH / keyword, and its releases/<dir>
    variants: tuple[str, ...]  # the image-spec variants it takes
    default_variant: str  # the variant an image names when none was asked for ("" for none)

    def __init__(
        self,
        name: str,
        machines: tuple[str, ...],
        qemu: str,
        gentoo: str,
        variants: tuple[str, ...] = (),
        default_variant: str = "",
    ) -> None:
        self._init(name, machines, qemu, gentoo, variants, default_variant)


ARCHES = {
    a.name: a
    for a in (
        Arch("amd64", ("x86_64", "amd64"), "x86_64", "amd64"),
        Arch("arm64", ("aarch64", "arm64"), "aarch64", "arm64"),
        Arch("arm", ("armv7l", "armv8l", "armv6l"), "arm", "arm", ("v6", "v7"), "v7"),
        Arch("386", ("i686", "i586", "i486", "i386"), "i386", "x86"),
        Arch("riscv64", ("riscv64",), "riscv64", "riscv"),
        Arch("ppc64le", ("ppc64le",), "ppc64le", "ppc64"),
        Arch("s390x", ("s390x",), "s390x", "s390"),
    )
}
# Other spellings people write: the kernel's names, and Gentoo's where they are unambiguous (Gentoo's
# ppc64 is both endians, Go's ppc64 the big-endian one).
ALIASES = {
    **{m: a.name for a in ARCHES.values() for m in a.machines},
    "x86": "386",
    "riscv": "riscv64",
    "s390": "s390x",
    "armhf": "arm",
}
# What a CPU of one architecture runs without an emulator (besides its own).
NATIVE_EXTRA = {"amd64": ("386",)}


class Platform(Value):
    """linux/arm64, linux/arm/v7, ...: an image's platform, normalized."""

    __slots__ = ("os", "architecture", "variant")  # noqa: RUF023 - the fields' order
    os: str
    architecture: str
    variant: str  # "" when the architecture has none

    def __init__(self, os: str, architecture: str, variant: str = "") -> None:
        self._init(os, architecture, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def arch(self) -> Arch:
        return ARCHES[self.architecture]

    @property
    def slug(self) -> str:
        """For file and directory names: linux-arm-v7."""
        return str(self).replace("/", "-")

    @property
    def env_suffix(self) -> str:
        """For variable names: ARM64, ARM_V7."""
        return "_".join(p for p in (self.architecture, self.variant) if p).upper()

    def oci(self) -> dict[str, str]:
        """The image-spec's platform object (an index entry's, and the config's fields)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


def parse_platform(text: str, what: str = "platform") -> Platform:
    """ "linux/arm64", "arm64", "linux/aarch64", "linux/arm/v7" -> Platform; UsageError otherwise."""
    parts = text.strip().lower().split("/")
    if len(parts) == 1 or (len(parts) == 2 and ALIASES.get(parts[0], parts[0]) in ARCHES):
        parts = ["linux", *parts]  # "arm64", "arm/v7"
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(
            f"{what} {text!r}: expected OS/ARCH[/VARIANT]", hint="e.g. linux/amd64, linux/arm64, linux/arm/v7"
        )
    os_name, arch_name, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if os_name != "linux":
        raise UsageError(f"{what} {text!r}: chrootforge builds linux images only")
    arch = ARCHES.get(ALIASES.get(arch_name, arch_name))
    if arch is None:
        raise UsageError(f"{what} {text!r}: unknown architecture {arch_name!r}", hint=f"known: {known()}")
    if arch.name == "arm64" and variant == "v8":
        variant = ""  # the only arm64 there is (containerd normalizes it away too)
    if variant and variant not in arch.variants:
        choices = ", ".join(arch.variants) or "none"
        raise UsageError(
            f"{what} {text!r}: {arch.name} has no variant {variant!r}", hint=f"variants: {choices}"
        )
    return Platform("linux", arch.name, variant or arch.default_variant)


def known() -> str:
    return ", ".join(
        f"linux/{a.name}" + (f"/{a.default_variant}" if a.default_variant else "") for a in ARCHES.values()
    )


def machine_platform(machine: str) -> Platform:
    """The platform of a CPU that `uname -m` calls `machine`."""
    name = ALIASES.get(machine.lower())
    if name is None:
        raise UsageError(f"this machine's architecture {machine!r} is not one chrootforge knows")
    arch = ARCHES[name]
    variant = machine[len("armv") : len("armv") + 1] if name == "arm" else ""
    variant = f"v{variant}" if variant.isdigit() and f"v{variant}" in arch.variants else arch.default_variant
    return Platform("linux", name, variant)


def host_platform() -> Platform:
    return machine_platform(os.uname().machine)


def runs_natively(platform: Platform, host: Platform | None = None) -> bool:
    """Can this machine's CPU run the platform's binaries without an emulator?"""
    host = host or host_platform()
    return platform.architecture == host.architecture or platform.architecture in NATIVE_EXTRA.get(
        host.architecture, ()
    )
