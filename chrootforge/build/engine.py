"""`chrootforge build`: resolve the image graph, skip what is up to date, build the rest in order.

    build(targets, options: BuildOptions = BuildOptions(), *, shell=None, dist=None) -> BuildReport

`dist` (distribution.DistOptions): --push, --remote-cache and --binhost; build/distribution.py
says where they hook in.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from chrootforge import __version__, holds, log, untrusted
from chrootforge.build.distribution import DistOptions, Distribution
from chrootforge.build.flags import BuildOptions
from chrootforge.build.platformindex import OK, assemble, platform_layout
from chrootforge.cache.kinds import confined, entry, kind_root
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_write, file_lock
from chrootforge.gentoo import inputs as inp
from chrootforge.gentoo import provenance as pv
from chrootforge.gentoo import records as rec
from chrootforge.gentoo import runtimelibs
from chrootforge.gentoo import state as st
from chrootforge.gentoo.executor import BuildContext, ImageBuilder
from chrootforge.gentoo.image_io import CommitRequest
from chrootforge.gentoo.inputs import derived_epoch, epoch_override
from chrootforge.gentoo.mountview import describe_mounts
from chrootforge.gentoo.native_probe import resolve_for
from chrootforge.gentoo.plan import ImagePlan, check_binaries_script, image_ref, plan_image, render_plan
from chrootforge.gentoo.repro import build_umask
from chrootforge.gentoo.sbom import MEDIA_TYPE, spdx_document
from chrootforge.lockfile import FILENAME as LOCK
from chrootforge.oci.imageconfig import timestamp
from chrootforge.oci.layout import check_layout_target
from chrootforge.oci.referrer import attach_referrer
from chrootforge.oci.tree import source_date_epoch
from chrootforge.platforms import runs_natively
from chrootforge.sandbox import detect_idmap, owned_dir
from chrootforge.sandbox.syscalls import set_pdeathsig
from chrootforge.sources.stage_cache import newest_mtime, pristine_root
from chrootforge.spec.graph import build_order, load_project, parse_targets
from chrootforge.spec.model import PHASES, SCRATCH, Project
from chrootforge.spec.schema import content_digest


@dataclass
class ImageResult:
    image: str
    refs: list[str]
    status: str  # "built" | "up-to-date" | "pulled" | "failed" | "skipped" | "shell"
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    digest: str = ""
    size: int = 0
    layers: int = 0
    error: str = ""
    cache: str = ""  # --remote-cache: where it was pulled from, or how storing went
    pushed: list[dict] = field(default_factory=list)  # --push: reference, digest, uploaded_bytes
    # several platforms: digest is the image index's; each platform's own result, by platform
    platforms: dict[str, dict] = field(default_factory=dict)


@dataclass
class BuildReport:
    namespace: str
    layout: str
    images: list[ImageResult] = field(default_factory=list)
    seconds: float = 0.0
    ok: bool = True

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc, where: str = "build report") -> BuildReport:
        """The report to_json() wrote (read back from a VM guest): each field of the type it has
        here, or a ValueError naming it."""
        return _decoded(cls, doc, where, nested={"images": ImageResult})


def _decoded(cls, doc, where: str, nested: dict | None = None):
    """A dataclass from the dict that asdict() made of one: known fields, of the declared kinds."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: not an object")
    kinds: dict[str, type | tuple[type, ...]] = {
        "str": str,
        "float": (int, float),
        "int": int,
        "bool": bool,
        "list": list,
        "dict": dict,
    }
    values = {}
    for f in fields(cls):
        if f.name not in doc:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{where}: {f.name} is missing")
            continue
        value = doc[f.name]
        if nested and f.name in nested:
            if not isinstance(value, list):
                raise ValueError(f"{where}: {f.name} is not a list")
            value = [_decoded(nested[f.name], v, f"{where}: {f.name}[{i}]") for i, v in enumerate(value)]
        else:
            kind = str(f.type).split("[")[0]
            want = kinds.get(kind)
            bad_bool = kind in ("int", "float") and isinstance(value, bool)
            if want is not None and (not isinstance(value, want) or bad_bool):
                raise ValueError(f"{where}: {f.name} = {value!r} is not a {kind}")
        values[f.name] = value
    unknown = sorted(set(doc) - set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")
    return cls(**values)


def ref_name(ns, image: str, tag: str) -> str:
    """The org.opencontainers.image.ref.name of an image's tag: the full name, e.g.
    localhost/chrootforge/hello:latest (one layout holds every image of the namespace)."""
    return image_ref(ns, image, tag)


# -- layout reading (plain OCI layout files) ------------------------------------------------------
def _index_refs(layout: Path) -> dict[str, str]:
    try:
        index = untrusted.read_json(layout / "index.json")
    except (OSError, ValueError):
        return {}
    return {
        m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""): m["digest"]
        for m in index.get("manifests", [])
    }


