"""End to end, as root and as the unprivileged user: build the example hierarchy once per identity
(module-scoped) and check the images with the real consumers (podman/runc, umoci, chrootforge verify).

The namespace is examples/world copied into a temp dir with one extra image, `hellostatic` (hello with
USE=static on top of `hello`, whose parent built it without): it proves that package.provided respects
USE. Everything else hangs on that one build, plus a no-op rebuild and a leaf rebuild.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.rootfs import remove_as
from tests.helpers.world_build import WorldBuild, namespace

pytestmark = pytest.mark.slow
IMAGES = ["busybox", "glibc", "s6", "greeter", "hello", "hellostatic"]  # the build's order
DEPTH = {"busybox": 1, "glibc": 2, "s6": 3, "greeter": 4, "hello": 4, "hellostatic": 5}
# Built with --jobs 2 by the user (greeter and hello are siblings), serially by root.
JOBS = {"root": "1", "user": "2"}
PREFIX = "localhost/chrootforge"  # examples/world: [output] prefix
# hello with USE=static on top of hello, whose parent built it without
HELLOSTATIC = (
    'parent = "hello"\npackages = ["app-misc/hello"]\n\n[package."app-misc/hello"]\nuse = ["static"]\n'
    '\n[config]\ncmd = ["hello"]\n'
)


def make_namespace(dest: Path, repo: Path) -> Path:
    """examples/world with the tree at `repo` (a session copy of examples/repo), plus hellostatic."""
    return namespace(dest, repo, files={"hellostatic/image.toml": HELLOSTATIC})


def _build(identity, ns: Path, layout: Path, env: dict, *extra: str):
    proc = identity.cf("build", "--json", "--layout", str(layout), *extra, str(ns), env=env, timeout=1200)
    return proc


# Manifest digests of each identity's build (the two builds differ in user, stage path, cache and
# layout path; SOURCE_DATE_EPOCH is unset in both): they must be equal (issue 10).
DIGESTS: dict[str, dict[str, str]] = {}
PROVENANCE: dict[str, dict[str, bytes]] = {}  # and their provenance documents: the same bytes too


def _stage_elsewhere(stage: Path, dest: Path) -> Path:
    """The same stage3 bytes (with its .asc and .DIGESTS) at another path."""
    dest.mkdir(parents=True)
    for suffix in ("", ".asc", ".DIGESTS"):
        shutil.copy(f"{stage}{suffix}", dest / f"{stage.name}{suffix}")
    return dest / stage.name


@pytest.fixture(scope="module", params=["root", "user"])
def built(request, world_inputs, world_repo) -> WorldBuild:
    identity = get_identity(request.param)
    b = WorldBuild.prepare(identity, "pipeline.", lambda tmp: make_namespace(tmp, world_repo), world_inputs)
    if identity.is_root:
        b.env["CHROOTFORGE_WORLD_STAGE"] = str(_stage_elsewhere(world_inputs.stage, b.tmp / "stage-copy"))
    report = b.build("--jobs", JOBS[identity.name], timeout=1200)
    print(
        f"\n[world timing] {identity.name}: cold build of {len(IMAGES)} images with --jobs "
        f"{JOBS[identity.name]}: {report['seconds']:.1f}s"
    )
    DIGESTS[identity.name] = b.digests(IMAGES)
    PROVENANCE[identity.name] = {image: b.provenance(image) for image in IMAGES}
    b.to_podman(IMAGES)
    yield b
    b.remove()


# -- the build itself ----------------------------------------------------------------------------
def test_every_image_built(built):
    assert [r["image"] for r in built.report["images"]] == IMAGES
    assert all(r["status"] == "built" for r in built.report["images"])
    for r in built.report["images"]:
        assert r["layers"] == DEPTH[r["image"]]
        assert {"emerge", "commit"} <= set(r["steps"])


def test_emerge_log_shows_the_line_that_ran(built):
    """[build] jobs reaches emerge (it was always --jobs=1): the log shows the exact lines that ran,
    the builder's build-deps pass (ROOT=/) first, then the image's own emerge."""
    text = (built.layout.parent / "layout.build/logs/hello/emerge.log").read_text()
    ran = [line for line in text.splitlines() if line.startswith("$ ")]
    assert len(ran) == 2, text[-3000:]
    deps, own = ran
    assert deps.startswith("$ ROOT=/ ") and " emerge --onlydeps " in deps, deps
    assert own.startswith("$ ROOT=/emerge-root ") and " emerge --buildpkg " in own, own
    for line in ran:
        assert "--jobs=2" in line.split() and line.endswith(" app-misc/hello"), line


def test_child_reuses_parent_layers(built):
    for chain in (["busybox", "glibc", "s6", "hello", "hellostatic"], ["s6", "greeter"]):
        layers = [built.manifest(i)["layers"] for i in chain]
        for parent, child in itertools.pairwise(layers):
            assert child[: len(parent)] == parent
            assert len(child) == len(parent) + 1


def test_consumers_validate_layout(built):
    proc = built.cf("verify", str(built.layout))
    assert proc.returncode == 0, proc.stderr
    for image in ("busybox", "hello"):
        dest = built.tmp / f"umoci-{image}"
        argv = [
            "umoci",
            "unpack",
            *([] if built.identity.is_root else ["--rootless"]),
            "--image",
            f"{built.layout}:{PREFIX}/{image}:latest",
            str(dest),
        ]
        proc = built.identity.run(argv)
        assert proc.returncode == 0, proc.stderr
        assert (dest / "rootfs" / "bin" / "busybox").exists()


def test_slim_root(built):
    names = built.all_names("hello")
    for gone in (
        "usr/share/doc",
        "usr/share/man",
        "var/db/pkg",
        "etc/portage",
        "var/lib/portage",
        "var/cache/edb",
        "usr/include",
    ):
        assert not any(n == gone or n.startswith(gone + "/") for n in names), gone
    assert "usr/bin/hello" in names and "bin/busybox" in names


def test_package_provided_no_double_install(built):
    """Each child layer holds only its own packages: busybox and s6 are not installed again."""
    glibc_layer, s6_layer, hello_layer = (built.top_layer_names(i) for i in ("glibc", "s6", "hello"))
    assert "bin/busybox" not in glibc_layer | s6_layer | hello_layer
    assert not any("s6-svscan" in n for n in hello_layer)
    assert any(n.endswith("bin/s6-svscan") for n in s6_layer)
    assert not any(n.endswith("libc.so.6") for n in s6_layer | hello_layer)
    assert "usr/bin/hello" in hello_layer


def test_different_use_reinstalls(built):
    layer = built.top_layer_names("hellostatic")
    assert "usr/bin/hello" in layer  # hello's dynamic build did not count as provided
    out = built.podman("run", "--rm", *built.podman.run_args(), "localhost/test/hellostatic:latest").stdout
    assert "build=static" in out


def test_users_reach_the_image(built):
    proc = built.podman(
        "run",
        "--rm",
        *built.podman.run_args(),
        "localhost/test/hello:latest",
        "cat",
        "/etc/passwd",
        "/etc/group",
    )
    assert "hello:x:701:" in proc.stdout and "root:x:0:0:" in proc.stdout


def test_config_and_labels(built):
    cfg = built.config("hello")
    assert cfg["config"]["Cmd"] == ["s6-svscan", "-t0", "/service"]
    assert "GREETING_SOURCE=chrootforge" in cfg["config"]["Env"]
    labels = cfg["config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "hello"
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert labels["org.chrootforge.stage3.insecure-skip-verify"] == "false"
    assert labels["org.chrootforge.tree"].startswith("sha256:")
    assert labels["org.opencontainers.image.url"] == "https://example.invalid/chrootforge"


def test_sbom_lists_every_package(built):
    state = json.loads((built.layout.parent / "layout.build/state/hello.json").read_text())
    expected = {(r["category"] + "/" + r["name"], r["version"]) for r in state["records"]}
    assert {"app-misc/hello", "sys-apps/busybox-bin", "sys-apps/s6-bin", "sys-libs/glibc-bin"} <= {
        cp for cp, _ in expected
    }
    doc = json.loads((built.layout.parent / "layout.build/sbom/hello.spdx.json").read_text())
    listed = {(p["name"], p["versionInfo"]) for p in doc["packages"] if p["SPDXID"] != "SPDXRef-Image"}
    assert listed == expected
    assert doc["spdxVersion"] == "SPDX-2.3"
    # The same document is attached to the image in the layout (an OCI referrer), readable back.
    proc = built.cf("sbom", f"{built.layout}:{PREFIX}/hello:latest")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == doc
    hello_digest = built.index()[f"{PREFIX}/hello:latest"]
    assert doc["packages"][0]["checksums"][0]["checksumValue"] == hello_digest.split(":")[1]


# -- running the images ----------------------------------------------------------------------------
def test_hello_prints(built):
    proc = built.podman("run", "--rm", *built.podman.run_args(), "localhost/test/hello:latest", "hello")
    assert "Hello from chrootforge! build=dynamic" in proc.stdout


def test_busybox_and_glibc_run(built):
    proc = built.podman(
        "run",
        "--rm",
        *built.podman.run_args(),
        "localhost/test/busybox:latest",
        "sh",
        "-c",
        "echo ok-$((6*7))",
    )
    assert proc.stdout.strip() == "ok-42"
    proc = built.podman(
        "run",
        "--rm",
        *built.podman.run_args(),
        "localhost/test/glibc:latest",
        "sh",
        "-c",
        "ls /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc.so.6 2>/dev/null | head -1",
    )
    assert "libc.so.6" in proc.stdout


def test_s6_supervises_and_stops_promptly(built):
    name = f"s6test-{built.identity.name}"
    built.podman("run", "-d", "--name", name, *built.podman.run_args(), "localhost/test/hello:latest")
    try:
        deadline = time.monotonic() + 20
        logs = ""
        while time.monotonic() < deadline:
            logs = built.podman("logs", name, check=False).stdout
            if "Hello from chrootforge!" in logs and "heartbeat" in logs:
                break
            time.sleep(0.3)
        assert "heartbeat" in logs and "Hello from chrootforge! build=dynamic uid=701" in logs, logs
        comm = built.podman("exec", name, "cat", "/proc/1/comm").stdout.strip()
        assert comm == "s6-svscan"
        started = time.monotonic()
        built.podman("stop", "-t", "10", name)
        assert time.monotonic() - started <= 2.0
    finally:
        built.podman("rm", "-f", "-t", "0", name, check=False)


def test_reproducible_from_clean_caches(built):
    """A second build of the hierarchy, from clean caches into a new layout, gives the same digests.
    (Once, for the unprivileged identity: it costs a full cold build.)"""
    if built.identity.is_root:
        pytest.skip("checked once, for the rootless identity")
    tmp2 = built.identity.mkdtemp("repro.")
    env = dict(built.env, XDG_CACHE_HOME=str(tmp2 / "cache"))
    layout2 = tmp2 / "layout"
    first = {r["image"]: r["digest"] for r in built.report["images"]}
    try:
        proc = _build(built.identity, built.ns, layout2, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout)
        assert all(r["status"] == "built" for r in report["images"])
        assert {r["image"]: r["digest"] for r in report["images"]} == first
    finally:
        remove_as(built.identity, tmp2)


# -- incremental builds (these change the layout: keep them last in the module) ------------------
def test_zz_noop_rebuild(built):
    proc = _build(built.identity, built.ns, built.layout, built.env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["status"] for r in report["images"]] == ["up-to-date"] * len(IMAGES)


def test_zz_touch_leaf_rebuilds_only_it_with_binpkgs(built):
    spec = built.ns / "hello" / "image.toml"
    spec.write_text(spec.read_text() + "\n# a comment: not content, nothing to rebuild\n")
    proc = _build(built.identity, built.ns, built.layout, built.env)
    assert proc.returncode == 0, proc.stderr
    assert {r["status"] for r in json.loads(proc.stdout)["images"]} == {"up-to-date"}
    text = spec.read_text().replace('description = "hello, ', 'description = "touched: hello, ')
    spec.write_text(text)
    before = built.index()
    proc = _build(built.identity, built.ns, built.layout, built.env)
    assert proc.returncode == 0, proc.stderr
    status = {r["image"]: r["status"] for r in json.loads(proc.stdout)["images"]}
    assert status == {
        "busybox": "up-to-date",
        "glibc": "up-to-date",
        "s6": "up-to-date",
        "greeter": "up-to-date",
        "hello": "built",
        "hellostatic": "built",
    }
    after = built.index()
    assert after[f"{PREFIX}/s6:latest"] == before[f"{PREFIX}/s6:latest"]
    logs = built.layout.parent / "layout.build/logs/hello"
    log = "".join(p.read_text() for p in [logs / "emerge.log", *sorted(logs.glob("packages/*.log"))])
    assert ">>> Emerging binary" in log and ">>> Compiling source" not in log


def test_zz_failures_leave_tags_intact(built):
    """Bad input: each a clear error, non-zero exit, and the layout's tags unchanged."""
    before = (built.layout / "index.json").read_bytes()
    bad = built.tmp / "bad"
    shutil.copytree(built.ns, bad, dirs_exist_ok=False)
    if not built.identity.is_root and os.getuid() == 0:
        for path in [bad, *bad.rglob("*")]:
            os.chown(path, built.identity.uid, built.identity.gid)

    def image(name, text):
        (bad / name).mkdir(exist_ok=True)
        (bad / name / "image.toml").write_text(text)
        if not built.identity.is_root:
            for p in (bad, bad / name, bad / name / "image.toml"):
                os.chown(p, built.identity.uid, built.identity.gid)

    def run(name):
        return built.cf("build", "--layout", str(built.layout), str(bad / name))

    image("unknown", 'parent = "scratch"\npackages = ["app-misc/nope"]\n')
    proc = run("unknown")
    assert proc.returncode == 1 and "emerge failed" in proc.stderr and "emerge.log" in proc.stderr
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if "emerge failed" in line)
    tail = lines[at + 1 : next(i for i in range(at, len(lines)) if lines[i].startswith("  hint:"))]
    assert len(tail) > 3 and all(line.startswith("    | ") for line in tail), proc.stderr  # single-spaced
    image(
        "failing",
        'parent = "scratch"\npackages = ["app-misc/hello"]\n'
        '[package."app-misc/hello"]\nenv = { CFLAGS = "-fno-such-flag-at-all" }\n',
    )
    proc = run("failing")
    assert proc.returncode == 1 and "logs/failing/emerge.log" in proc.stderr, proc.stderr
    # emerge --jobs=2 leaves the compiler's error in the package's own log: the message names it
    assert "the failed package's build log: " in proc.stderr, proc.stderr
    assert "logs/failing/packages/app-misc:hello-1.0:" in proc.stderr, proc.stderr
    image("hookfail", 'parent = "scratch"\n[hooks]\nconfigure_rootfs = ["boom.sh"]\n')
    (bad / "hookfail" / "boom.sh").write_text("echo about to fail\nexit 7\n")
    proc = run("hookfail")
    assert (
        proc.returncode == 1 and "hook 'boom.sh' (configure_rootfs) failed with exit status 7" in proc.stderr
    )
    image("syntax", 'parent = "scratch"\npackages = [\n')
    proc = run("syntax")
    assert proc.returncode == 2 and f"{bad / 'syntax' / 'image.toml'}:3" in proc.stderr
    image("unknownkey", 'parent = "scratch"\npackage = ["x/y"]\n')
    proc = run("unknownkey")
    assert proc.returncode == 2 and "unknownkey/image.toml:2" in proc.stderr
    image("cyc1", 'parent = "cyc2"\n')
    image("cyc2", 'parent = "cyc1"\n')
    proc = run("cyc1")
    assert proc.returncode == 2 and "parent cycle: cyc1 -> cyc2 -> cyc1" in proc.stderr
    image("orphan", 'parent = "nothere"\n')
    proc = run("orphan")
    assert proc.returncode == 2 and "parent image 'nothere' does not exist" in proc.stderr
    env = dict(built.env, CHROOTFORGE_WORLD_STAGE=str(built.tmp / "missing-stage.tar.zst"))
    proc = built.identity.cf(
        "build", "--layout", str(built.layout), str(bad / "busybox"), "--force", env=env, timeout=300
    )
    assert proc.returncode == 2 and "missing-stage.tar.zst does not exist" in proc.stderr
    assert (built.layout / "index.json").read_bytes() == before
    assert "Traceback" not in proc.stderr


