"""`build --remote-cache docker://HOST/REPO`: runners share built images by their build key.

- store: an image that was built (or found up to date) is pushed to `REPO:cf-<hex of its build
  key>`, with its referrers: the SBOM and its build state (gentoo/state_referrer.py).
- lookup: before an image is built, that tag is looked up; on a hit the image is pulled into the
  layout instead of being built, under its tags, with its build state restored, so its children
  build on it as on a local parent.

The build key (build.image_key) is content only: the spec texts, hooks, the parent's manifest
digest, the stage and tree ids, the chrootforge version, and what -march=native means here. So
runners with the same inputs meet on the same tag, and builds that differ in CHOST, CFLAGS or
-march never do.

What a pull checks before anything reaches the layout (pull's `accept`): the image's config says
it was built with this key (label org.chrootforge.build.engine-key), and it carries exactly one build
state, well formed, for this image and key. An entry is trusted as far as the registry's write
access goes: whoever may push to REPO can give builds their images.

Failures degrade, never to a wrong image: a lookup or pull that fails (network, auth, TLS, a
corrupt blob) or an entry that fails a check is a notice, and the image is built as without a
cache; a store that fails is a warning and leaves the build's result as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from chrootforge import log, untrusted
from chrootforge.errors import CfError, UsageError
from chrootforge.fsutil import atomic_write
from chrootforge.gentoo import state as st
from chrootforge.gentoo import state_referrer
from chrootforge.gentoo.sbomread import read_sbom
from chrootforge.oci.writer import tag as add_tag
from chrootforge.registry import parse_ref, policy, pull, remote_digest
from chrootforge.registry.signing.sign import push_signed

TAG_PREFIX = "cf-"
KEY_LABEL = "org.chrootforge.build.engine-key"
_MAX_CONFIG = 4 << 20


def cache_tag(key: str) -> str:
    """`sha256:<hex>` -> `cf-<hex>` (67 characters, a valid tag)."""
    algorithm, _, hexdigest = key.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64:
        raise ValueError(f"not a build key: {key!r}")
    return TAG_PREFIX + hexdigest


def parse_cache_ref(text: str):
    """docker://HOST[:PORT]/REPO, without tag or digest (the tags are chrootforge's)."""
    ref = parse_ref(text, default_tag=None, repository_only=True)
    if ref.tag or ref.digest:
        raise UsageError(
            f"--remote-cache {text!r} names a tag or digest",
            hint="give the repository only, e.g. docker://registry.example.com/ci/cache; "
            "entries are tagged cf-<build key>",
        )
    return ref


class Refused(Exception):
    """A cache entry that is not what this build asked for (the message says why)."""


@dataclass(frozen=True)
class CachedImage:
    digest: str
    size: int
    layers: int
    seconds: float
    source: str  # docker://HOST/REPO:cf-...


class _Check:
    """pull's `accept`: the entry's config carries this key, and one valid build state."""

    def __init__(self, image: str, key: str):
        self.image, self.key = image, key
        self.state: dict | None = None
        self.size = self.layers = 0

    def __call__(self, pulled) -> None:
        config_desc = pulled.manifest["config"]
        layers = pulled.manifest["layers"]  # (checked by pull) size and count as a build reports them
        self.size, self.layers = sum(int(d["size"]) for d in layers), len(layers)
        try:
            config = untrusted.loads_json(pulled.read_blob(config_desc["digest"], _MAX_CONFIG), "its config")
            labels = (config.get("config") or {}).get("Labels") or {}
        except (ValueError, AttributeError) as err:
            raise Refused("its config is not an image config") from err
        if labels.get(KEY_LABEL) != self.key:
            raise Refused(f"its config says build key {str(labels.get(KEY_LABEL))[:19]}, not {self.key[:19]}")
        states = [
            (desc, art)
            for desc, art in pulled.referrers
            if (desc.get("artifactType") or art.get("artifactType")) == state_referrer.ARTIFACT_TYPE
        ]
        if len(states) != 1:
            raise Refused(
                "it carries no build state (the package records its children need)"
                if not states
                else f"it carries {len(states)} build states"
            )
        layers = states[0][1].get("layers") or []
        if len(layers) != 1 or layers[0].get("size", 0) > state_referrer.MAX_SIZE:
            raise Refused("its build state artifact is not one small JSON layer")
        try:
            data = pulled.read_blob(layers[0]["digest"], state_referrer.MAX_SIZE)
            self.state = state_referrer.decode(data, self.image, self.key)
        except state_referrer.BadState as err:
            raise Refused(str(err)) from err


