"""`-march=native` (and `-mtune=`/`-mcpu=native`) made concrete before it enters any key.

Portage tells binary packages apart by USE (--binpkg-respect-use), never by the flags they were
compiled with, and "native" means another instruction set on every CPU. So the build key, the
binpkgs key (hence the binhost directory) and the remote cache tag carry what "native" meant for
the compiler that ran: the builder's `gcc -march=native -Q --help=target` gives the concrete
-march/-mtune/-mcpu and every target option it enabled (the ISA extensions among them). Two
machines share binaries only when all of that is equal.

Why the builder's gcc and not the host's: it is the compiler that interprets "native", and
another gcc version names CPUs differently and knows other ISA extensions (a host gcc that does
not know an extension the builder's gcc uses would give two different CPUs the same key). A CI
host need not have gcc at all. The answer is memoized per (stage, host CPU) in
`<cache>/native-cpu.json`, so only the first build on a machine (per stage) pays the probe.

The pure part (parse, resolve, fingerprint, which values use native) is here; native_probe.py
runs gcc in a builder (apart, so that gentoo/inputs.py, which names a NativeCpu, and the probe,
which needs the inputs, form no cycle).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

NATIVE_RE = re.compile(r"(-m(?:arch|tune|cpu)=)native(?![\w.+-])")
_OPTION_RE = re.compile(r"^\s+(-m[A-Za-z0-9_.+-]+=?)\s+(\S.*)?\Z")
# /proc/cpuinfo fields that say which CPU this is (x86 and arm); clock speeds and ids are left out
_CPU_FIELDS = (
    "vendor_id",
    "cpu family",
    "model",
    "model name",
    "stepping",
    "flags",
    "CPU implementer",
    "CPU architecture",
    "CPU variant",
    "CPU part",
    "Features",
    "isa",
    "uarch",
    "cpu",
)
GCC_ARGV = ("gcc", "-march=native", "-Q", "--help=target")


@dataclass(frozen=True)
class NativeCpu:
    """What `gcc -march=native` selects: the CPU names and the enabled target options."""

    arch: str
    tune: str = ""
    cpu: str = ""
    enabled: tuple[str, ...] = ()

    def resolve(self, flags: str) -> str:
        """`flags` with -march=native (-mtune, -mcpu) replaced by the concrete names."""
        names = {"-march=": self.arch, "-mtune=": self.tune or self.arch, "-mcpu=": self.cpu or self.arch}
        return NATIVE_RE.sub(lambda m: m.group(1) + names[m.group(1)], flags)

    def fingerprint(self) -> str:
        """One line for the keys: the names, and a digest of every enabled target option."""
        isa = hashlib.sha256("\n".join(sorted(self.enabled)).encode()).hexdigest()[:16]
        return f"march={self.arch} mtune={self.tune} mcpu={self.cpu} options={isa}"

    def to_json(self) -> dict:
        return {"arch": self.arch, "tune": self.tune, "cpu": self.cpu, "enabled": list(self.enabled)}

    @classmethod
    def from_json(cls, data: dict) -> NativeCpu:
        return cls(
            str(data["arch"]),
            str(data.get("tune", "")),
            str(data.get("cpu", "")),
            tuple(str(x) for x in data.get("enabled", ())),
        )


def uses_native(value: str) -> bool:
    return bool(NATIVE_RE.search(value))


def project_uses_native(project) -> bool:
    """Does any make.conf value of the namespace or package.env value of an image say native?"""
    values = list(project.namespace.make_conf.values())
    for image in project.images.values():
        values += [v for s in image.package_settings for _, v in s.env]
    return any(uses_native(v) for v in values)


def parse_target_help(text: str) -> NativeCpu:
    """NativeCpu from `gcc -march=native -Q --help=target`; ValueError when gcc named no CPU."""
    values: dict[str, str] = {}
    enabled = []
    for line in text.splitlines():
        match = _OPTION_RE.match(line)
        if not match:
            continue
        option, value = match.group(1), (match.group(2) or "").strip()
        if option.endswith("="):
            values[option] = value
        elif value == "[enabled]":
            enabled.append(option)
    arch = values.get("-march=", "")
    cpu = values.get("-mcpu=", "")
    if arch in ("", "native") and cpu in ("", "native"):
        raise ValueError("gcc reported no concrete -march or -mcpu for native")
    tune = values.get("-mtune=", "")
    return NativeCpu(
        arch if arch != "native" else "",
        tune if tune != "native" else "",
        cpu if cpu != "native" else "",
        tuple(sorted(set(enabled))),
    )


def host_cpu_id(cpuinfo: str) -> str:
    """A digest of what /proc/cpuinfo says about the first CPU: which CPU, not its clock."""
    first = cpuinfo.split("\n\n", 1)[0]
    kept = []
    for line in first.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name in _CPU_FIELDS:
            words = value.split()
            kept.append(f"{name}={' '.join(sorted(words) if name in ('flags', 'Features') else words)}")
    return hashlib.sha256("\n".join(sorted(kept)).encode()).hexdigest()[:24]