def test_zz_names_and_destinations_change_no_digest(built):
    """The same images under another prefix, other tags, with a registry to push to, into another
    layout, with emerge's [build] jobs changed: the same build keys and the same manifest digests
    (before, each of these changed every key and digest; issue 18). And [build] jobs reaches emerge."""
    other = built.tmp / "renamed" / "world"
    shutil.copytree(built.ns, other)
    text = (other / "chrootforge.toml").read_text()
    for old, new in (
        ('prefix = "localhost/chrootforge"', 'prefix = "registry.example.com:5000/team/renamed"'),
        ('tags = ["latest"]', 'tags = ["v1", "stable"]  # other names'),
        ("[output]", '[output]\nregistry = "docker://registry.example.com:5000/team"'),
        ("[build]", "[build]\njobs = 3"),
    ):
        assert old in text
        text = text.replace(old, new)
    (other / "chrootforge.toml").write_text(text)
    if not built.identity.is_root and os.getuid() == 0:
        for path in [other.parent, other, *other.rglob("*")]:
            os.chown(path, built.identity.uid, built.identity.gid)
    layout = built.tmp / "renamed-layout"
    proc = built.cf("build", "--json", "--layout", str(layout), str(other / "busybox"), str(other / "glibc"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["status"] for r in json.loads(proc.stdout)["images"]] == ["built", "built"]
    index = json.loads((layout / "index.json").read_text())
    refs = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
        if "org.opencontainers.image.ref.name" in m.get("annotations", {})
    }
    for image in ("busybox", "glibc"):
        for tag in ("v1", "stable"):
            assert (
                refs[f"registry.example.com:5000/team/renamed/{image}:{tag}"]
                == DIGESTS[built.identity.name][image]
            )
        key = json.loads((layout.parent / f"renamed-layout.build/state/{image}.json").read_text())["key"]
        assert (
            key == json.loads((built.layout.parent / f"layout.build/state/{image}.json").read_text())["key"]
        )
    log = (layout.parent / "renamed-layout.build/logs/busybox/emerge.log").read_text()
    assert "--jobs=3" in log.splitlines()[0].split()
    labels = json.dumps(built.config("busybox")["config"]["Labels"])
    assert "localhost/" not in labels and "latest" not in labels  # no name in the config


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_zz_killed_build_leaves_nothing(built):
    """SIGKILL of chrootforge in the middle of a build: no process and no mount survive, the layout's
    tags are intact, and the next build cleans up after it."""
    ns = built.tmp / "killns"
    shutil.copytree(built.ns, ns)
    (ns / "sleeper").mkdir()
    (ns / "sleeper" / "image.toml").write_text('parent = "busybox"\n[hooks]\nconfigure_rootfs = ["nap.sh"]\n')
    (ns / "sleeper" / "nap.sh").write_text("echo napping\nexec sleep 600\n")
    if not built.identity.is_root and os.getuid() == 0:
        for path in [ns, *ns.rglob("*")]:
            os.chown(path, built.identity.uid, built.identity.gid)
    before_index = (built.layout / "index.json").read_bytes()
    before_mounts = Path("/proc/self/mountinfo").read_text()
    proc = built.identity.popen(
        built.identity.cf_argv("build", "--layout", str(built.layout), str(ns / "sleeper")),
        env=built.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            seen |= _descendants(proc.pid)
            if any(
                Path(f"/proc/{pid}/comm").exists()
                and Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
                for pid in seen
                if _alive(pid)
            ):
                break
            assert proc.poll() is None, "the build ended before its hook started"
            time.sleep(0.2)
        else:
            pytest.fail("the sleeper hook never started")
        seen |= _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in seen):
            time.sleep(0.1)
        assert not [pid for pid in seen if _alive(pid)], "processes outlived the killed build"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert Path("/proc/self/mountinfo").read_text() == before_mounts
    assert (built.layout / "index.json").read_bytes() == before_index
    assert built.cf("verify", str(built.layout)).returncode == 0
    # the next build of the namespace takes the lock and works; the sleeper's stale work dir goes
    digest = hashlib.sha256(str(built.layout.resolve()).encode()).hexdigest()[:16]  # build.work_root
    work = Path(built.env["XDG_CACHE_HOME"]) / "chrootforge" / "work" / digest / "sleeper"
    assert work.exists()  # SIGKILL cannot clean up; the next build of the image does
    (ns / "sleeper" / "nap.sh").write_text("echo short nap\n")
    again = built.cf("build", "--layout", str(built.layout), str(ns / "sleeper"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert not work.exists()


def test_zz_same_digests_anywhere(built):
    """Two cold builds, by root and by the test user, from two stage paths into two caches and two
    layouts, with SOURCE_DATE_EPOCH unset: every manifest digest is the same."""
    if set(DIGESTS) != {"root", "user"}:
        pytest.skip("needs both identities' builds (run the whole module)")
    assert DIGESTS["root"] == DIGESTS["user"]
    assert PROVENANCE["root"] == PROVENANCE["user"]


def test_provenance_names_the_inputs(built):
    """in-toto Statement v1 / SLSA provenance v1 (checked against the specifications' fields), with
    the same stage, tree and parent the image's labels and state name, and the spec files by sha256."""
    from tests.pipeline import provenance_schema

    for image in ("busybox", "hello"):
        data = (built.layout.parent / "layout.build" / "provenance" / f"{image}.intoto.json").read_bytes()
        doc = json.loads(data)
        provenance_schema.slsa_provenance_v1(doc)
        assert doc["subject"] == [
            {
                "name": f"{PREFIX}/{image}:latest",
                "digest": {"sha256": built.index()[f"{PREFIX}/{image}:latest"][7:]},
            }
        ]
        bd = doc["predicate"]["buildDefinition"]
        labels = built.config(image)["config"]["Labels"]
        deps = {d["name"]: d for d in bd["resolvedDependencies"]}
        stage = deps[labels["org.chrootforge.stage3.name"]]
        assert stage["digest"] == {"sha512": labels["org.chrootforge.stage3.sha512"]}
        assert stage["annotations"]["verifiedBy"] == labels["org.chrootforge.stage3.verified-by"]
        assert deps["tree"]["annotations"]["treeId"] == labels["org.chrootforge.tree"]
        assert bd["internalParameters"]["buildKey"] == labels["org.chrootforge.build.engine-key"]
        assert bd["internalParameters"]["buildEpoch"] == calendar.timegm(
            time.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
        )
        for name in ("chrootforge.toml", f"{image}/image.toml"):
            assert (
                deps[name]["digest"]["sha256"] == hashlib.sha256((built.ns / name).read_bytes()).hexdigest()
            )
        assert str(built.tmp) not in data.decode()
        shown = built.cf("provenance", f"{built.layout}:{PREFIX}/{image}:latest")
        assert shown.returncode == 0 and json.loads(shown.stdout) == doc
    hello = json.loads(
        (built.layout.parent / "layout.build" / "provenance" / "hello.intoto.json").read_text()
    )
    parents = [
        d
        for d in hello["predicate"]["buildDefinition"]["resolvedDependencies"]
        if d.get("annotations", {}).get("kind") == "parent image"
    ]
    assert parents == [
        {
            "annotations": {"kind": "parent image"},
            "digest": {"sha256": built.index()[f"{PREFIX}/s6:latest"][7:]},
            "name": f"{PREFIX}/s6:latest",
        }
    ]
    # an unsigned build attaches no envelope
    assert built.cf("provenance", "--envelope", f"{built.layout}:{PREFIX}/hello:latest").returncode == 1


def test_one_epoch_everywhere(built):
    """Config `created`, the created label, history, every layer mtime and the SBOM agree."""
    for image in ("busybox", "hello"):
        cfg = built.config(image)
        created = cfg["created"]
        assert cfg["config"]["Labels"]["org.opencontainers.image.created"] == created
        assert all(h["created"] == created for h in cfg["history"])
        doc = json.loads((built.layout.parent / f"layout.build/sbom/{image}.spdx.json").read_text())
        assert doc["creationInfo"]["created"] == created
        epoch = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
        assert epoch > 0  # derived from the stage, never 1970
        data = built.blob(built.manifest(image)["layers"][-1]["digest"])
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            assert max(m.mtime for m in tar.getmembers()) <= epoch
    ours = {
        k: v for k, v in built.config("hello")["config"]["Labels"].items() if k.startswith("org.chrootforge")
    }
    assert ours and not any(
        v.startswith(("/", "file:", "http")) or str(built.tmp) in v for v in ours.values()
    )
    assert not any(k.endswith(".source") for k in ours)


def _pty_session(identity, argv: list[str], env: dict, send: bytes, until: bytes, timeout: float = 300):
    """Run `argv` as `identity` on a fresh pseudo-terminal; type `send` once `until` shows up;
    return (exit status, everything the terminal showed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: become the identity and run on this terminal
        full = identity._wrap(["env", *[f"{k}={v}" for k, v in env.items()], *argv])
        merged = {**os.environ, **identity.env, **env}
        try:
            os.execvpe(full[0], full, merged)
        finally:
            os._exit(127)
    out, sent = bytearray(), False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out.extend(data)
        if not sent and until in out:
            os.write(fd, send)
            sent = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_zz_build_shell_through_a_terminal(built):
    """`build NS/IMAGE --shell`: the parents are ready, and a login shell opens in the image's build
    sandbox (its /etc/portage, the read-only tree, /emerge-root with the parent's files); nothing is
    committed, and leaving it leaves nothing behind."""
    before = (built.layout / "index.json").read_bytes()
    commands = (
        b"emerge --info >/dev/null && echo INFO-OK; touch /var/db/repos/gentoo/x; echo RO-RC=$?; "
        b"test -x /emerge-root/bin/busybox && echo PARENT-OK; grep -c zz-chrootforge "
        b"/etc/portage/repos.conf/zz-chrootforge.conf && echo PORTAGE-OK; exit 3\n"
    )
    argv = built.identity.cf_argv("build", "--layout", str(built.layout), str(built.ns / "hello"), "--shell")
    code, screen = _pty_session(built.identity, argv, built.env, commands, b"(cf hello)")
    assert "chrootforge build shell: image world/hello (parent: s6)" in screen, screen[-3000:]
    assert "emerge line: ROOT=/emerge-root" in screen
    assert "INFO-OK" in screen and "PARENT-OK" in screen and "PORTAGE-OK" in screen, screen[-3000:]
    assert "Read-only file system" in screen and "RO-RC=1" in screen
    assert code == 0, screen[-3000:]  # the build command itself succeeded: it opened the shell
    assert (built.layout / "index.json").read_bytes() == before
    digest = hashlib.sha256(str(built.layout.resolve()).encode()).hexdigest()[:16]
    work = Path(built.env["XDG_CACHE_HOME"]) / "chrootforge" / "work" / digest / "hello"
    assert not work.exists()


def test_zz_shell_on_failure_and_keep(built):
    """--shell-on-failure opens the shell where the hook failed; the build still fails, and --keep
    keeps the work dir for a look afterwards."""
    name = "shellfail"
    (built.ns / name).mkdir(exist_ok=True)
    (built.ns / name / "image.toml").write_text(
        'parent = "busybox"\n[hooks]\nconfigure_rootfs = ["boom.sh"]\n'
    )
    (built.ns / name / "boom.sh").write_text("echo boom > /emerge-root/boom-was-here\nexit 7\n")
    if not built.identity.is_root:
        for path in (built.ns / name, *(built.ns / name).iterdir()):
            os.chown(path, built.identity.uid, built.identity.gid)
    digest = hashlib.sha256(str(built.layout.resolve()).encode()).hexdigest()[:16]
    work = Path(built.env["XDG_CACHE_HOME"]) / "chrootforge" / "work" / digest / name
    for keep in ([], ["--keep"]):
        argv = built.identity.cf_argv(
            "build", "--layout", str(built.layout), str(built.ns / name), "--shell-on-failure", *keep
        )
        code, screen = _pty_session(
            built.identity, argv, built.env, b"cat /emerge-root/boom-was-here; exit\n", b"(cf shellfail)"
        )
        assert "the build failed: image shellfail: hook 'boom.sh' (configure_rootfs)" in screen, screen[
            -3000:
        ]
        assert "boom" in screen.split("leave with `exit`", 1)[1]
        assert code == 1
        assert work.exists() == bool(keep)
    assert "cache prune --kind work --older-than 0" in screen  # what the kept dir's notice says
    # the kept dir is a "work" entry of the cache, not "other", and that command removes it
    listing = json.loads(built.cf("cache", "ls", "--json").stdout)
    assert next(k for k in listing["kinds"] if k["kind"] == "work")["entries"] >= 1
    pruned = built.cf("cache", "prune", "--kind", "work", "--older-than", "0", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert f"work/{digest}" in {e["name"] for e in json.loads(pruned.stdout)["removed"]}
    assert not work.exists()
    shutil.rmtree(built.ns / name)


def test_zz_build_hooks_cannot_unlock_the_tree(built, world_repo):
    """A hook of a real build tries to make the read-only tree writable: every attempt fails, the
    build goes on, and the repository on the host is unchanged."""
    name = "escaper"
    (built.ns / name).mkdir(exist_ok=True)
    (built.ns / name / "image.toml").write_text(
        'parent = "busybox"\n[hooks]\nconfigure_rootfs = ["try.sh"]\n'
    )
    (built.ns / name / "try.sh").write_text(
        "set +e\nok=0\n"
        "mount -o remount,bind,rw /var/db/repos/gentoo && ok=1\n"
        "umount -l /var/db/repos/gentoo && ok=1\n"
        "touch /var/db/repos/gentoo/pwned && ok=1\n"
        "v=$(cat /proc/sys/kernel/core_pattern); printf '%s\\n' \"$v\" > /proc/sys/kernel/core_pattern && ok=1\n"
        "echo escaped=$ok\nexit $ok\n"
    )
    if not built.identity.is_root:
        for path in (built.ns / name, *(built.ns / name).iterdir()):
            os.chown(path, built.identity.uid, built.identity.gid)
    before = sorted(p.name for p in world_repo.iterdir())
    proc = built.cf("build", "--layout", str(built.layout), str(built.ns / name))
    log = (built.layout.parent / "layout.build" / "logs" / name / "configure_rootfs.log").read_text()
    assert proc.returncode == 0 and "escaped=0" in log, proc.stderr[-2000:] + log
    assert sorted(p.name for p in world_repo.iterdir()) == before and not (world_repo / "pwned").exists()
