"""One test world for the end-to-end modules: a namespace copied for a test identity, built by it with
the test world's inputs, and a view of the layout the build wrote.

- `namespace(dest, repo, example="world", drop=..., files=..., edit=...)`: examples/EXAMPLE copied
  to dest/EXAMPLE, its tree at `repo` (the session's copy of examples/repo), without the images in
  `drop`, plus `files` (path in the namespace -> text), its chrootforge.toml passed through `edit`.
- `own(identity, path)`: the tree handed to `identity` (when the suite runs as root for another one).
- `LayoutView(layout, prefix)`: what a build left in an OCI layout and in LAYOUT.build: tags,
  manifests, configs, blobs, layer members, state, SBOMs, provenance and logs. Images are tagged
  PREFIX/IMAGE:latest (the namespace's [output] prefix).
- `WorldBuild.prepare(identity, purpose, make_namespace, world_inputs)`: a temp dir the identity owns
  (`tmp`), the namespace `make_namespace(tmp)` made there (handed to the identity), and the build's
  environment (the world's stage, keyring and distfiles, XDG_CACHE_HOME=tmp/cache and
  SOURCE_DATE_EPOCH). Then `build(*flags)` runs `chrootforge build --json` into tmp/layout and
  checks it succeeded (`proc`, `report`, `started`); `to_podman(images)` loads images into a private
  podman as localhost/test/IMAGE:latest, which `run()` starts; `cf()` runs chrootforge the same way
  as the build; `close()` ends podman, `remove()` also deletes tmp.

A module-scoped fixture is then a few lines:

    w = WorldBuild.prepare(identity, "pipeline.", lambda tmp: namespace(tmp, world_repo), world_inputs)
    w.build("--jobs", "2")
    w.to_podman(IMAGES)
    yield w
    w.remove()
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.helpers.pipeline import Podman, WorldInputs
from tests.helpers.rootfs import remove_as

REPO = Path(__file__).resolve().parents[2]
PREFIX = "localhost/chrootforge"  # examples/world: [output] prefix


def namespace(
    dest: Path,
    repo: Path,
    example: str = "world",
    *,
    drop: Iterable[str] = (),
    files: Mapping[str, str] | None = None,
    edit: Callable[[str], str] | None = None,
) -> Path:
    """examples/EXAMPLE at dest/EXAMPLE with its tree at `repo`, without the images in `drop`, plus
    `files`; `edit` rewrites its chrootforge.toml (after the tree's path is set)."""
    ns = dest / example
    dropped = set(drop)
    source = REPO / "examples" / example
    shutil.copytree(
        source, ns, ignore=lambda folder, names: dropped & set(names) if folder == str(source) else ()
    )
    text = (ns / "chrootforge.toml").read_text()
    assert 'path = "../repo"' in text, f"examples/{example} no longer names its tree ../repo"
    text = text.replace('path = "../repo"', f'path = "{repo}"')
    (ns / "chrootforge.toml").write_text(edit(text) if edit else text)
    for rel, content in (files or {}).items():
        path = ns / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return ns


def own(identity, path: Path) -> None:
    """`path` and everything below it owned by `identity` (a no-op unless root runs the suite for
    another identity). Symlinks themselves, never what they point at."""
    if identity.is_root or os.getuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, identity.uid, identity.gid, follow_symlinks=False)