def _manifest_stats(layout: Path, digest: str) -> tuple[int, int]:
    try:
        manifest = untrusted.read_json(layout / "blobs" / "sha256" / digest.split(":")[-1])
    except (OSError, ValueError):
        return 0, 0
    layers = manifest.get("layers", [])
    return sum(int(layer.get("size", 0)) for layer in layers), len(layers)


# -- cache keys --------------------------------------------------------------------------------
def image_key(project: Project, name: str, parent_digest: str, inputs) -> str:
    """What the image is made of, and nothing about where it goes or how it is named: the specs'
    content keys as loaded (schema.content_digest: the namespace's name among them, but not the
    layout, tags, prefix, registry, binhost, mirrors or local paths), the image's name (hooks see
    it), its hooks in order with their contents, the parent's digest, the stage and the tree
    (with the extra repositories) by content."""
    ns, image = project.namespace, project.images[name]
    hooks = [[h.phase, h.name, st.file_digest(h.path)] for h in image.hooks]
    if image.check_binaries:  # the stock check that runs after the strip
        hooks.append(["check_binaries", "check-binaries", st.file_digest(check_binaries_script())])
    parts = {
        "version": __version__,
        "platform": str(ns.platform),
        "namespace": content_digest(ns),
        "spec": [name, content_digest(image)],
        "hooks": hooks,
        "parent": parent_digest,
        "stage": inputs.stage_id,
        "tree": inputs.tree_id,
    }
    if inputs.native is not None:  # the spec says -march=native: what it means on this CPU
        parts["native"] = inputs.native.fingerprint()

    if epoch_override():  # the epoch is in the config, every mtime and what packages embed
        parts["source_date_epoch"] = epoch_override()
    return st.cache_key(parts)


# -- the build ---------------------------------------------------------------------------------
def check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise UsageError(
            f"--jobs {jobs}: must be at least 1",
            hint="--jobs N builds up to N images at once; emerge's own --jobs is [build] jobs",
        )


def prepare(
    targets: list[str],
    layout: str | None,
    dist,
    shell,
    no_deps: bool = False,
    network: str | None = None,
    platform=None,
):
    """What a build and its --plan check and load alike: the targets, the specs and the image
    graph, --shell's one image, and every registry reference (build.distribution) ->
    (project, requested, order, layout path, Distribution or None). `network` (--network)
    replaces [build] network, so the build key has the network the build runs with. `platform`:
    the namespace as that one of its platforms sees it (default its first)."""

    folder, names = parse_targets(targets)
    project, requested = load_project(folder, names, platform)
    if network:
        project.namespace = dataclasses.replace(project.namespace, network=network)
    layout_path = Path(layout).resolve() if layout else project.namespace.layout
    check_layout_target(layout_path)  # before anything, <layout>.build included, is made
    distribution = Distribution.prepare(dist, project, layout_path)
    if shell is not None and shell.now and len(requested) != 1:
        raise UsageError("--shell opens the build sandbox of one image", hint="name one NS/IMAGE folder")
    order = build_order(project.images, requested, with_deps=not no_deps)
    return project, requested, order, layout_path, distribution


def plan(
    targets: list[str], layout: str | None = None, *, dist=None, shell=None, network: str | None = None
) -> str:
    """The plan of every image of every platform, as text (no stage needed); refuses what build()
    refuses."""

    project, requested, _order, layout_path, _dist = prepare(targets, layout, dist, shell, network=network)
    platforms = project.namespace.platforms
    order = build_order(project.images, requested)
    out = [
        f"namespace {project.namespace.name} ({project.namespace.root})",
        f"layout {layout_path}",
        "platforms: "
        + ", ".join(map(str, platforms))
        + (" (every tag an image index of one image per platform)" if len(platforms) > 1 else ""),
        "order: " + " -> ".join(order),
    ]
    for platform in platforms:
        view = project
        if platform != project.namespace.platform:  # (the [build] binhost --binhost gave, too)
            view = prepare(targets, layout, binhost_only(dist), None, network=network, platform=platform)[0]
        states = layout_path if len(platforms) == 1 else platform_layout(layout_path, platform)
        for name in order:
            parent = view.images[name].parent
            state = st.load_state(states, parent) if parent != SCRATCH else None
            p = plan_image(
                view, name, state.packages() if state else None, tuple(state.provided) if state else ()
            )
            out.append(render_plan(p, describe_mounts(view.namespace, p), _platform_line(view.namespace)))
    return "\n".join(out) + "\n"


