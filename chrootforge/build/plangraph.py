"""`chrootforge build --plan --json`: the image graph as a stable document for CI pipelines.

    graph(targets, layout=None, binhost=None, stage3=None) -> dict

Version 1 (docs/pipeline.md, "The build graph for CI"); fields may be added, a change of meaning
or a removal bumps `version`:

    {"version": 1, "namespace": NAME, "targets": [IMAGE...], "platform": "linux/amd64",
     "keys": "complete" | "partial" | "unavailable",  "keys_note": WHY (unless complete),
     "levels": [[IMAGE...], ...],          # level N: N ancestors; a level needs only lower ones
     "images": [{"name", "parent" (null for scratch), "level", "tags", "refs", "platform",
                 "key" (the build key, or null), "spec_key"}, ...]}   # parents first

With several [build] platforms, `platform` and each image's `platform` and `key` are the first
platform's; `platforms` lists them all, and each image's `platforms` holds every platform's
{"platform", "key"} (each platform has its own key and remote cache entry; the keys count for
`keys` too).

`key` is the build key (the remote cache tag is cf-<its hex>) when it is known without building:
the inputs are identified offline (a local stage3 or a lock file, a tree directory or a pinned
snapshot, no -march=native) and the parent is scratch or up to date in the layout; otherwise null,
because it hangs on the parent's manifest digest. `spec_key` is known for every image: a digest of
its spec, hooks and namespace file, chrootforge's version and its parent's spec_key, so it changes
whenever anything in the chain of specs does (a CI cache key). Nothing in the document depends on
where the namespace or the layout lie.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chrootforge import __version__, lockfile
from chrootforge.build.engine import _refs_present, binhost_only, image_key, prepare, ref_name
from chrootforge.build.platformindex import platform_layout
from chrootforge.errors import CfError
from chrootforge.gentoo import inputs as inp
from chrootforge.gentoo import state as st
from chrootforge.gentoo.native_cpu import project_uses_native
from chrootforge.spec.graph import ancestors, build_order
from chrootforge.spec.model import SCRATCH

VERSION = 1


def _offline_inputs(project, stage_override: Path | None):
    """(inputs, None) when the stage and tree are identified without the network, else (None, why)."""
    ns = project.namespace
    if project_uses_native(project):
        return None, "-march=native: the keys depend on the runner's CPU"
    lock = lockfile.load(ns.root)
    if not (stage_override or ns.stage3.path or lock):
        return None, 'the stage3 is "latest", resolved when building; a lock file (chrootforge lock) pins it'
    pinned_tree = ns.tree.path or ns.tree.snapshot_path or (ns.tree.snapshot and ns.tree.snapshot != "latest")
    if not (pinned_tree or lock):
        return None, 'the tree snapshot is "latest", resolved when building; a lock file pins it'
    try:
        return inp.identify(ns, stage_override), None
    except CfError as err:
        return None, str(err).splitlines()[0]


def _spec_key(project, name: str, parent_key: str) -> str:
    ns, image = project.namespace, project.images[name]
    parts = {
        "version": __version__,
        "namespace": hashlib.sha256(ns.text.encode()).hexdigest(),
        "spec": hashlib.sha256(image.text.encode()).hexdigest(),
        "hooks": {f"{h.phase}/{h.name}": st.file_digest(h.path) for h in image.hooks},
        "parent": parent_key,
    }
    return st.cache_key(parts)


def _keys(project, order: list[str], layout: Path, stage_override: Path | None):
    """({image: build key or None}, why some are None) of one platform's view, its images' states
    in `layout`."""
    inputs, why = _offline_inputs(project, stage_override)
    keys: dict[str, str | None] = {}
    for name in order:
        parent = project.images[name].parent
        key = None
        if inputs is not None:
            if parent == SCRATCH:
                key = image_key(project, name, "", inputs)
            elif keys.get(parent):
                state = st.load_state(layout, parent)
                if state is not None and state.key == keys[parent] and _refs_present(layout, state):
                    key = image_key(project, name, state.manifest_digest, inputs)
        keys[name] = key
    return keys, why


def graph(
    targets: list[str],
    layout: str | None = None,
    *,
    dist=None,
    shell=None,
    network: str | None = None,
    stage3: str | None = None,
) -> dict:
    """The graph of `targets`, after every check a build makes (build.prepare)."""

    project, requested, _order, layout_path, _dist = prepare(targets, layout, dist, shell, network=network)
    ns = project.namespace
    order = build_order(project.images, requested)
    stage_override = Path(stage3).resolve() if stage3 else None
    platform = str(ns.platform)
    per_platform: dict[str, dict[str, str | None]] = {}  # platform -> image -> key
    why = None
    for view_platform in ns.platforms:
        view, states = project, layout_path
        if len(ns.platforms) > 1:
            states = platform_layout(layout_path, view_platform)
            if view_platform != ns.platform:
                view = prepare(
                    targets, layout, binhost_only(dist), None, network=network, platform=view_platform
                )[0]
        found, problem = _keys(view, order, states, stage_override)
        per_platform[str(view_platform)] = found
        why = why or problem
    keys = per_platform[platform]
    spec_keys: dict[str, str] = {}
    images: list[dict] = []
    levels: dict[str, int] = {}
    for name in order:
        image = project.images[name]
        parent = image.parent if image.parent != SCRATCH else None
        spec_keys[name] = _spec_key(project, name, spec_keys.get(parent, "") if parent else "")
        key = keys[name]
        levels[name] = len(ancestors(project.images, name))
        images.append(
            {
                "name": name,
                "parent": parent,
                "level": levels[name],
                "tags": list(image.tags),
                "refs": [ref_name(ns, name, tag) for tag in image.tags],
                "platform": platform,
                "key": key,
                "spec_key": spec_keys[name],
            }
        )
        if len(ns.platforms) > 1:
            images[-1]["platforms"] = [{"platform": p, "key": k[name]} for p, k in per_platform.items()]
    depth = max(levels.values(), default=-1)
    doc: dict = {
        "version": VERSION,
        "namespace": ns.name,
        "targets": sorted(requested),
        "platform": platform,
        **({"platforms": list(per_platform)} if len(ns.platforms) > 1 else {}),
        "levels": [[name for name in order if levels[name] == n] for n in range(depth + 1)],
        "images": images,
    }
    every = [k for found in per_platform.values() for k in found.values()]
    known = sum(1 for k in every if k)
    doc["keys"] = "complete" if known == len(every) else ("partial" if known else "unavailable")
    if doc["keys"] != "complete":
        doc["keys_note"] = (
            why or "a parent is not built in the layout: its children's keys hang on its digest"
        )
    return doc


def render(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"
