"""Real consumers take our images: podman (root and rootless), skopeo, umoci, oci-image-tool,
docker (private dockerd) and containerd (private daemon, zstd)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers.identity import SHARED_TMP
from tests.helpers.oci import EPOCH, Podman, make_busybox_rootfs, manifest_of, snapshot, umoci_comparable

SBOM_TYPE = "application/spdx+json"


def need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """One layout for the module: bb:1 (gzip, with Cmd), bb:zstd, bb:child (deletes /etc/motd), and an
    SBOM referrer on bb:1. World-readable so the rootless user can load it."""
    from chrootforge import oci

    if os.getuid() == 0:
        SHARED_TMP.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="oci-consumers.", dir=SHARED_TMP))
    else:
        base = tmp_path_factory.mktemp("consumers")
    os.chmod(base, 0o755)
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(EPOCH)
    try:
        rootfs = make_busybox_rootfs(base / "rootfs")
        layout = base / "layout"
        config = {
            "Cmd": ["/bin/sh", "-c", "echo default cmd ran; cat /etc/motd"],
            "Env": ["GREETING=hi"],
            "WorkingDir": "/tmp",
        }
        oci.commit(rootfs, layout, "bb:1", config=config, quiet=True)
        oci.commit(rootfs, layout, "bb:zstd", compression="zstd", config=config, quiet=True)
        child = base / "child"
        subprocess.run(["cp", "-a", str(rootfs), str(child)], check=True)
        (child / "etc" / "motd").unlink()
        (child / "etc" / "added").write_text("added in child\n")
        oci.commit(child, layout, "bb:child", parent="bb:1", quiet=True)
        oci.attach_referrer(
            layout,
            "bb:1",
            b'{"spdxVersion": "SPDX-2.3"}',
            SBOM_TYPE,
            annotations={"org.opencontainers.image.title": "sbom"},
        )
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    for dirpath, _dirs, files in os.walk(layout):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    yield {"layout": layout, "rootfs": rootfs, "child": child, "base": base}
    shutil.rmtree(base, ignore_errors=True)


def test_layout_with_referrer_verifies_and_validates(images):
    from chrootforge import oci

    layout = images["layout"]
    assert oci.verify(layout) == []
    index = json.loads((layout / "index.json").read_text())
    untagged = [
        d for d in index["manifests"] if "org.opencontainers.image.ref.name" not in d.get("annotations", {})
    ]
    assert len(untagged) == 1 and untagged[0]["artifactType"] == SBOM_TYPE
    art = json.loads((layout / "blobs" / "sha256" / untagged[0]["digest"][7:]).read_text())
    assert art["subject"]["digest"] == oci.resolve(layout, "bb:1").descriptor["digest"]
    need("oci-image-tool")
    for tag in ("bb:1", "bb:child"):
        # oci-image-tool's name= filter also matches untagged descriptors (the referrer): add digest=
        digest = oci.resolve(layout, tag).descriptor["digest"]
        out = subprocess.run(
            [
                "oci-image-tool",
                "validate",
                "--type",
                "image",
                "--ref",
                f"name={tag}",
                "--ref",
                f"digest={digest}",
                str(layout),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0 and "Validation succeeded" in out.stdout, out.stdout + out.stderr


def test_podman_runs_the_image(identity, images):
    need("podman")
    podman = Podman(identity, identity.mkdtemp("podman."))
    try:
        layout = images["layout"]
        for tag in ("bb:1", "bb:child"):
            out = identity.cf("load", f"{layout}:{tag}", "--into", "podman", *podman.load_args())
            assert out.returncode == 0, out.stderr
        out = podman.run_image("localhost/bb:1", "sh", "-c", "echo $GREETING from $(pwd); id -u")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["hi", "from", "/tmp", "0"]
        out = podman.run_image("localhost/bb:1")  # the configured Cmd
        assert out.stdout == "default cmd ran\nmade by chrootforge\n", out.stderr
        out = podman.run_image(
            "localhost/bb:child",
            "sh",
            "-c",
            "test -e /etc/motd && echo motd-still-there; cat /etc/added; ls /bin/echo",
        )
        assert out.stdout == "added in child\n/bin/echo\n", out.stderr
    finally:
        podman.cleanup()


def _archive_index(archive: Path) -> tuple[dict, dict]:
    """index.json of an archive, and its blobs by digest."""
    import tarfile

    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        blobs = {
            "sha256:" + m.name.rsplit("/", 1)[1]: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.name.startswith("blobs/sha256/") and m.isfile()
        }
    return index, blobs


def test_default_oci_archive_loads_into_podman_and_skopeo_with_its_sbom(identity, images):
    """podman load and skopeo's oci-archive: refuse an index.json with two entries ("more than one
    image in oci"); the default export carries the SBOM inside an image index instead."""
    need("podman")
    need("skopeo")
    from chrootforge import oci

    layout = images["layout"]
    found = oci.resolve(layout, "bb:1")
    base = identity.mkdtemp("archive.")
    archive = base / "bb.tar"
    out = identity.cf("export", f"{layout}:bb:1", "-o", str(archive))
    assert out.returncode == 0, out.stderr
    index, blobs = _archive_index(archive)
    assert len(index["manifests"]) == 1
    top = index["manifests"][0]
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "bb:1"
    nested = json.loads(blobs[top["digest"]])
    image, sbom = nested["manifests"]
    assert image["digest"] == found.descriptor["digest"]  # the image manifest itself is unchanged
    assert image["platform"] == {"architecture": found.config["architecture"], "os": "linux"}
    assert sbom["platform"] == {"architecture": "unknown", "os": "unknown"}
    artifact = json.loads(blobs[sbom["digest"]])
    assert artifact["subject"]["digest"] == found.descriptor["digest"]
    assert json.loads(blobs[artifact["layers"][0]["digest"]]) == {"spdxVersion": "SPDX-2.3"}

    out = identity.run(["skopeo", "inspect", f"oci-archive:{archive}"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Env"] == ["GREETING=hi"]
    podman = Podman(identity, identity.mkdtemp("podman."))
    try:
        out = podman.run("load", "-i", str(archive))
        assert out.returncode == 0, out.stderr
        out = podman.run("image", "inspect", "localhost/bb:1", "--format", "{{.Id}}")
        assert out.returncode == 0 and out.stdout.strip() == found.manifest["config"]["digest"][7:], (
            out.stderr
        )
        out = podman.run_image("localhost/bb:1")
        assert out.stdout == "default cmd ran\nmade by chrootforge\n", out.stderr
    finally:
        podman.cleanup()

    bare = base / "bare.tar"
    out = identity.cf("export", f"{layout}:bb:1", "--no-referrers", "-o", str(bare))
    assert out.returncode == 0, out.stderr
    index, blobs = _archive_index(bare)
    assert [m["digest"] for m in index["manifests"]] == [found.descriptor["digest"]]
    assert sbom["digest"] not in blobs


def test_skopeo_inspect_and_copy(images, tmp_path):
    need("skopeo")
    from chrootforge import oci

    layout = images["layout"]
    for tag in ("bb:1", "bb:zstd"):
        out = subprocess.run(
            ["skopeo", "inspect", f"oci:{layout}:{tag}"], check=False, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout)
        assert info["Digest"] == oci.resolve(layout, tag).descriptor["digest"]
        assert info["Env"] == ["GREETING=hi"]
    store = f"containers-storage:[vfs@{tmp_path / 'root'}+{tmp_path / 'run'}]localhost/copied:1"
    out = subprocess.run(
        ["skopeo", "copy", f"oci:{layout}:bb:child", store], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["skopeo", "inspect", store], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["Layers"]) == 2
    if os.getuid() == 0:
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_umoci_unpack_matches_source(images, tmp_path):
    need("umoci")
    args = [] if os.getuid() == 0 else ["--rootless"]
    out = subprocess.run(
        ["umoci", "unpack", *args, "--image", f"{images['layout']}:bb:1", str(tmp_path / "bundle")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    owners = os.getuid() == 0
    got = snapshot(tmp_path / "bundle" / "rootfs", owners=owners)
    assert umoci_comparable(got) == umoci_comparable(snapshot(images["rootfs"], owners=owners))


@contextlib.contextmanager
def _daemon(argv: list[str], socket_path: Path, log_path: Path, what: str):
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 40
        while not socket_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text()[-600:]
                pytest.skip(f"{what} could not start here: {tail}")
            time.sleep(0.2)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_docker_load_and_run_through_private_dockerd(images):
    if os.getuid() != 0:
        pytest.skip("a private dockerd needs real root")
    need("dockerd")
    need("docker")
    base = Path(tempfile.mkdtemp(prefix="cfd.", dir="/tmp"))  # short: unix socket paths are limited
    sock = base / "d.sock"
    argv = [
        "dockerd",
        "--data-root",
        str(base / "data"),
        "--exec-root",
        str(base / "exec"),
        "-H",
        f"unix://{sock}",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--pidfile",
        str(base / "d.pid"),
    ]
    try:
        with _daemon(argv, sock, base / "dockerd.log", "dockerd"):
            docker = ["docker", "--host", f"unix://{sock}"]
            from chrootforge import oci

            out = subprocess.run(
                [
                    *oci_cf(),
                    "load",
                    f"{images['layout']}:bb:child",
                    "--into",
                    "docker",
                    f"--docker-arg=--host=unix://{sock}",
                ],
                check=False,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 0, out.stderr
            out = subprocess.run(
                [
                    *docker,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "bb:child",
                    "sh",
                    "-c",
                    "cat /etc/added; test -e /etc/motd || echo motd-gone",
                ],
                check=False,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout == "added in child\nmotd-gone\n"
            # a zstd image is refused for docker-archive, with a clear reason
            out = subprocess.run(
                [
                    *oci_cf(),
                    "load",
                    f"{images['layout']}:bb:zstd",
                    "--into",
                    "docker",
                    f"--docker-arg=--host=unix://{sock}",
                ],
                check=False,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 1 and "zstd" in out.stderr and "Traceback" not in out.stderr
            assert oci.resolve(images["layout"], "bb:zstd")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def oci_cf() -> list[str]:
    import sys

    return [sys.executable, "-m", "chrootforge"]


def test_containerd_imports_the_zstd_image(images, tmp_path):
    if os.getuid() != 0:
        pytest.skip("a private containerd needs real root")
    need("containerd")
    need("ctr")
    base = Path(tempfile.mkdtemp(prefix="cfc.", dir="/tmp"))
    sock = base / "c.sock"
    cfg = base / "config.toml"
    cfg.write_text(f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{base / "t.sock"}"
[debug]
  address = ""
[metrics]
  address = ""
""")
    archives = {}
    for tag in ("bb:zstd", "bb:1"):  # bb:1 has an SBOM: its archive holds an image index
        archives[tag] = tmp_path / f"{tag}.tar"
        out = subprocess.run(
            [
                *oci_cf(),
                "export",
                f"{images['layout']}:{tag}",
                "--format",
                "oci-archive",
                "-o",
                str(archives[tag]),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
    try:
        with _daemon(["containerd", "--config", str(cfg)], sock, base / "containerd.log", "containerd"):
            ctr = ["ctr", "--address", str(sock), "--namespace", "cftest"]
            for tag, archive in archives.items():
                out = subprocess.run(
                    [*ctr, "images", "import", str(archive)],
                    check=False,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert out.returncode == 0, out.stdout + out.stderr
                out = subprocess.run(
                    [*ctr, "images", "ls", "-q"], check=False, capture_output=True, text=True
                )
                assert f"localhost/{tag}" in out.stdout.split()
                out = subprocess.run([*ctr, "images", "check"], check=False, capture_output=True, text=True)
                line = next(x for x in out.stdout.splitlines() if x.startswith(f"localhost/{tag} "))
                assert "complete" in line, out.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_exports_are_deterministic_and_hold_only_the_tag(images, tmp_path):
    import tarfile

    from chrootforge.oci.archive import export

    layout = images["layout"]
    export(layout, "bb:1", "docker-archive", tmp_path / "a.tar")
    export(layout, "bb:1", "docker-archive", tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        index = json.loads(tar.extractfile("index.json").read())
    assert manifest[0]["RepoTags"] == ["bb:1"]
    assert len(index["manifests"]) == 1
    layers = manifest_of(layout, "bb:1")["layers"]
    assert manifest[0]["Layers"] == [f"blobs/sha256/{x['digest'][7:]}" for x in layers]
    assert len([n for n in names if n.startswith("blobs/sha256/")]) == 3  # manifest, config, layer