def binhost_only(dist):
    """The part of the build.distribution options that every platform view of the namespace takes:
    --binhost (pushing and the remote cache's references are checked once)."""
    return DistOptions(binhost=dist.binhost) if dist is not None and dist.binhost else None


def _platform_line(ns) -> str:
    """What --plan says about the platform every step of an image runs for."""
    if runs_natively(ns.platform):
        return f"{ns.platform} (this machine's CPU), stage3 {ns.stage3.arch}, profile {ns.tree.profile}"
    return (
        f"{ns.platform} (every step under QEMU's qemu-{ns.platform.arch.qemu}-static, registered in "
        f"the sandbox's own binfmt_misc), stage3 {ns.stage3.arch}, profile {ns.tree.profile}"
    )


_DEFAULTS = BuildOptions()


def build(targets: list[str], options: BuildOptions = _DEFAULTS, *, shell=None, dist=None) -> BuildReport:
    """options: build.flags.BuildOptions (jobs: how many independent images build at the same
    time). shell: an executor.ShellRequest
    (`--shell` opens it for the one named image instead of building it, once its parents are
    ready; `--shell-on-failure` for any image whose emerge or hook fails). dist: the
    build.distribution options (--push, --remote-cache, --binhost). With several [build] platforms, each
    builds into its own layout and every tag becomes an image index (_build_platforms).

    Every cache entry the build uses is held (chrootforge.holds) from before its first use until
    the build has ended, so that `cache prune` leaves it alone (docs/cache.md)."""
    # What a build makes (the stage cache, the builder's overlay, the image root, the scripts it
    # binds in, the layout) gets the same modes whatever the caller's umask: an overlay's root
    # takes its upper directory's mode, and a 0700 one would lock the builder's users out.
    with holds.session(), build_umask():
        return _build(_Options(targets, options, shell, dist))


def _build(options: _Options) -> BuildReport:
    started = time.monotonic()
    asked = options.asked
    check_jobs(asked.jobs)
    project, requested, order, layout_path, distribution = prepare(
        options.targets, asked.layout, options.dist, options.shell, asked.no_deps, asked.network
    )
    if len(project.namespace.platforms) > 1:
        report = _build_platforms(project, layout_path, options, distribution)
    else:
        report = _build_one(project, requested, order, layout_path, options, distribution)
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class _Options:
    targets: list[str]
    asked: BuildOptions
    shell: object
    dist: Any  # build.distribution.DistOptions | None


def _build_one(project, requested, order, layout_path: Path, options: _Options, distribution) -> BuildReport:
    """One platform's build into one layout (the namespace's platform view in `project`)."""
    asked = options.asked
    force, force_all, single_id, stage3 = asked.force, asked.force_all, asked.single_id, asked.stage3
    jobs, shell, dist = asked.jobs, options.shell, options.dist
    ns = project.namespace
    report = BuildReport(ns.name, str(layout_path))
    stage_override = Path(stage3).resolve() if stage3 else None
    inputs = resolve_for(project, inp.identify(ns, stage_override), stage_override, single_id)
    if inputs.lock is not None:
        log.info(f"inputs pinned by {ns.root / 'chrootforge.lock'}")
    forced = set(order) if force_all else (set(requested) if force else set())
    run = _Run(project, layout_path, inputs, stage_override, ns.network, single_id)
    run.remote_cache = dist.remote_cache if dist is not None else None  # recorded in the provenance
    # One build per layout at a time: builds share the work dirs and the state files.
    with _build_lock(layout_path):
        scheduler = _Scheduler(
            project, order, forced, layout_path, inputs, run, report, jobs, shell, distribution
        )
        scheduler.run()
        report.ok = all(r.status != "failed" for r in report.images)
        if distribution is not None:
            distribution.publish(report)
    return report


