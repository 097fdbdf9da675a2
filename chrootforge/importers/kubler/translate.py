"""From what the probe recorded to a chrootforge namespace (pure): spec values, hooks, IMPORT.md.

`map_namespace` takes the probes of the namespace's images and builders and their folders, and
decides, line by line, what becomes a key and what stays a hook. docs/import.md describes the
mapping; analysis.py the rule that tells a static helper call from a dynamic one.

kubler's builder chain matters here: kubler builds an image in the build container its parent's
build left behind (or a fresh one of its BUILDER, or of DEFAULT_BUILDER for an image on scratch),
so the portage settings of every image up the chain, and of the builder, are in force when it
builds, and the packages their configure_builder hooks installed are there. chrootforge starts each
image from a fresh builder: an image gets the chain's portage settings as its own keys, and the
chain's configure_builder hooks run again, in order, in its configure_builder phase.
"""

from __future__ import annotations

from chrootforge.errors import UsageError
from chrootforge.importers.kubler import settings
from chrootforge.importers.kubler.decisions import Decided, Decisions, key_text
from chrootforge.importers.kubler.nsconf import namespace_spec
from chrootforge.importers.kubler.outcome import (
    BUILDERS_DIR,
    COMPAT_HOOK,
    PHASE_OF,
    SCRIPT,
    BuilderResult,
    Entry,
    Folder,
    ImageResult,
    NamespaceResult,
    Script,
    Site,
    where,
)
from chrootforge.importers.kubler.recorded import UnitProbe, Var
from chrootforge.importers.kubler.template import map_template
from chrootforge.spec import checks

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # chrootforge's config
OMITTED_CONF = {
    "BUILDER_CAPS_SYS_PTRACE": "chrootforge's sandbox has no capability switches (ptrace works in it)",
    "BUILDER_SECCOMP": "chrootforge's sandbox takes no seccomp profile",
    "BUILDER_MOUNTS": "chrootforge binds nothing of the host into a build but its caches",
    "PARENT_BUILDER_MOUNTS": "chrootforge binds nothing of the host into a build but its caches",
    "BUILDER_DOCKER_ARGS": "there is no docker run: chrootforge's sandbox builds",
    "BUILDER_DOCKER_ARGS_GLOBAL": "there is no docker run: chrootforge's sandbox builds",
    "BUILD_ENGINE": "chrootforge builds without docker or podman",
    "ARCH_URL": "chrootforge finds the stage3 on the mirror itself",
}
OMITTED_SH = {
    "_no_cache": "chrootforge's binary packages are reused only with the same USE and compiler "
    "settings; `build --force` rebuilds",
    "_emerge_opt": "chrootforge runs emerge with its own options",
    "_emerge_bin": "chrootforge runs emerge itself (no crossdev wrapper)",
    "_headers_from": "chrootforge keeps no copy of a parent's headers; keep them in the parent "
    "([strip] headers = false) or install the package here",
    "_static_libs_from": "chrootforge keeps no copy of a parent's static libraries; keep them in "
    "the parent ([strip] static_libs = false)",
    "_iconv_from": "chrootforge keeps no copy of glibc's gconv modules; keep them in the parent "
    "([strip] keep)",
    "BOB_KEEP_BUILD_LOG": "chrootforge keeps every build log in <layout>.build/logs/IMAGE/",
    "BOB_SKIP_LIB_CLEANUP": "nothing to skip: chrootforge does not delete *.c, *.o or *.prl files",
}


