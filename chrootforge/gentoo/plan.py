"""Everything one image build will do, as a value: computed without a stage, shown by --plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chrootforge.gentoo import binhost, emerge, portage_conf, s6
from chrootforge.gentoo.configplan import oci_config
from chrootforge.gentoo.emerge import EMERGE_ROOT
from chrootforge.gentoo.provided import ProvidedPlan, child_use_map, plan_provided
from chrootforge.gentoo.records import InstalledPackage
from chrootforge.gentoo.runtimelibs import RuntimeLibsPlan
from chrootforge.gentoo.slim import SlimPlan, plan_slim
from chrootforge.gentoo.uninstall import UninstallPlan, plan_uninstall
from chrootforge.spec import source
from chrootforge.spec.graph import ancestors
from chrootforge.spec.image import stock_hooks_dir
from chrootforge.spec.model import PHASES, SCRATCH, Image, Namespace, Project

CHECK_BINARIES = "check-binaries.sh"


@dataclass(frozen=True)
class ImagePlan:
    name: str
    parent: str | None
    refs: tuple[str, ...]  # full names, e.g. localhost/world/hello:latest
    tags: tuple[str, ...]
    portage: portage_conf.PortageConfig
    provided: ProvidedPlan
    emerge_argv: tuple[str, ...]
    emerge_env: dict[str, str]
    builder_deps_argv: tuple[str, ...]  # ROOT=/: the packages' build deps into the builder first
    hooks: dict[str, tuple[tuple[str, Path], ...]]
    services: tuple[s6.FileEntry, ...]
    slim: SlimPlan
    config: dict
    uninstall: UninstallPlan
    runtime_libs: RuntimeLibsPlan
    notes: tuple[str, ...] = field(default=())
    binhost: str | None = None  # [build] binhost: read at <binhost>/<binpkgs key>/
    check_binaries: Path | None = None  # the stock check run after the strip (None: turned off)


def image_ref(ns: Namespace, image: str, tag: str) -> str:
    return f"{ns.prefix}/{image}:{tag}"


def plan_image(
    project: Project,
    name: str,
    parent_records: list[InstalledPackage] | None,
    parent_provided: tuple[str, ...] = (),
) -> ImagePlan:
    """`parent_records`: the parent's cumulative package list (None: parent not built yet);
    `parent_provided`: the explicit package.provided entries it passes down (from its state)."""
    ns = project.namespace
    image = project.images[name]
    chain = [project.images[a] for a in ancestors(project.images, name)]
    notes = []
    if image.parent != SCRATCH and parent_records is None:
        notes.append(f"package.provided comes from the build of '{image.parent}' (not built yet)")
    provided = plan_provided(
        parent_records or [],
        child_use_map(image.package_settings),
        parent_provided=parent_provided,
        provided=image.provided,
        unprovided=image.unprovided,
    )
    uninstall, problems = plan_uninstall(image.uninstall, image.force_uninstall, parent_records)
    if problems:
        raise source.load(image.spec_path).error(
            ("uninstall",), problems[0], hint="uninstall removes what this image's emerge installed"
        )
    services = s6.all_services(list(reversed(chain)) + [image])
    own_entries = s6.service_entries(image.services)
    has_services = bool(services)
    if has_services and not _has_s6(image, chain):
        notes.append("services are declared but no image in the chain lists an s6 package")
    return ImagePlan(
        name=name,
        parent=None if image.parent == SCRATCH else image.parent,
        refs=tuple(image_ref(ns, name, t) for t in image.tags),
        tags=image.tags,
        portage=portage_conf.generate(ns, image, provided),
        provided=provided,
        emerge_argv=tuple(emerge.emerge_argv(image.packages, ns.jobs)) if image.packages else (),
        emerge_env=emerge.emerge_env(),
        builder_deps_argv=tuple(emerge.builder_deps_argv(image.packages, ns.jobs)) if image.packages else (),
        hooks={phase: tuple((h.name, h.path) for h in image.hooks_for(phase)) for phase in PHASES},
        services=tuple(own_entries),
        slim=plan_slim(image.strip),
        config=oci_config(image, chain, has_services),
        uninstall=uninstall,
        runtime_libs=RuntimeLibsPlan(image.runtime_libs),
        notes=tuple(notes),
        binhost=ns.binhost,
        check_binaries=check_binaries_script() if image.check_binaries else None,
    )


def check_binaries_script() -> Path:
    """The stock check-binaries hook, which every image runs after its strip unless turned off."""
    return stock_hooks_dir() / CHECK_BINARIES


def _has_s6(image: Image, chain: list[Image]) -> bool:
    return any("s6" in atom.split("/")[-1] for img in [image, *chain] for atom in img.packages)


def render_plan(plan: ImagePlan, mounts: list[str] | None = None, platform: str = "") -> str:
    """A human-readable plan (what `chrootforge build --plan` prints); `platform`: the line that
    says which platform every step of the image runs for."""
    out = [f"== image {plan.name} (parent: {plan.parent or 'scratch'})", "   tags: " + " ".join(plan.refs)]
    if platform:
        out.append(f"   platform: {platform}")
    for note in plan.notes:
        out.append(f"   note: {note}")
    if mounts:
        out.append("   sandbox mounts:")
        out += [f"     {m}" for m in mounts]
    out.append("   /etc/portage:")
    for path, content in sorted(plan.portage.files.items()):
        body = [line for line in content.splitlines() if line and not line.startswith("#")]
        if body:
            out.append(f"     {path}:")
            out += [f"       {line}" for line in body]
    out.append("     make.conf (appended):")
    out += [f"       {line}" for line in plan.portage.make_conf_append.splitlines() if line]
    out.append("     profile/package.provided:")
    out += [f"       {line}" for line in plan.provided.lines]
    out += [f"       {cp}-<best visible version, resolved in the builder>" for cp in plan.provided.resolve]
    if not plan.provided.lines and not plan.provided.resolve:
        out.append("       (nothing)")
    for why in plan.provided.reinstalled:
        out.append(f"       # reinstalled: {why}")
    for why in plan.provided.dropped:
        out.append(f"       # unprovided: {why}")
    if plan.provided.unprovided and not plan.provided.dropped:
        out.append(
            "       # unprovided: "
            + " ".join(plan.provided.unprovided)
            + " (kept out of what the parents pass down; installed again here)"
        )
    if plan.portage.profile:
        out.append(f"     make.profile -> {plan.portage.profile}")
    for phase in PHASES:
        for hook_name, hook_path in plan.hooks[phase]:
            out.append(f"   hook {phase}: {hook_name} ({hook_path})")
    if plan.builder_deps_argv:
        out.append(f"   builder deps: ROOT=/ {' '.join(plan.builder_deps_argv)}")
    if plan.emerge_argv:
        if plan.binhost:
            out.append(
                f"   binhost: {plan.binhost.rstrip('/')}/<binpkgs key>/ -> {binhost.MOUNT} (fetched on the "
                f"host: {' '.join(binhost.pretend_argv(plan.emerge_argv)[:4])} ... says what)"
            )
            argv = binhost.with_getbinpkg(plan.emerge_argv)
        else:
            argv = list(plan.emerge_argv)
        out.append(f"   emerge: {emerge.command_line(argv, plan.emerge_env)}")
    else:
        out.append("   emerge: (no packages)")
    if plan.uninstall.packages:
        force = " (force_uninstall: even what installed packages still need)" if plan.uninstall.force else ""
        out.append(f"   uninstall: ROOT={EMERGE_ROOT} {' '.join(plan.uninstall.argv())}{force}")
    if plan.runtime_libs.names:
        out.append(
            f"   runtime_libs: {' '.join(plan.runtime_libs.names)} (from the builder's packages, into "
            "the directory of the image's libc.so.6)"
        )
    for entry in plan.services:
        if entry.kind == "file":
            out.append(f"   s6: {entry.path} ({entry.mode:o})")
        elif entry.kind == "symlink":
            out.append(f"   s6: {entry.path} -> {entry.content}")
    out.append(f"   loader cache: ldconfig -X -r {EMERGE_ROOT} (when the root has glibc's loader)")
    out.append("   strip: " + " ".join(plan.slim.remove))
    if plan.slim.keep:
        out.append("   strip keep: " + " ".join(plan.slim.keep))
    if plan.check_binaries:
        out.append(f"   check-binaries: after the strip ({plan.check_binaries})")
    else:
        out.append("   check-binaries: off (check_binaries = false)")
    out.append(f"   config: {plan.config}")
    return "\n".join(out)