def _build_platforms(project, layout_path: Path, options: _Options, publish) -> BuildReport:
    """Each platform into its own layout, then an image index per tag (build/platformindex.py). `publish`:
    the distribution of the whole build (its --push runs once, at the end, with the indexes)."""
    ns, dist = project.namespace, options.dist
    if options.shell is not None:
        raise UsageError(
            "--shell and --shell-on-failure open one build sandbox, but the namespace builds for "
            + ", ".join(map(str, ns.platforms)),
            hint="open it in a namespace copy whose [build] platforms names one platform",
        )
    per_platform = None  # each platform's remote cache, nothing pushed (and signed) but there
    if dist is not None:
        per_platform = dataclasses.replace(
            dist, push=False, signing=dist.signing if dist.remote_cache else None
        )
    report = BuildReport(ns.name, str(layout_path))
    with _build_lock(layout_path):
        reports = []
        for platform in ns.platforms:
            sub = platform_layout(layout_path, platform)
            view, wanted, order, _sub, distribution = prepare(
                options.targets,
                str(sub),
                per_platform,
                None,
                options.asked.no_deps,
                options.asked.network,
                platform,
            )
            _check_same_output(project.namespace, view.namespace)
            log.info(f"platform {platform}")
            reports.append((platform, sub, _build_one(view, wanted, order, sub, options, distribution)))
        for first in reports[0][2].images:
            results = {str(p): next(r for r in rep.images if r.image == first.image) for p, _, rep in reports}
            merged = _merge_results(first.image, first.refs, results)
            if all(r.status in OK for r in results.values()):
                images = [(p, sub, results[str(p)].digest) for p, sub, _rep in reports]
                merged.digest, _size = assemble(layout_path, first.refs, images)
                log.info(f"{first.image}: image index {merged.digest[:19]} ({', '.join(results)})")
            report.images.append(merged)
        report.ok = all(rep.ok for _, _, rep in reports)
        if publish is not None:
            publish.publish(report)
    return report


def _build_lock(layout_path: Path):
    """The layout's build lock (its build dir made first)."""
    bdir = st.build_dir(layout_path)
    try:
        bdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {bdir}: {err.strerror}", hint="choose a writable --layout") from err
    return file_lock(bdir / ".build.lock")


def _check_same_output(first, other) -> None:
    """What the layout is and how it is named cannot differ between platforms."""
    for field_name in ("layout", "tags", "prefix", "compression", "registry"):
        if getattr(first, field_name) != getattr(other, field_name):
            raise UsageError(
                f"{first.spec_path}: [output] {field_name} differs between {first.platform} and "
                f"{other.platform} (a ${{VAR}} with a per-platform value?)",
                hint="one layout holds every platform's images: give them the same output settings",
            )


def _merge_results(image: str, refs: list[str], results: dict[str, ImageResult]) -> ImageResult:
    """One image's result over its platforms (its digest is set once the index is written)."""
    statuses = [r.status for r in results.values()]
    for status in ("failed", "skipped", "shell", "built", "pulled", "up-to-date"):
        if status in statuses:
            break
    return ImageResult(
        image,
        refs,
        status,
        sum(r.seconds for r in results.values()),
        size=sum(r.size for r in results.values()),
        layers=max((r.layers for r in results.values()), default=0),
        error=next((r.error for r in results.values() if r.error), ""),
        cache=next((r.cache for r in results.values() if r.cache), ""),
        platforms={
            p: {k: getattr(r, k) for k in ("status", "digest", "seconds", "size", "layers", "error", "cache")}
            for p, r in results.items()
        },
    )