class _Mapper:
    def __init__(self, kubler_name: str, source: str, probes: dict[str, UnitProbe], folders):
        self.ns = kubler_name
        self.source = source
        self.probes = probes
        self.folders: dict[str, Folder] = folders
        self.images = sorted(u.split("/", 1)[1] for u in probes if u.startswith("images/"))
        self.builders = sorted(u.split("/", 1)[1] for u in probes if u.startswith("builder/"))
        self.texts: dict[str, dict[Site, str]] = {
            unit: {(c.file, c.line): c.text for c in p.top_commands if c.run == "A"}
            for unit, p in probes.items()
        }
        self.decisions = Decisions(probes)

    # -- small helpers ---------------------------------------------------------------------------
    def error(self, site: Site | None, message: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{where(self.source, site)}: {message}", hint=hint)

    def text(self, unit: str, site: Site | None) -> str:
        if site is None:
            return ""
        return self.texts.get(unit, {}).get(site, "")

    def conf(self, unit: str) -> dict[str, Var]:
        return self.probes[unit].variables("conf")

    def entry(self, unit: str, var: Var, outcome: str) -> Entry:
        return Entry(var.site, self.text(unit, var.site) or f"{var.name}={var.text}", outcome)

    def image_ref(self, unit: str, var: Var, what: str) -> str:
        """NAMESPACE/NAME -> NAME, for an image or builder of this namespace (else an error)."""
        value = var.text.strip()
        ns, sep, name = value.partition("/")
        if not sep or ns != self.ns or "/" in name or not name:
            raise self.error(
                var.site,
                f"{var.name} {value} is outside the kubler namespace {self.ns}",
                hint=f"chrootforge imports one namespace: {what} must be {self.ns}/NAME",
            )
        return name

    # -- the image graph -------------------------------------------------------------------------
    def parent_of(self, name: str) -> str:
        unit = f"images/{name}"
        var = self.conf(unit).get("IMAGE_PARENT")
        if var is None or var.text.strip() in ("", "scratch"):
            return "scratch"
        parent = self.image_ref(unit, var, "IMAGE_PARENT")
        if parent not in self.images:
            raise self.error(
                var.site,
                f"IMAGE_PARENT {var.text} names no image of the namespace (no images/{parent})",
                hint="available: " + ", ".join(self.images),
            )
        return parent

    def order(self) -> list[str]:
        parents = {name: self.parent_of(name) for name in self.images}
        out: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*path[path.index(name) :], name])
                site = self.conf(f"images/{name}")["IMAGE_PARENT"].site
                raise self.error(site, f"IMAGE_PARENT cycle: {cycle}")
            state[name] = 1
            if parents[name] != "scratch":
                visit(parents[name], [*path, name])
            state[name] = 2
            out.append(name)

        for name in self.images:
            visit(name, [])
        self.parents = parents
        return out

    def builder_id(self, unit: str) -> tuple[str | None, Var | None]:
        """The builder an image names (BUILDER), as a builder of this namespace or None (other)."""
        var = self.conf(unit).get("BUILDER")
        if var is None or not var.text.strip():
            return None, None
        value = var.text.strip()
        ns, _, name = value.partition("/")
        if ns == self.ns and name in self.builders:
            return name, var
        return None, var

    def default_builder(self) -> tuple[str | None, Var | None]:
        any_unit = next(iter(self.probes))
        var = self.conf(any_unit).get("DEFAULT_BUILDER")
        if var is None:
            return None, None
        ns, _, name = var.text.strip().partition("/")
        return (name if ns == self.ns and name in self.builders else None), var

    def builder_chain(self, name: str | None, seen: tuple[str, ...] = ()) -> list[str]:
        """builder/NAME units from the one with STAGE3_BASE down to NAME."""
        if name is None or name in seen:
            return []
        unit = f"builder/{name}"
        conf = self.conf(unit)
        if conf.get("STAGE3_BASE") and conf["STAGE3_BASE"].text:
            return [unit]
        parent, _ = self.builder_id(unit)
        return [*self.builder_chain(parent, (*seen, name)), unit]

    def chain(self, name: str) -> list[str]:
        """The kubler builder chain of an image: builder units, then images, down to its parent."""
        unit = f"images/{name}"
        builder, var = self.builder_id(unit)
        if var is not None:
            return self.builder_chain(builder)
        if self.parents[name] == "scratch":
            return self.builder_chain(self.default_builder()[0])
        parent = self.parents[name]
        return [*self.chain(parent), f"images/{parent}"]

    # -- decisions along the chain ---------------------------------------------------------------
    def link_chain(self, link: str) -> list[str]:
        """What kubler ran before a chain link, in the builder it ran in."""
        kind, name = link.split("/", 1)
        return self.chain(name) if kind == "images" else self.builder_chain(name)[:-1]

    def dirty_of(self, link: str) -> frozenset[str]:
        """Settings that the configure_builder hooks run before `link`'s keep in hooks."""
        return frozenset(
            g
            for earlier in self.link_chain(link)
            if self.builder_hook_kept(earlier)
            for g in self.decisions.dirty_groups(earlier, self.dirty_of(earlier))
        )

    def settled(self, link: str) -> Decided:
        return self.decisions.decided(link, self.dirty_of(link))

    # -- one image ---------------------------------------------------------------------------------
    def map_image(self, name: str, results: dict[str, ImageResult]) -> ImageResult:
        unit = f"images/{name}"
        probe = self.probes[unit]
        conf = self.conf(unit)
        sh_a, sh_b = probe.variables("sh", "A"), probe.variables("sh", "B")
        entries: list[Entry] = []
        spec: dict = {}
        parent = self.parents[name]
        spec["parent"] = parent
        for var in sorted(conf.values(), key=lambda v: v.site or ("", 0)):
            if var.site is None or not var.site[0].startswith(unit + "/"):
                continue
            entries.append(self.conf_entry(unit, var, parent))
        packages, more = self.packages(unit, sh_a, sh_b, entries)
        if packages:
            spec["packages"] = packages
        chain = self.chain(name)
        decided = self.settled(unit)
        entries += decided.entries
        merged = settings.Settings()
        for link in chain:
            origin = link.split("/", 1)[1]
            for site, source, change in self.settled(link).inherit:
                merged.apply(change)
                entries.append(
                    Entry(
                        site,
                        source,
                        f"{key_text(change)}, inherited: {origin}'s build left it in the builder "
                        "kubler builds this image in",
                    )
                )
        for change in decided.own_portage:
            merged.apply(change)
        spec.update(self.own_settings(chain, decided.own, merged))
        if any(f.rel == "build-test.sh" for f in self.folders[unit].files):
            entries.append(
                Entry(
                    (f"{unit}/build-test.sh", 1),
                    "build-test.sh",
                    "omitted: chrootforge runs no post-build test (podman run --rm -v "
                    "DIR:/kubler-test IMAGE /kubler-test/build-test.sh runs it)",
                )
            )
        strip = self.strip(unit, sh_a, entries)
        spec["strip"] = strip
        script_steps, config = self.template(name, results, entries)
        if config:
            spec["config"] = config
        env = self.bob_env(unit)
        kept = decided.kept
        own_work = bool(kept or script_steps or more)
        chain_hooks = [link for link in chain if self.builder_hook_kept(link)]
        hooks: dict[str, list[str]] = {}
        script = None
        if own_work or chain_hooks:
            hooks["configure_builder"] = [COMPAT_HOOK, *(self.hook_ref(link) for link in chain_hooks)]
        if own_work:
            functions = {
                PHASE_OF[h]: h for h in kept if h in ("configure_rootfs_build", "finish_rootfs_build")
            }
            builder_fn = next((h for h in kept if PHASE_OF[h] == "configure_builder"), "")
            if builder_fn:
                functions["configure_builder"] = builder_fn
            script = Script(
                unit=unit,
                kind="image",
                name=name,
                image_id=f"{self.ns}/{name}",
                env=env,
                files=self.folders[unit].files,
                applied=tuple(decided.applied),
                functions=functions,
                builder_function=builder_fn,
                steps=script_steps,
                emerge_more=tuple(more),
                sync_users=bool(kept),
            )
            hooks["configure_builder"].append(SCRIPT)
            if "configure_rootfs" in functions:
                hooks["configure_rootfs"] = [SCRIPT]
            if kept or more:
                hooks["post_emerge"] = [SCRIPT]
            if script_steps:
                hooks["finish_rootfs"] = [SCRIPT]
        if hooks:
            spec["hooks"] = hooks
        for link in chain:
            if link.startswith("builder/") and link != self.namespace_chain_root():
                root = self.builder_chain_root(link)
                if root and root != self.namespace_chain_root():
                    entries.append(
                        Entry(
                            None,
                            f"builder {link.split('/', 1)[1]}",
                            f"built on the namespace's stage3 (chrootforge has one per namespace), "
                            f"not on {root}'s",
                        )
                    )
                    break
        return ImageResult(name, unit, spec, entries, hooks, script)

    def own_settings(self, chain: list[str], own: settings.Settings, merged: settings.Settings) -> dict:
        out: dict = {}
        provided = settings.Settings()
        if not any(link.startswith("images/") for link in chain):
            for link in chain:  # a builder's package.provided reaches the images starting a chain
                heads = self.settled(link).heads
                for item in heads.provided:
                    provided.apply(settings.Change("provide", items=(item,)))
                for item in heads.unprovided:
                    provided.apply(settings.Change("unprovide", items=(item,)))
        for item in own.provided:
            provided.apply(settings.Change("provide", items=(item,)))
        for item in own.unprovided:
            provided.apply(settings.Change("unprovide", items=(item,)))
        for key, value in (
            ("mask", merged.mask),
            ("unmask", merged.unmask),
            ("provided", provided.provided),
            ("unprovided", provided.unprovided),
            ("uninstall", own.uninstall),
        ):
            if value:
                out[key] = list(value)
        if own.uninstall:
            out["force_uninstall"] = True
        if own.runtime_libs:
            out["runtime_libs"] = list(own.runtime_libs)
        tables = merged.package_tables()
        if tables:
            out["package"] = tables
        return out

    def bob_env(self, unit: str) -> dict[str, str]:
        """The BOB_ variables kubler exports to the build container: from kubler's defaults, the
        kubler.conf files and build.conf, and those build.sh sets (not the host's ids)."""
        probe = self.probes[unit]
        env = {k: v.text for k, v in probe.variables("conf").items() if k.startswith("BOB_")}
        for name, var in probe.variables("sh").items():
            if name.startswith("BOB_") and var.site is not None and var.site[0].startswith(unit + "/"):
                env[name] = var.text
        return {
            k: v for k, v in env.items() if k not in ("BOB_HOST_UID", "BOB_HOST_GID", "BOB_CURRENT_TARGET")
        }

    def builder_hook_kept(self, link: str) -> bool:
        return any(PHASE_OF[h] == "configure_builder" for h in self.settled(link).kept)

    def hook_ref(self, link: str) -> str:
        kind, name = link.split("/", 1)
        if kind == "builder":
            return f"../{BUILDERS_DIR}/{name}/{SCRIPT}"
        return f"../{name}/{SCRIPT}"

    def namespace_chain_root(self) -> str | None:
        chain = self.builder_chain(self.default_builder()[0])
        if chain:
            return chain[0]
        return f"builder/{self.builders[0]}" if self.builders else None

    def builder_chain_root(self, link: str) -> str | None:
        chain = self.builder_chain(link.split("/", 1)[1])
        return chain[0] if chain else None

    def conf_entry(self, unit: str, var: Var, parent: str) -> Entry:
        name = var.name
        if name == "IMAGE_PARENT":
            return self.entry(unit, var, f'parent = "{parent}"')
        if name == "BUILDER":
            builder, _ = self.builder_id(unit)
            if builder is None:
                return self.entry(
                    unit, var, "builder outside the namespace: the image builds on the namespace's stage3"
                )
            return self.entry(
                unit,
                var,
                f"the image's builder chain starts at {builder} (its configure_builder hook runs first)",
            )
        if name.startswith("POST_BUILD_HC"):
            return self.entry(unit, var, "omitted: chrootforge runs no post-build health check")
        if name in OMITTED_CONF:
            return self.entry(unit, var, f"omitted: {OMITTED_CONF[name]}")
        if name.startswith("BOB_"):
            return self.entry(unit, var, f"exported to the image's hooks ({SCRIPT}), as kubler did")
        if name in ("STAGE3_BASE", "STAGE3_DATE", "ARCH"):
            return self.entry(unit, var, "omitted: only a builder's stage3 settings count")
        return self.entry(unit, var, "not used by the import")

    def packages(self, unit: str, sh_a, sh_b, entries) -> tuple[list[str], list[str]]:
        var_a, var_b = sh_a.get("_packages"), sh_b.get("_packages")
        packages: list[str] = []
        more: list[str] = []
        if var_a is None or var_a.site is None:
            return packages, more
        if var_b is None or var_a.text != var_b.text:
            raise self.error(
                var_a.site,
                "_packages depends on the build container's state (the probe runs gave "
                f"'{var_a.text}' and '{var_b.text if var_b else ''}')",
                hint="write the packages in _packages literally",
            )
        baselayout = sh_a.get("BOB_INSTALL_BASELAYOUT")
        if baselayout is not None and baselayout.text:
            packages.append("sys-apps/baselayout")
            entries.append(
                self.entry(unit, baselayout, "packages: sys-apps/baselayout first, as kubler emerged it")
            )
        for word in var_a.text.split():
            if checks.atom(word):
                more.append(word)
            elif word not in packages:
                packages.append(word)
        outcome = "packages"
        if more:
            outcome += f"; kept {' '.join(more)} (not category/name) for the post_emerge hook's emerge"
        entries.append(self.entry(unit, var_a, outcome))
        return packages, more

    def strip(self, unit: str, sh_a: dict[str, Var], entries: list[Entry]) -> dict:
        strip: dict = {"locales": "all"}
        for var in sorted(sh_a.values(), key=lambda v: v.site or ("", 0)):
            if var.site is None or var.site[0] != f"{unit}/build.sh":
                continue
            name = var.name
            if name == "_packages" or name == "BOB_INSTALL_BASELAYOUT":
                continue
            if name in ("_keep_headers", "_keep_static_libs"):
                key = "headers" if name == "_keep_headers" else "static_libs"
                if var.text and var.text != "false":
                    strip[key] = False
                    entries.append(self.entry(unit, var, f"[strip] {key} = false"))
                else:
                    entries.append(self.entry(unit, var, "nothing: the default strips them"))
                continue
            base = "_no_cache" if name.startswith("_no_cache") else name
            if base in OMITTED_SH:
                entries.append(self.entry(unit, var, f"omitted: {OMITTED_SH[base]}"))
            elif name.startswith("BOB_"):
                entries.append(self.entry(unit, var, f"exported to the image's hooks ({SCRIPT})"))
            else:
                entries.append(
                    self.entry(unit, var, "a variable of build.sh: the hooks that source it see it")
                )
        return strip

    # -- Dockerfile.template -------------------------------------------------------------------
    def template_values(self, unit: str) -> dict[str, str]:
        """kubler's substitutions in the template: its own five and the BOB_ variables."""
        conf = self.conf(unit)
        values = {k: v.text for k, v in conf.items() if k.startswith("BOB_")}
        values.update(
            {k: v.text for k, v in self.probes[unit].variables("sh").items() if k.startswith("BOB_")}
        )
        parent = conf.get("IMAGE_PARENT")
        values["IMAGE_PARENT"] = parent.text if parent and parent.text else "scratch"
        values["DEFAULT_BUILDER"] = conf["DEFAULT_BUILDER"].text if "DEFAULT_BUILDER" in conf else ""
        values["NAMESPACE"] = self.ns
        values["TAG"] = conf["IMAGE_TAG"].text if "IMAGE_TAG" in conf else "latest"
        values["MAINTAINER"] = conf["AUTHOR"].text if "AUTHOR" in conf else ""
        return values

    def template(self, name: str, results: dict[str, ImageResult], entries: list[Entry]):
        """The image's [config] and finish_rootfs steps, with what its parents' config gives."""
        unit = f"images/{name}"
        text = self.folders[unit].dockerfile
        if text is None:
            raise self.error(
                None, f"{unit}/Dockerfile.template: no such file", hint="kubler needs one per image"
            )
        ancestors = []
        current = self.parents[name]
        while current != "scratch":
            ancestors.append(current)
            current = self.parents[current]
        env = {"PATH": DEFAULT_PATH}
        for ancestor in reversed(ancestors):
            env.update(results[ancestor].spec.get("config", {}).get("env", {}))
        entrypoint = None
        for ancestor in ancestors:  # the nearest image that sets either decides both
            config = results[ancestor].spec.get("config", {})
            if "entrypoint" in config or "cmd" in config:
                entrypoint = config.get("entrypoint")
                break
        return map_template(
            self.source, unit, text, self.template_values(unit), self.parents[name], env, entrypoint, entries
        )

    # -- builders ------------------------------------------------------------------------------------
    def map_builder(self, name: str) -> BuilderResult:
        unit = f"builder/{name}"
        entries: list[Entry] = []
        conf = self.conf(unit)
        for var in sorted(conf.values(), key=lambda v: v.site or ("", 0)):
            if var.site is None or not var.site[0].startswith(unit + "/"):
                continue
            entries.append(self.builder_conf_entry(unit, var))
        decided = self.settled(unit)
        entries += decided.entries
        if any(f.rel == "Dockerfile.template" for f in self.folders[unit].files):
            entries.append(
                Entry(
                    (f"{unit}/Dockerfile.template", 1),
                    "Dockerfile.template",
                    "omitted: it made kubler's build container image; chrootforge's builder is the stage3",
                )
            )
        script = None
        builder_fn = next((h for h in decided.kept if PHASE_OF[h] == "configure_builder"), "")
        for hook in decided.kept:
            if PHASE_OF[hook] != "configure_builder":
                site = self.probes[unit].functions.get(hook)
                entries.append(
                    Entry(site, f"{hook}()", "omitted: a builder's rootfs hooks do not run for its images")
                )
        if builder_fn:
            script = Script(
                unit=unit,
                kind="builder",
                name=name,
                image_id=f"{self.ns}/{name}",
                env=self.bob_env(unit),
                files=self.folders[unit].files,
                applied=tuple(decided.applied),
                functions={"configure_builder": builder_fn},
                builder_function=builder_fn,
            )
        return BuilderResult(name, unit, entries, script)

    def builder_conf_entry(self, unit: str, var: Var) -> Entry:
        name = var.name
        root = self.namespace_chain_root()
        if name in ("STAGE3_BASE", "STAGE3_DATE", "ARCH") and unit == root:
            return self.entry(unit, var, "[stage3] (see chrootforge.toml)")
        if name in ("STAGE3_BASE", "STAGE3_DATE", "ARCH"):
            return self.entry(
                unit, var, "omitted: chrootforge has one stage3 per namespace (the default builder's)"
            )
        if name in ("BOB_CHOST", "BOB_CFLAGS", "BOB_CXXFLAGS") and unit == root:
            return self.entry(unit, var, f"[make_conf] {name[4:]}")
        if name.startswith("BOB_BUILDER_"):
            return self.entry(unit, var, "omitted: crossdev's host compiler settings have no key")
        if name == "BUILDER":
            return self.entry(
                unit, var, "this builder extends that one: its configure_builder hook runs first"
            )
        if name in OMITTED_CONF:
            return self.entry(unit, var, f"omitted: {OMITTED_CONF[name]}")
        if name.startswith("BOB_"):
            return self.entry(unit, var, f"exported to the builder's hook ({SCRIPT})")
        return self.entry(unit, var, "not used by the import")


def _namespace(mapper: _Mapper) -> tuple[dict, list[Entry]]:
    any_unit = next(iter(mapper.probes))
    root = mapper.namespace_chain_root()
    default, default_var = mapper.default_builder()
    return namespace_spec(
        mapper.ns,
        mapper.conf(any_unit),
        (root, mapper.conf(root)) if root else None,
        list(mapper.decisions.repos),
        default,
        default_var,
        mapper.entry,
        any_unit,
    )


def map_namespace(
    kubler_name: str, source: str, probes: dict[str, UnitProbe], folders: dict[str, Folder]
) -> NamespaceResult:
    mapper = _Mapper(kubler_name, source, probes, folders)
    order = mapper.order()
    builders = {name: mapper.map_builder(name) for name in mapper.builders}
    images: dict[str, ImageResult] = {}
    for name in order:
        images[name] = mapper.map_image(name, images)
    spec, entries = _namespace(mapper)
    return NamespaceResult(kubler_name, source, spec, entries, images, builders)
