"""What `build` does with registries: --push, --remote-cache, and --binhost's override.

build.py calls this module at four places, and only there:
    dist = Distribution.prepare(options, project, layout)   # checks everything before any work
    dist.fetch(name, key, refs)      # before an image is built: pull it from the remote cache?
    dist.after(name, key, refs, status)                     # after it was built or found up to date
    dist.publish(report)             # at the end: push every tag (--push)
The work itself is in buildcache.py (remote cache) and buildpush.py (--push); the binhost is a
namespace setting (`[build] binhost`, overridden by --binhost) read by gentoo/binhost.py.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from chrootforge import log
from chrootforge.errors import UsageError

TYPE_CHECKING = False  # the registry modules load only when a build uses a registry
if TYPE_CHECKING:
    from chrootforge.registry import RegistryOptions


@dataclasses.dataclass(frozen=True)
class DistOptions:
    push: bool = False
    remote_cache: str | None = None  # docker://HOST/REPO
    binhost: str | None = None  # overrides [build] binhost
    registry: RegistryOptions | None = None  # auth and TLS, for both


class Distribution:
    def __init__(self, project, layout: Path, options: DistOptions, cache, registry: str | None):
        self.project, self.layout, self.options = project, layout, options
        self.cache, self.registry = cache, registry

    @classmethod
    def prepare(cls, options: DistOptions | None, project, layout: Path) -> Distribution | None:
        """Apply --binhost to the namespace and check every reference up front (exit 2 on a bad
        one, before anything is built); None when the build touches no registry."""
        if options is None:
            return None
        ns = project.namespace
        if options.binhost:
            from chrootforge.spec.checks import binhost

            problem = binhost(options.binhost)
            if problem:
                raise UsageError(
                    f"--binhost: {problem}", hint="e.g. --binhost https://binhost.example.com/chrootforge"
                )
            project.namespace = dataclasses.replace(ns, binhost=options.binhost)
        if not options.push and not options.remote_cache:
            return None
        from chrootforge.registry import RegistryOptions

        # in a CI log, one line per image (from build) instead of one per blob (from push and
        # pull); on a terminal, their progress too
        quiet = log.is_quiet() or not sys.stderr.isatty()
        registry_options = dataclasses.replace(options.registry or RegistryOptions(), quiet=quiet)
        cache = registry = None
        if options.remote_cache:
            from chrootforge.buildcache import RemoteCache, parse_cache_ref

            cache = RemoteCache(parse_cache_ref(options.remote_cache), registry_options)
        if options.push:
            from chrootforge.buildpush import check_registry, destination

            registry = check_registry(ns.registry, str(ns.spec_path))
            for name, image in project.images.items():
                for tag in image.tags:
                    destination(registry, name, tag)
        return cls(project, layout, dataclasses.replace(options, registry=registry_options), cache, registry)

    def fetch(self, name: str, key: str, refs: list[str]):
        """A buildcache.CachedImage when the remote cache had the image (now in the layout)."""
        if self.cache is None:
            return None
        return self.cache.fetch(self.layout, name, key, refs)

    def after(self, name: str, key: str, refs: list[str], status: str) -> str:
        """Attach the build state to a built (or up-to-date) image, so that it travels with the
        image, and store it in the remote cache; a note for the report."""
        from chrootforge.gentoo import state as st
        from chrootforge.gentoo import state_referrer

        if status not in ("built", "up-to-date"):
            return ""
        state = st.load_state(self.layout, name)
        if state is None or state.key != key:
            return ""
        state_referrer.attach(self.layout, refs[0], state)
        if self.cache is None:
            return ""
        return self.cache.store(self.layout, name, key, refs, state, up_to_date=status == "up-to-date")

    def publish(self, report) -> None:
        if self.registry:
            from chrootforge.buildpush import push_all

            push_all(report, self.project, self.registry, self.options.registry)