class _Scheduler:
    """Builds the images in dependency order, up to `jobs` at the same time.

    An image is ready once its parent is built or up to date (the key hashes the parent's digest);
    a failure skips the images below it, not its siblings. With jobs > 1 each image builds in a
    worker process of its own (spawned, so no fork of a threaded process; it dies with us), sharing
    the run's prepared context: the verified, extracted stage and the tree. With a distribution
    (build.distribution), an image found in the remote cache by its key is pulled instead of built, and what
    is built or up to date is stored there, both from this process.
    """

    def __init__(self, project, order, forced, layout, inputs, run, report, jobs, shell, dist=None):
        self.project, self.order, self.forced, self.layout = project, order, forced, layout
        self.inputs, self.run_ctx, self.report, self.shell = inputs, run, report, shell
        self.dist = dist
        self.keys: dict[str, str] = {}
        # an interactive shell needs the terminal, which only this process holds
        self.jobs = 1 if shell is not None else jobs
        self.results: dict[str, ImageResult] = {}
        self.digests: dict[str, str] = {}

    def _shell_for(self, name: str):
        """--shell opens the requested image's sandbox (the last of the order: its parents come
        first); --shell-on-failure applies to every image that builds."""
        if self.shell is None or (self.shell.now and name != self.order[-1]):
            return None
        return self.shell

    def run(self) -> None:
        try:
            if self.jobs == 1:
                for name in self.order:
                    self._finish(name, self._start(name, None))
            else:
                self._parallel()
        finally:
            self.run_ctx.close()
        self.report.images.extend(self.results[name] for name in self.order)

    def _blocked(self, name: str) -> ImageResult | None:
        image = self.project.images[name]
        parent = self.results.get(image.parent)
        if parent is not None and parent.status in ("failed", "skipped"):
            return ImageResult(name, self._refs(name), "skipped", error=f"its parent {image.parent} failed")
        return None

    def _refs(self, name: str) -> list[str]:
        return [ref_name(self.project.namespace, name, t) for t in self.project.images[name].tags]

    def _start(self, name: str, pool):
        """An ImageResult when nothing needs building; otherwise the build (run now, or a
        future of the pool)."""
        blocked = self._blocked(name)
        if blocked is not None:
            return blocked
        image = self.project.images[name]
        refs = self._refs(name)
        parent_state = None
        if image.parent != SCRATCH:
            parent_state = st.load_state(self.layout, image.parent)
            if parent_state is None or not _refs_present(self.layout, parent_state):
                raise UsageError(
                    f"image {name}: its parent '{image.parent}' has not been built",
                    hint="build without --no-deps",
                )
        parent_digest = self.digests.get(image.parent) or (
            parent_state.manifest_digest if parent_state else ""
        )
        key = image_key(self.project, name, parent_digest, self.inputs)
        old = st.load_state(self.layout, name)
        shell = self._shell_for(name)
        up_to_date = name not in self.forced and old and old.key == key and _refs_present(self.layout, old)
        self.keys[name] = key
        if up_to_date and old is not None and not (shell is not None and shell.now):
            size, layers = _manifest_stats(self.layout, old.manifest_digest)
            log.info(f"{name}: up to date ({old.manifest_digest[:19]})")
            return ImageResult(name, refs, "up-to-date", 0.0, {}, old.manifest_digest, size, layers)
        cached = (
            self.dist.fetch(name, key, refs)
            if self.dist is not None and name not in self.forced and shell is None
            else None
        )
        if cached is not None:
            return ImageResult(
                name,
                refs,
                "pulled",
                cached.seconds,
                {"pull": cached.seconds},
                cached.digest,
                cached.size,
                cached.layers,
                cache=cached.source,
            )
        if pool is None:
            return self.run_ctx.build_image(name, key, parent_state, refs, shell)
        self.run_ctx.context()  # prepared once, here, before the workers take a copy
        return pool.submit(_build_in_worker, self.run_ctx, name, key, parent_state, refs, shell)

    def _finish(self, name: str, result: ImageResult) -> None:
        if self.dist is not None and result.status in ("built", "up-to-date"):
            result.cache = self.dist.after(name, self.keys[name], result.refs, result.status)
        self.results[name] = result
        if result.digest and result.status in ("built", "up-to-date", "pulled"):
            self.digests[name] = result.digest

    def _parallel(self) -> None:
        pending = list(self.order)
        running: dict = {}
        with cf.ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(), log.is_quiet()),
        ) as pool:
            try:
                while pending or running:
                    for name in list(pending):
                        if len(running) >= self.jobs:
                            break
                        parent = self.project.images[name].parent
                        if parent in pending or parent in running.values():
                            continue  # its parent is not done yet
                        pending.remove(name)
                        started = self._start(name, pool)
                        if isinstance(started, ImageResult):
                            self._finish(name, started)
                        else:
                            running[started] = name
                    if running:
                        done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                        for future in done:
                            self._finish(running.pop(future), future.result())
            except BaseException:
                for future in running:
                    future.cancel()
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()  # their sandboxes follow them (PR_SET_PDEATHSIG)
                raise


