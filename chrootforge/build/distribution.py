"""What `build` does with registries: --push, --remote-cache, and --binhost's override.

build/engine.py calls this module at four places, and only there:
    dist = Distribution.prepare(options, project, layout)   # checks everything before any work
    dist.fetch(name, key, refs)      # before an image is built: pull it from the remote cache?
    dist.after(name, key, refs, status)                     # after it was built or found up to date
    dist.publish(report)             # at the end: push every tag (--push)
The work itself is in build/remotecache.py (remote cache) and build/publish.py (--push); the binhost is a
namespace setting (`[build] binhost`, overridden by --binhost) read by gentoo/binhost.py.
Signing ([output] sign_by / sign_by_sigstore_private_key, or the --sign-* flags) applies to what
the build pushes (both flags) and to the provenance of what it builds; its keys are unlocked in
prepare(), before anything is built. Remote cache pulls obey the containers policy (--policy).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.gentoo import state as st
from chrootforge.gentoo import state_referrer
from chrootforge.registry import RegistryOptions
from chrootforge.registry.signing.sign import Signing
from chrootforge.registry.signing.signoptions import SignOptions

TYPE_CHECKING = False  # the registry modules load only when a build uses a registry
if TYPE_CHECKING:
    from chrootforge.registry import RegistryOptions
    from chrootforge.registry.signing.sign import Signing
    from chrootforge.registry.signing.signoptions import SignOptions


@dataclasses.dataclass(frozen=True)
class DistOptions:
    push: bool = False
    remote_cache: str | None = None  # docker://HOST/REPO
    binhost: str | None = None  # overrides [build] binhost
    registry: RegistryOptions | None = None  # auth and TLS, for both
    signing: SignOptions | None = None  # --sign-*, over [output]
    policy: str | None = None  # --policy: for remote cache pulls (default: the system's)


class Distribution:
    def __init__(
        self,
        project,
        layout: Path,
        options: DistOptions,
        cache,
        registry: str | None,
        signing: Signing | None,
    ):
        self.project, self.layout, self.options = project, layout, options
        self.cache, self.registry, self.signing = cache, registry, signing

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
            if options.signing is not None and options.signing.enabled:
                raise UsageError(
                    "--sign-by and --sign-by-sigstore-private-key sign what the build pushes",
                    hint="add --push (with [output] registry) or --remote-cache",
                )
            return None

        signing = Signing.prepare(_sign_options(ns, options.signing))  # before anything is built

        # in a CI log, one line per image (from build) instead of one per blob (from push and
        # pull); on a terminal, their progress too
        quiet = log.is_quiet() or not sys.stderr.isatty()
        registry_options = dataclasses.replace(options.registry or RegistryOptions(), quiet=quiet)
        cache = registry = None
        if options.remote_cache:
            from chrootforge.build.remotecache import RemoteCache, parse_cache_ref
            from chrootforge.registry import policy

            registries_d = options.signing.registries_d if options.signing else None
            cache = RemoteCache(
                parse_cache_ref(options.remote_cache),
                registry_options,
                policy=policy.load(options.policy),
                registries_d=registries_d,
                signing=signing,
            )
        if options.push:
            from chrootforge.build.publish import check_registry, destination

            registry = check_registry(ns.registry, str(ns.spec_path))
            for name, image in project.images.items():
                for tag in image.tags:
                    destination(registry, name, tag)
        return cls(
            project, layout, dataclasses.replace(options, registry=registry_options), cache, registry, signing
        )

    def fetch(self, name: str, key: str, refs: list[str]):
        """A build.remotecache.CachedImage when the remote cache had the image (now in the layout)."""
        if self.cache is None:
            return None
        return self.cache.fetch(self.layout, name, key, refs)

    def after(self, name: str, key: str, refs: list[str], status: str) -> str:
        """Attach the build state to a built (or up-to-date) image, so that it travels with the
        image, and store it in the remote cache; a note for the report."""
        if status not in ("built", "up-to-date"):
            return ""
        state = st.load_state(self.layout, name)
        if state is None or state.key != key:
            return ""
        state_referrer.attach(self.layout, refs[0], state)
        if self.signing is not None and self.signing.dsse_signers:
            from chrootforge.gentoo.provenance import sign_in_layout

            sign_in_layout(self.layout, refs[0], self.signing.dsse_signers)
        if self.cache is None:
            return ""
        return self.cache.store(self.layout, name, key, refs, state, up_to_date=status == "up-to-date")

    def publish(self, report) -> None:
        if self.registry:
            from chrootforge.build.publish import push_all

            push_all(report, self.project, self.registry, self.options.registry, self.signing)


def _sign_options(ns, given: SignOptions | None) -> SignOptions:
    """The --sign-* flags, each over its [output] key."""
    given = given or SignOptions()
    return SignOptions(
        sign_by=given.sign_by or ns.sign_by,
        sigstore_key=given.sigstore_key
        or (str(ns.sign_by_sigstore_private_key) if ns.sign_by_sigstore_private_key else None),
        passphrase_file=given.passphrase_file
        or (str(ns.sign_passphrase_file) if ns.sign_passphrase_file else None),
        registries_d=given.registries_d,
    )