class RemoteCache:
    def __init__(self, ref, options, policy=None, registries_d=None, signing=None):
        """`policy` (registry.policy.Policy) decides which entries may be pulled, as for `pull`;
        `signing` signs what is stored, so a host whose policy wants signatures can use them."""
        self.ref, self.options = ref, options
        self.policy, self.registries_d, self.signing = policy, registries_d, signing

    def entry(self, key: str):
        return self.ref.with_reference(tag=cache_tag(key))

    def fetch(self, layout: Path, image: str, key: str, refs: list[str]) -> CachedImage | None:
        """Pull the entry of `key` into `layout` under `refs`, with its state; None: build it."""
        started = time.monotonic()
        where = self.entry(key)
        try:
            digest = remote_digest(where, self.options)
        except CfError as err:
            log.notice(f"{image}: the remote cache {where} cannot be read ({_line(err)}); building it")
            return None
        if digest is None:
            log.info(f"{image}: not in the remote cache ({where.tag[:19]}...)")
            return None
        try:
            policy.admit(where, self.options, self.policy, self.registries_d, digest=digest)
        except policy.PolicyRefusal as err:
            log.notice(f"{image}: remote cache entry {where} refused: {_line(err)}; building it")
            return None
        except CfError as err:
            log.notice(f"{image}: the signatures of {where} cannot be checked ({_line(err)}); building it")
            return None
        check = _Check(image, key)
        try:
            # (the digest the layout stores: a Docker-format entry would be stored in its OCI form)
            digest = pull(where.with_reference(digest=digest), layout, refs[0], self.options, accept=check)
            for extra in refs[1:]:
                add_tag(layout, refs[0], extra)
        except Refused as err:
            log.notice(f"{image}: remote cache entry {where} refused: {err}; building it")
            return None
        except CfError as err:
            log.notice(f"{image}: pulling {where} failed ({_line(err)}); building it")
            return None
        state = check.state
        assert state is not None  # pull() ran the check, which keeps the state it accepted
        seconds = time.monotonic() - started
        st.save_state(
            layout,
            st.ImageState(
                image=image,
                key=key,
                manifest_digest=digest,
                tags=list(refs),
                records=state["records"],
                own=state["own"],
                provided=state["provided"],
                builder_files=state["builder_files"],
                size=check.size,
                layers=check.layers,
                seconds=seconds,
                sources={"remote-cache": str(where)},
            ),
        )
        _save_sbom(layout, image, refs[0])
        log.info(f"{image}: pulled from the remote cache ({digest[:19]}) in {seconds:.2f}s")
        return CachedImage(digest, check.size, check.layers, seconds, str(where))

    def store(
        self, layout: Path, image: str, key: str, refs: list[str], state: st.ImageState, up_to_date: bool
    ) -> str:
        """Push the image (its build state attached) to the entry of `key`; what happened, in a
        few words."""

        where = self.entry(key)
        try:
            if up_to_date and remote_digest(where, self.options) == state.manifest_digest:
                return "in the remote cache"
            result = push_signed(layout, refs[0], where, self.options, self.signing)
        except CfError as err:
            log.warn(f"{image}: could not store it in the remote cache {where}: {_line(err)}")
            return f"not stored: {_line(err)}"
        log.info(
            f"{image}: stored in the remote cache as {where.tag[:19]}... "
            f"({result.uploaded_bytes / 1e6:.1f} MB uploaded)"
        )
        return "stored"


def _line(err: CfError) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _save_sbom(layout: Path, image: str, ref: str) -> None:
    """The SBOM beside the layout, as a build writes it (<layout>.build/sbom/IMAGE.spdx.json)."""
    try:
        text = read_sbom(f"{layout}:{ref}")
    except CfError:
        return  # an entry without an SBOM still builds children; `chrootforge sbom` says it is missing
    path = st.build_dir(layout) / "sbom" / f"{image}.spdx.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.rstrip("\n"))  # as build wrote it
