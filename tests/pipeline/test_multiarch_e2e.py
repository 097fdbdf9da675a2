"""examples/world for linux/amd64 and linux/arm64 in one build, as root and as the unprivileged user.

The namespace is examples/world as it is, plus `platforms = ["linux/amd64", "linux/arm64"]` in
[build], with the variables of `just world-env` and `just world-env arm64` set: nothing else. The
arm64 images build under QEMU's static emulator, registered in the sandbox's own binfmt_misc; the
host's stays untouched (tests/helpers/binfmt.py checks it after every test). Then the real
consumers check the result: skopeo (the index, --override-arch), umoci + `chrootforge run
--platform linux/arm64` (the arm64 hello), podman (the amd64 hello), and the test registry (push,
skopeo's view of it, pull back).

Slow: the arm64 half runs portage and gcc under emulation (minutes on 2 cores). So that the suite
stays well inside CI's time, the unprivileged user (the case this exists for) builds the hello
chain, and root builds the static busybox alone: root's pass checks the same code paths as root,
and both identities' busybox must be the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from chrootforge.oci import mediatypes as mt
from tests.helpers.identity import get_identity
from tests.helpers.pipeline import Podman
from tests.helpers.registry import PASSWORD, USER
from tests.helpers.rootfs import remove_as

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PREFIX = "localhost/chrootforge"
# What each identity builds (greeter, a sibling of hello, adds nothing here but minutes of emulation)
IMAGES = {"user": ["busybox", "glibc", "s6", "hello"], "root": ["busybox"]}
PLATFORMS = ["linux/amd64", "linux/arm64"]
# Per identity: the index digest and each platform's image digest of every image (printed for the
# report, and compared between root and the user: the same inputs give the same bytes).
DIGESTS: dict[str, dict] = {}


@dataclass
class Built:
    identity: object
    tmp: Path
    layout: Path
    env: dict
    report: dict
    seconds: float
    images: list[str]

    @property
    def top(self) -> str:
        """The image the checks look at: the last built (hello, or root's busybox)."""
        return self.images[-1]

    @property
    def ref(self) -> str:
        return f"{PREFIX}/{self.top}:latest"

    def cf(self, *args, **kwargs):
        kwargs.setdefault("timeout", 900)
        return self.identity.cf(*args, env=self.env, **kwargs)

    def tagged(self, layout: Path | None = None) -> dict:
        index = json.loads(((layout or self.layout) / "index.json").read_text())
        return {
            m["annotations"][mt.REF_NAME]: m
            for m in index["manifests"]
            if mt.REF_NAME in (m.get("annotations") or {})
        }

    def blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()

    def index(self, image: str | None = None) -> dict:
        return json.loads(self.blob(self.tagged()[f"{PREFIX}/{image or self.top}:latest"]["digest"]))

    def child(self, platform: str, image: str | None = None) -> str:
        return next(
            e["digest"]
            for e in self.index(image)["manifests"]
            if "/".join((e["platform"]["os"], e["platform"]["architecture"])) == platform
        )


def world_namespace(dest: Path, repo: Path) -> Path:
    """examples/world, its tree at the session's copy of examples/repo, and the one line."""
    ns = dest / "world"
    shutil.copytree(REPO / "examples" / "world", ns)
    text = (ns / "chrootforge.toml").read_text().replace('path = "../repo"', f'path = "{repo}"')
    assert "\n[build]\n" in text
    text = text.replace("\n[build]\n", '\n[build]\nplatforms = ["linux/amd64", "linux/arm64"]\n')
    (ns / "chrootforge.toml").write_text(text)
    return ns


@pytest.fixture(scope="module", params=["root", "user"])
def built(request, world_inputs, world_inputs_arm64, world_repo) -> Built:
    identity = get_identity(request.param)
    tmp = identity.mkdtemp("multiarch.")
    ns = world_namespace(tmp, world_repo)
    if not identity.is_root and os.getuid() == 0:
        for path in [ns, *ns.rglob("*")]:
            os.chown(path, identity.uid, identity.gid)
    env = {
        **world_inputs.env(),
        **world_inputs_arm64.env(),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "SOURCE_DATE_EPOCH": "",
    }
    layout = tmp / "layout"
    images = IMAGES[identity.name]
    target = ns / images[-1]
    proc = identity.cf("build", "--json", "--layout", str(layout), str(target), env=env, timeout=7200)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    report = json.loads(proc.stdout)
    b = Built(identity, tmp, layout, env, report, report["seconds"], images)
    DIGESTS[identity.name] = {
        image: {
            "index": b.tagged()[f"{PREFIX}/{image}:latest"]["digest"],
            **{p: b.child(p, image) for p in PLATFORMS},
        }
        for image in images
    }
    per_platform = {p: sum(r["platforms"][p]["seconds"] for r in report["images"]) for p in PLATFORMS}
    print(
        f"\n[multiarch] {identity.name}: built {images} for {PLATFORMS} in {report['seconds']:.1f}s "
        f"({', '.join(f'{p} {s:.1f}s' for p, s in per_platform.items())})"
    )
    print(f"[multiarch] {identity.name}: {b.top}: {json.dumps(DIGESTS[identity.name][b.top])}")
    yield b
    remove_as(identity, tmp)


def test_every_image_for_both_platforms(built):
    assert [r["image"] for r in built.report["images"]] == built.images
    for result in built.report["images"]:
        assert result["status"] == "built", result
        assert list(result["platforms"]) == PLATFORMS
        assert all(p["status"] == "built" for p in result["platforms"].values()), result
        assert result["digest"] == built.tagged()[f"{PREFIX}/{result['image']}:latest"]["digest"]
        for platform, child in result["platforms"].items():
            assert child["digest"] == built.child(platform, result["image"])
    proc = built.cf("verify", str(built.layout))
    assert proc.returncode == 0, proc.stderr


def test_the_index_passes_skopeo_inspect_raw(built):
    raw = built.identity.run(
        ["skopeo", "inspect", "--raw", f"oci:{built.layout}:{built.ref}"], check=True
    ).stdout
    index = json.loads(raw)
    assert raw.encode() == built.blob(built.tagged()[built.ref]["digest"])
    assert index["mediaType"] == mt.INDEX
    assert [e["platform"] for e in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    print(f"\n[multiarch] {built.identity.name}: skopeo inspect --raw oci:...:{built.ref}\n{raw}")


def test_each_image_is_its_platforms(built):
    for platform in PLATFORMS:
        manifest = json.loads(built.blob(built.child(platform)))
        config = json.loads(built.blob(manifest["config"]["digest"]))
        assert f"{config['os']}/{config['architecture']}" == platform
        assert config["config"]["Labels"]["org.opencontainers.image.title"] == built.top
    amd64, arm64 = (json.loads(built.blob(built.child(p)))["layers"] for p in PLATFORMS)
    assert len(amd64) == len(arm64) == len(built.images)  # a layer per image, each platform its own
    assert not {x["digest"] for x in amd64} & {x["digest"] for x in arm64}


def test_arm64_image_runs_emulated_from_an_unpacked_copy(built):
    """skopeo copy --override-arch arm64 takes the arm64 image; umoci unpacks it; `chrootforge run
    --platform linux/arm64` runs its hello (and busybox's uname)."""
    ident = built.identity
    copy = built.tmp / "arm64-copy"
    ident.run(
        [
            "skopeo",
            "--override-arch",
            "arm64",
            "copy",
            f"oci:{built.layout}:{built.ref}",
            f"oci:{copy}:hello",
        ],
        check=True,
    )
    assert built.tagged(copy)["hello"]["digest"] == built.child("linux/arm64")
    bundle = built.tmp / "arm64-bundle"
    rootless = [] if ident.is_root else ["--rootless"]
    ident.run(["umoci", "unpack", *rootless, "--image", f"{copy}:hello", str(bundle)], check=True)
    if ident.is_root:
        bundle.chmod(0o711)  # root's sandbox runs as an unprivileged range that must pass through
    rootfs = bundle / "rootfs"
    program = "usr/bin/hello" if built.top == "hello" else "bin/busybox"
    assert (
        "ARM aarch64"
        in subprocess.run(["file", "-L", str(rootfs / program)], capture_output=True, text=True).stdout
    )
    for target in ("proc", "dev", "sys", "run", "tmp"):  # as root, host root owns the tree: make them
        (rootfs / target).mkdir(exist_ok=True)
    if built.top == "hello":
        proc = built.cf("run", "--platform", "linux/arm64", str(rootfs), "--", "/usr/bin/hello")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "Hello from chrootforge! build=dynamic uid=0 gid=0\n"
    uname = built.cf("run", "--platform", "linux/arm64", str(rootfs), "--", "/bin/uname", "-m")
    assert uname.stdout == "aarch64\n", uname.stderr


def test_amd64_image_runs_under_podman(built):
    store = built.tmp / "podman"
    store.mkdir(exist_ok=True)
    if os.getuid() == 0 and not built.identity.is_root:
        os.chown(store, built.identity.uid, built.identity.gid)  # the user's podman writes there
    podman = Podman(built.identity, store)
    try:
        load = built.cf(
            "load",
            f"{built.layout}:{built.ref}",
            "--platform",
            "linux/amd64",
            *[f"--podman-arg={a}" for a in podman.global_args],
        )
        assert load.returncode == 0, load.stderr
        if built.top == "hello":
            out = podman("run", "--rm", *podman.run_args(), built.ref, "hello").stdout
            assert out.startswith("Hello from chrootforge! build=dynamic uid=0 gid=0"), out
        else:
            out = podman("run", "--rm", *podman.run_args(), built.ref, "uname", "-m").stdout
            assert out == "x86_64\n", out
    finally:
        podman.cleanup()


def test_inspect_lists_the_platforms(built):
    proc = built.cf("inspect", f"{built.layout}:{built.ref}")
    assert proc.returncode == 0, proc.stderr
    assert f"platforms: {', '.join(PLATFORMS)}" in proc.stdout
    assert "linux/arm64:" in proc.stdout and "linux/amd64:" in proc.stdout


def test_push_the_index_and_pull_it_back(built, htpasswd_registry, cert_dirs):
    host = htpasswd_registry.host
    dest = f"docker://{host}/{built.identity.name}/world-{built.top}:latest"
    auth = ["--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}"]
    proc = built.cf("push", f"{built.layout}:{built.ref}", dest, "--json", *auth)
    assert proc.returncode == 0, proc.stderr
    index_digest = built.tagged()[built.ref]["digest"]
    assert json.loads(proc.stdout)["digest"] == index_digest
    skopeo = ["skopeo", "--override-arch", "arm64"]
    creds = ["--cert-dir", str(cert_dirs["ca"]), "--creds", f"{USER}:{PASSWORD}"]
    seen = json.loads(
        subprocess.run([*skopeo, "inspect", *creds, dest], capture_output=True, text=True, check=True).stdout
    )
    arm64 = json.loads(built.blob(built.child("linux/arm64")))
    assert seen["Architecture"] == "arm64" and seen["Layers"] == [x["digest"] for x in arm64["layers"]]
    copy = built.tmp / "from-registry"
    subprocess.run(
        [
            *skopeo,
            "copy",
            "--src-cert-dir",
            str(cert_dirs["ca"]),
            "--src-creds",
            f"{USER}:{PASSWORD}",
            dest,
            f"oci:{copy}:x",
        ],
        capture_output=True,
        check=True,
    )
    assert built.tagged(copy)["x"]["digest"] == built.child("linux/arm64")  # the arm64 digest
    back = built.tmp / "pulled"
    proc = built.cf("pull", dest, f"{back}:hello:latest", "--json", *auth)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["digest"] == index_digest
    assert built.tagged(back)["hello:latest"]["digest"] == index_digest  # the same index
    assert built.cf("verify", str(back)).returncode == 0


def test_a_rebuild_is_up_to_date_with_the_same_index(built):
    before = built.tagged()[built.ref]["digest"]
    target = built.tmp / "world" / built.top
    proc = built.cf("build", "--json", "--layout", str(built.layout), str(target), timeout=1800)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {r["status"] for r in report["images"]} == {"up-to-date"}
    assert built.tagged()[built.ref]["digest"] == before


def test_root_and_user_build_the_same_bytes(built):
    if len(DIGESTS) < 2:
        pytest.skip("compared once both identities have built")
    assert DIGESTS["root"]["busybox"] == DIGESTS["user"]["busybox"]