class LayoutView:
    """An OCI layout as a build left it, and the build's side folder LAYOUT.build."""

    def __init__(self, layout: Path, prefix: str = PREFIX):
        self.layout = layout
        self.prefix = prefix

    # -- the layout ---------------------------------------------------------------------------------
    def ref(self, image: str) -> str:
        return f"{self.prefix}/{image}:latest"

    def index(self, layout: Path | None = None) -> dict[str, str]:
        """Tag (ref name) -> manifest digest of this layout (or of another one)."""
        index = json.loads(((layout or self.layout) / "index.json").read_text())
        return {
            m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
            for m in index["manifests"]
            if "org.opencontainers.image.ref.name" in m.get("annotations", {})
        }

    def digests(self, images: Iterable[str], layout: Path | None = None) -> dict[str, str]:
        """Image -> manifest digest of PREFIX/IMAGE:latest, for each of `images`."""
        refs = self.index(layout)
        return {image: refs[self.ref(image)] for image in images}

    def digest(self, image: str) -> str:
        return self.index()[self.ref(image)]

    def blob_path(self, digest: str) -> Path:
        return self.layout / "blobs" / "sha256" / digest.split(":")[1]

    def blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def manifest(self, image: str) -> dict:
        return json.loads(self.blob(self.digest(image)))

    def config(self, image: str) -> dict:
        return json.loads(self.blob(self.manifest(image)["config"]["digest"]))

    def layer_members(self, digest: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
        """name -> (header, content; b"" for what is not a regular file) of a gzip layer."""
        out = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.blob(digest)))) as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                out[member.name.lstrip("./").rstrip("/")] = (member, data)
        return out

    def top_layer(self, image: str) -> dict[str, bytes | None]:
        """name -> content (None for what is not a regular file) of the image's own layer."""
        members = self.layer_members(self.manifest(image)["layers"][-1]["digest"])
        return {name: data if member.isfile() else None for name, (member, data) in members.items()}

    def top_layer_names(self, image: str) -> set[str]:
        return set(self.layer_members(self.manifest(image)["layers"][-1]["digest"]))

    def all_names(self, image: str) -> set[str]:
        names: set[str] = set()
        for layer in self.manifest(image)["layers"]:
            names |= set(self.layer_members(layer["digest"]))
        return names

    # -- LAYOUT.build ---------------------------------------------------------------------------------
    @property
    def build_dir(self) -> Path:
        return Path(f"{self.layout}.build")

    def state(self, image: str) -> dict:
        return json.loads((self.build_dir / "state" / f"{image}.json").read_text())

    def sbom(self, image: str) -> dict:
        return json.loads((self.build_dir / "sbom" / f"{image}.spdx.json").read_text())

    def provenance(self, image: str) -> bytes:
        return (self.build_dir / "provenance" / f"{image}.intoto.json").read_bytes()

    def logdir(self, image: str) -> Path:
        return self.build_dir / "logs" / image

    def log(self, image: str, step: str) -> str:
        return (self.logdir(image) / f"{step}.log").read_text()

    def logs(self, image: str) -> str:
        """Every log of the image's build (its steps' and its packages'), in name order."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir(image).rglob("*.log")))


class WorldBuild(LayoutView):
    """A namespace built by one test identity in a temp dir of its own (see the module's doc)."""

    def __init__(
        self,
        identity,
        tmp: Path,
        ns: Path,
        env: dict[str, str],
        *,
        prefix: str = PREFIX,
        umask: str | None = None,
        cf_timeout: int = 900,
    ):
        super().__init__(tmp / "layout", prefix)
        self.identity, self.tmp, self.ns, self.env = identity, tmp, ns, env
        self.umask = umask  # chrootforge runs under this umask, when set
        self.cf_timeout = cf_timeout  # cf()'s default
        self.proc: subprocess.CompletedProcess | None = None  # the build's
        self.report: dict[str, Any] = {}  # and its --json report
        self.started = 0.0  # time.monotonic() when the build began
        self.podman: Podman | None = None

    @classmethod
    def prepare(
        cls,
        identity,
        purpose: str,
        make_namespace: Callable[[Path], Path],
        world_inputs: WorldInputs,
        *,
        epoch: str = "",
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> WorldBuild:
        """A temp dir `identity` owns (named after `purpose`), the namespace made there and handed
        to the identity, and the environment: the world's inputs, a cache in the temp dir,
        SOURCE_DATE_EPOCH=epoch (empty: unset, the epoch comes from the stage), then `env`."""
        tmp = identity.mkdtemp(purpose)
        ns = make_namespace(tmp)
        own(identity, ns)
        build_env = {
            **world_inputs.env(),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "SOURCE_DATE_EPOCH": epoch,
            **(env or {}),
        }
        return cls(identity, tmp, ns, build_env, **kwargs)

    def cf(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        """`chrootforge ARGS...` as the identity, in the build's environment (and umask)."""
        kwargs.setdefault("timeout", self.cf_timeout)
        argv = self.identity.cf_argv(*args)
        if self.umask is not None:
            argv = ["sh", "-c", f'umask {self.umask}; exec "$@"', "sh", *argv]
        return self.identity.run(argv, env=self.env, **kwargs)

    def build(self, *flags: str, timeout: int = 1800) -> dict[str, Any]:
        """`chrootforge build --json --layout tmp/layout FLAGS... NS`, which must succeed."""
        self.started = time.monotonic()
        proc = self.cf("build", "--json", "--layout", str(self.layout), *flags, str(self.ns), timeout=timeout)
        assert proc.returncode == 0, f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        self.proc, self.report = proc, json.loads(proc.stdout)
        return self.report

    def result(self, image: str) -> dict[str, Any]:
        """The report's entry for `image`."""
        return next(r for r in self.report["images"] if r["image"] == image)

    def to_podman(self, images: Iterable[str]) -> Podman:
        """A private podman of the identity (tmp/podman), with each image as localhost/test/IMAGE:latest."""
        self.podman = podman = Podman(self.identity, self.tmp / "podman")
        for image in images:
            pulled = podman("pull", "-q", f"oci:{self.layout}:{self.ref(image)}").stdout
            podman("tag", pulled.strip().splitlines()[-1], f"localhost/test/{image}:latest")
        return podman

    def run(
        self,
        image: str,
        *argv: str,
        check: bool = True,
        user: str | None = None,
        entrypoint: str | None = None,
    ) -> subprocess.CompletedProcess:
        """`podman run` of localhost/test/IMAGE:latest (loaded by to_podman) with ARGV."""
        assert self.podman is not None, "to_podman() first"
        extra = ["--user", user] if user else []
        extra += ["--entrypoint", entrypoint] if entrypoint else []
        return self.podman(
            "run",
            "--rm",
            *self.podman.run_args(),
            *extra,
            f"localhost/test/{image}:latest",
            *argv,
            check=check,
        )

    def close(self) -> None:
        """podman's storage removed; the build stays."""
        if self.podman is not None:
            self.podman.cleanup()
            self.podman = None

    def remove(self) -> None:
        """podman's storage and the temp dir removed (with the identity's id mapping)."""
        self.close()
        remove_as(self.identity, self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