def _worker_init(parent: int, quiet: bool) -> None:
    """In a build worker: die with the build (and so take its sandboxes along), speak as it does."""
    set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    log.set_quiet(quiet)


def _build_in_worker(run, name, key, parent_state, refs, shell):
    log.set_prefix(f"[{name}] ")
    return run.build_image(name, key, parent_state, refs, shell)


def _refs_present(layout: Path, state: st.ImageState) -> bool:
    """Are all the state's tags (full ref names) still in the layout, on the recorded manifest?"""
    refs = _index_refs(layout)
    return bool(state.tags) and all(refs.get(ref) == state.manifest_digest for ref in state.tags)


def work_root(layout: Path) -> Path:
    """Where a layout's builds keep their roots while they run: in the cache, which the sandbox's
    root can always reach (as real root, an unprivileged range that a 0700 home would stop)."""
    return entry("work", hashlib.sha256(str(Path(layout).resolve()).encode()).hexdigest()[:16])


class _Run:
    """Lazily prepared shared context (stage verification and extraction only if something builds)."""

    def __init__(self, project, layout, inputs, stage_override, network, single_id):
        self.project, self.layout, self.inputs = project, layout, inputs
        self.stage_override, self.network, self.single_id = stage_override, network, single_id
        self.ctx = None
        self.stage_record = None
        self.tree_record = None
        self.epoch = 0
        self.image_binpkgs: dict[str, Path] = {}  # images with their own package.env
        self.remote_cache: str | None = None

    def context(self):
        if self.ctx is not None:
            return self.ctx

        ns = self.project.namespace
        # Held (in the build's holds.session()) first, until the build ends: the sandboxes bind
        # them, emerge reads and writes there. The stage3, its extraction and the tree are held
        # where they are fetched or made (sources.cache, stage_cache, inputs.extracted_tree).
        held = holds.current().hold
        binpkgs = held(entry("binpkgs", inp.binpkg_key(ns, self.inputs)))
        distfiles = held(kind_root("distfiles"))  # bound whole: held as a whole
        workdir = held(work_root(self.layout))
        for name, image in self.project.images.items():
            env = inp.package_env_of(image)
            if env:  # those images' own binpkgs dirs (made when they build, maybe in a worker)
                self.image_binpkgs[name] = held(entry("binpkgs", inp.binpkg_key(ns, self.inputs, env)))
        idmap = detect_idmap(single_id=self.single_id)
        if idmap.single_id:
            from chrootforge.gentoo.singleid import NOTICE

            log.notice(NOTICE)
        t0 = time.monotonic()
        self.stage_record = inp.fetch_stage(ns, self.inputs, self.stage_override)
        pristine = pristine_root(self.stage_record, idmap)
        tree, self.tree_record = inp.resolve_tree(ns, self.inputs)
        self.epoch = build_epoch(self.stage_record, newest_mtime(pristine), tree, self.tree_record)
        log.info(
            f"stage ready in {time.monotonic() - t0:.2f}s ({self.stage_record.name} from "
            f"{self.stage_record.source_url}); epoch {self.epoch}"
        )
        bdir = st.build_dir(self.layout)
        for d in (bdir / "logs", self.layout):
            d.mkdir(parents=True, exist_ok=True)
        for d in (binpkgs, distfiles, workdir):  # the sandbox's root writes there
            owned_dir(d, idmap)
        if ns.distfiles:
            _sync_distfiles(ns.distfiles, distfiles)
        self.ctx = BuildContext(
            namespace=ns.name,
            layout=self.layout,
            workdir=workdir,
            logdir=bdir / "logs",
            pristine=pristine,
            idmap=idmap,
            tree=tree,
            repos=dict(ns.repos),
            distfiles=distfiles,
            binpkgs=binpkgs,
            network=self.network,
            compression=ns.compression,
            epoch=self.epoch,
            platform=ns.platform,
        )
        return self.ctx

    def _binpkgs_for(self, name: str) -> Path:
        """The namespace's binpkgs directory, or an image's own when it compiles packages with
        its own environment (those binaries must not be shared; held since context())."""
        path = self.image_binpkgs.get(name)
        if path is None:
            return self.ctx.binpkgs
        owned_dir(path, self.ctx.idmap)
        return path

    def provenance(self) -> dict[str, str]:
        """Where the inputs came from: for the build's log and state, never for a digest."""
        out = {}
        for what, record in (("stage3", self.stage_record), ("tree", self.tree_record)):
            if record is not None:
                out[what] = record.source_url
        return out

    def build_image(self, name: str, key: str, parent_state, refs: list[str], shell=None) -> ImageResult:
        started = time.monotonic()
        log.info(
            f"{name}: building" if shell is None or not shell.now else f"{name}: opening its build shell"
        )
        image = self.project.images[name]
        try:
            ctx = self.context()
            parent_records = parent_state.packages() if parent_state else []
            p = plan_image(
                self.project,
                name,
                parent_records if image.parent != SCRATCH else None,
                tuple(parent_state.provided) if parent_state else (),
            )
            for why in p.provided.reinstalled:
                log.info(f"    reinstalling {why}")
            parent_ref = parent_state.tags[0] if parent_state else None
            builder = ImageBuilder(ctx, p, parent_ref, self._binpkgs_for(name))
            commit = self._commit_request(p, refs, key)
            built = builder.build(commit, shell)
            if built is None:  # --shell: nothing was committed
                return ImageResult(name, refs, "shell", time.monotonic() - started, dict(builder.timer.steps))
            digest, own = built
            cumulative = rec.merge(parent_records, own)
            builder_files = runtimelibs.merge(
                runtimelibs.load(parent_state.builder_files) if parent_state else [], builder.builder_files
            )
            self._write_sbom(p, refs, digest, cumulative, builder_files)
            self._write_provenance(p, refs, digest, key, parent_state)
            size, layers = _manifest_stats(self.layout, digest)
            seconds = time.monotonic() - started
            st.save_state(
                self.layout,
                st.ImageState(
                    image=name,
                    key=key,
                    manifest_digest=digest,
                    tags=list(refs),
                    records=rec.dump(cumulative),
                    own=[p.cpv for p in own],
                    size=size,
                    layers=layers,
                    seconds=seconds,
                    sources=self.provenance(),
                    provided=list(p.provided.passed_down(builder.resolved_provided)),
                    builder_files=runtimelibs.dump(builder_files),
                ),
            )
            return ImageResult(name, refs, "built", seconds, dict(builder.timer.steps), digest, size, layers)
        except CfError as err:
            log.info(f"{name}: FAILED")
            return ImageResult(name, refs, "failed", time.monotonic() - started, error=err.render())
        except OSError as err:  # a host-side file problem: one clear line, not a traceback
            log.info(f"{name}: FAILED")
            error = CfError(f"image {name}: {err.strerror or err}: {err.filename or ''}".rstrip(": "))
            return ImageResult(name, refs, "failed", time.monotonic() - started, error=error.render())

    def _commit_request(self, p: ImagePlan, refs: list[str], key: str):
        """Config, labels and history: what the image is, nothing about where it lives or goes (no
        path, URL or user, and no ref name, tag or prefix: those are the layout index's
        annotations, so a push under another name or a retag never changes the digest), and the
        build's one epoch everywhere (config created, history, labels, every mtime's clamp)."""
        ns = self.project.namespace
        image = self.project.images[p.name]
        created = timestamp(self.epoch)
        labels = {
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.title": p.name,
            "org.chrootforge.version": __version__,
            "org.chrootforge.namespace": ns.name,
            "org.chrootforge.build.engine-key": key,
            "org.chrootforge.tree": self.inputs.tree_id,
        }
        if image.description:
            labels["org.opencontainers.image.description"] = image.description
        if self.stage_record is not None:
            labels.update(self.stage_record.labels())
        if self.tree_record is not None:
            labels.update(self.tree_record.labels())
        config = dict(p.config)
        config["Labels"] = {**labels, **config.get("Labels", {})}
        history = (
            {
                "created": created,
                "created_by": f"chrootforge build {ns.name}/{p.name}: emerge " + " ".join(image.packages),
                "comment": f"chrootforge {__version__}",
            },
        )
        return CommitRequest(
            tags=tuple(refs), config=config, labels=config["Labels"], history=history, epoch=self.epoch
        )

    def _write_sbom(self, p: ImagePlan, refs: list[str], digest: str, cumulative, builder_files) -> None:
        ns = self.project.namespace
        doc = spdx_document(
            f"{ns.name}/{p.name}",  # the image's name in its namespace: no prefix or tag (see above)
            cumulative,
            created_epoch=self.epoch,
            tool_version=__version__,
            namespace_uri=f"https://chrootforge.invalid/spdx/{ns.name}/{p.name}/{digest}",
            image_digest=digest,
            builder_files=builder_files,
        )
        data = json.dumps(doc, indent=1, sort_keys=True).encode()
        sbom_dir = st.build_dir(self.layout) / "sbom"
        sbom_dir.mkdir(parents=True, exist_ok=True)

        atomic_write(sbom_dir / f"{p.name}.spdx.json", data)
        attach_referrer(self.layout, refs[0], data, MEDIA_TYPE, artifact_type=MEDIA_TYPE)

    def _write_provenance(self, p: ImagePlan, refs: list[str], digest: str, key: str, parent_state) -> None:
        """The in-toto/SLSA provenance (gentoo/provenance.py), attached and kept beside the SBOM."""
        ns = self.project.namespace
        image = self.project.images[p.name]
        inputs = [
            pv.file_input(ns.spec_path.name, ns.spec_path.read_bytes()),
            pv.file_input(f"{p.name}/{image.spec_path.name}", image.spec_path.read_bytes()),
            pv.tree_input(self.inputs.tree_id),
        ]
        inputs += [pv.file_input(f"hooks/{h.phase}/{h.name}", h.path.read_bytes()) for h in image.hooks]
        if (ns.root / LOCK).is_file():
            inputs.append(pv.file_input(LOCK, (ns.root / LOCK).read_bytes()))
        if self.stage_record is not None:
            inputs.append(pv.fetched_input("stage3", self.stage_record))
        if self.tree_record is not None:
            inputs.append(pv.fetched_input("snapshot", self.tree_record))
        if parent_state is not None:
            inputs.append(pv.image_input(parent_state.tags[0], parent_state.manifest_digest))
        facts = pv.BuildFacts(
            image_ref=refs[0],
            manifest_digest=digest,
            namespace=ns.name,
            image=p.name,
            tags=tuple(image.tags),
            key=key,
            epoch=self.epoch,
            version=__version__,
            inputs=tuple(inputs),
            binhost=p.binhost if p.emerge_argv else None,
            remote_cache=self.remote_cache,
        )
        data = pv.encode(pv.statement(facts))
        folder = st.build_dir(self.layout) / "provenance"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"{p.name}.intoto.json", data)
        pv.attach(self.layout, refs[0], data)

    def close(self) -> None:
        pass


def build_epoch(stage_record, stage_newest_mtime, tree: Path | None, tree_record) -> int:
    """The build's one timestamp: SOURCE_DATE_EPOCH when set, else derived from the inputs'
    content (gentoo.inputs.derived_epoch)."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        return source_date_epoch()
    return derived_epoch(stage_record, stage_newest_mtime, tree, tree_record)


def _sync_distfiles(src: Path, dest: Path) -> None:
    """Copy the namespace's distfiles into the (writable, ours) distfiles cache."""
    if not src.is_dir():
        raise UsageError(f"distfiles directory {src} does not exist")
    for item in src.iterdir():
        if item.is_file() and not item.name.startswith("."):
            target = confined(dest, item.name, what="distfile")
            if not target.exists() or target.stat().st_size != item.stat().st_size:
                tmp = target.with_name(f".{item.name}.tmp")
                shutil.copyfile(item, tmp)
                os.replace(tmp, target)


def summary_table(report: BuildReport) -> str:
    rows = [("IMAGE", "TAG", "STATUS", "SIZE", "LAYERS", "TIME")]
    for r in report.images:
        size = f"{r.size / 1048576:.1f} MiB" if r.size else "-"
        rows.append(
            (r.image, r.refs[0] if r.refs else "-", r.status, size, str(r.layers or "-"), f"{r.seconds:.1f}s")
        )
        for platform, p in r.platforms.items():
            psize = f"{p['size'] / 1048576:.1f} MiB" if p["size"] else "-"
            rows.append(
                ("", f"  {platform}", p["status"], psize, str(p["layers"] or "-"), f"{p['seconds']:.1f}s")
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(f"total {report.seconds:.1f}s, layout {report.layout}")
    return "\n".join(lines)


__all__ = ["PHASES", "BuildReport", "ImageResult", "build", "plan", "ref_name", "summary_table"]
