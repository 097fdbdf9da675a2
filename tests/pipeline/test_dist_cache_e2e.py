"""The remote cache when it cannot be trusted or reached: real builds (of two small images without
packages, on the test world's stage, as the unprivileged user) against the real registry. A cache
that is down, an entry without its build state, and an entry holding another image each give one
notice and a normal build, never a wrong image; a refused entry is replaced by the built one."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.registry import PASSWORD, USER, free_port
from tests.helpers.rootfs import remove_as
from tests.registry.checks import no_secrets

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


class Tiny:
    """A namespace of two package-less images; builds share one XDG cache (one stage extraction)."""

    def __init__(self, identity, tmp: Path, repo: Path, world_env: dict, registry, cert_dir: Path):
        self.identity, self.tmp = identity, tmp
        self.ns = tmp / "tiny"
        world = (REPO / "examples" / "world" / "chrootforge.toml").read_text()
        (self.ns / "one").mkdir(parents=True)
        (self.ns / "two").mkdir()
        (self.ns / "chrootforge.toml").write_text(
            world.replace('path = "../repo"', f'path = "{repo}"').replace('name = "world"', 'name = "tiny"')
        )
        (self.ns / "one" / "image.toml").write_text('description = "one"\nparent = "scratch"\n')
        (self.ns / "two" / "image.toml").write_text('description = "two"\nparent = "one"\n')
        self.env = {**world_env, "XDG_CACHE_HOME": str(tmp / "cache"), "HOME": str(tmp)}
        self.cache = f"docker://{registry.host}/tiny{secrets.token_hex(4)}-cache"
        self.auth = ["--cert-dir", str(cert_dir), "--creds", f"{USER}:{PASSWORD}"]

    def build(self, layout: str, *flags: str):
        proc = self.identity.cf(
            "build",
            "--json",
            "--layout",
            str(self.tmp / layout),
            *flags,
            str(self.ns),
            env=self.env,
            timeout=600,
        )
        no_secrets(proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
        return proc, {r["image"]: r for r in report["images"]} if report else None

    def state(self, layout: str, image: str) -> dict:
        return json.loads((self.tmp / f"{layout}.build" / "state" / f"{image}.json").read_text())

    def push(self, layout: str, image: str, dest: str):
        proc = self.identity.cf(
            "push",
            f"{self.tmp / layout}:localhost/chrootforge/{image}:latest",
            dest,
            *self.auth,
            env=self.env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr

    def entry(self, key: str) -> str:
        return f"{self.cache}:cf-{key.split(':')[1]}"


@pytest.fixture(scope="module")
def tiny(world_inputs, world_repo, htpasswd_registry, cert_dirs):
    identity = get_identity("user")
    tmp = identity.mkdtemp("tiny.")
    t = Tiny(identity, tmp, world_repo, world_inputs.env(), htpasswd_registry, cert_dirs["ca"])
    import os

    if os.getuid() == 0:
        for path in [t.ns, *t.ns.rglob("*")]:
            os.chown(path, identity.uid, identity.gid)
    yield t
    remove_as(identity, tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def test_an_unreachable_cache_is_a_notice_and_a_normal_build(tiny):
    proc, images = tiny.build(
        "down",
        "--remote-cache",
        f"docker://127.0.0.1:{free_port()}/cache",
        "--tls-verify=false",
        "--retry-times",
        "0",
        "--timeout",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert {name: r["status"] for name, r in images.items()} == {"one": "built", "two": "built"}
    assert proc.stderr.count("chrootforge: notice: one: the remote cache") == 1
    assert "cannot be read" in proc.stderr and "building it" in proc.stderr
    assert images["two"]["cache"].startswith("not stored: ")
    assert proc.stderr.count("WARNING: two: could not store it in the remote cache") == 1


def test_an_entry_without_build_state_is_refused_then_replaced(tiny):
    proc, plain = tiny.build("plain")  # no --push/--remote-cache: the layout's images carry no state
    assert proc.returncode == 0, proc.stderr
    key_one = tiny.state("plain", "one")["key"]
    tiny.push("plain", "one", tiny.entry(key_one))  # a cache entry lacking the state

    proc, images = tiny.build("d", "--remote-cache", tiny.cache, *tiny.auth)
    assert proc.returncode == 0, proc.stderr
    assert "one: remote cache entry" in proc.stderr and "refused: it carries no build state" in proc.stderr
    assert {name: (r["status"], r["cache"]) for name, r in images.items()} == {
        "one": ("built", "stored"),
        "two": ("built", "stored"),
    }
    assert images["one"]["digest"] == plain["one"]["digest"]

    proc, again = tiny.build("e", "--remote-cache", tiny.cache, *tiny.auth)  # the replaced entry serves
    assert proc.returncode == 0, proc.stderr
    assert {name: r["status"] for name, r in again.items()} == {"one": "pulled", "two": "pulled"}
    assert {n: r["digest"] for n, r in again.items()} == {n: r["digest"] for n, r in images.items()}
    assert tiny.state("e", "two")["records"] == tiny.state("d", "two")["records"]


def test_an_entry_holding_another_image_is_refused(tiny):
    proc, d = tiny.build("d2", "--remote-cache", tiny.cache, *tiny.auth)
    assert proc.returncode == 0, proc.stderr
    key_two = tiny.state("d2", "two")["key"]
    tiny.push("d2", "one", tiny.entry(key_two))  # two's tag now names one's image (with one's state)
    proc, images = tiny.build("f", "--remote-cache", tiny.cache, *tiny.auth)
    assert proc.returncode == 0, proc.stderr
    assert images["one"]["status"] == "pulled"
    assert images["two"]["status"] == "built"
    assert "two: remote cache entry" in proc.stderr and "its config says build key" in proc.stderr
    assert images["two"]["digest"] == d["two"]["digest"] != d["one"]["digest"]  # the right image
    index = json.loads((tiny.tmp / "f" / "index.json").read_text())
    tagged = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
        if "org.opencontainers.image.ref.name" in m.get("annotations", {})
    }
    assert tagged["localhost/chrootforge/two:latest"] == d["two"]["digest"]


def test_march_native_is_the_builders_cpu_in_the_key(tiny):
    """-march=native is asked of the builder's gcc once per stage and CPU (memoized), and what it
    answers is part of the key: another CPU's answer makes the same spec another build."""
    import subprocess

    toml = tiny.ns / "chrootforge.toml"
    saved = toml.read_text()
    try:
        toml.write_text(saved.replace('CFLAGS = "-O2 -pipe"', 'CFLAGS = "-O2 -pipe -march=native"'))
        proc, images = tiny.build("native")
        assert proc.returncode == 0, proc.stderr
        key = tiny.state("native", "one")["key"]
        line = next(x for x in proc.stderr.splitlines() if x.startswith("-march=native is "))
        host = subprocess.run(
            ["gcc", "-march=native", "-Q", "--help=target"], capture_output=True, text=True, check=False
        )
        if (
            host.returncode == 0
            and "12."
            in subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True, check=False).stdout
        ):
            from chrootforge.gentoo.native_cpu import parse_target_help

            # the world stage's gcc is Debian 12's, like this host's: the same answer
            assert parse_target_help(host.stdout).fingerprint() in line
        memo_file = tiny.tmp / "cache" / "chrootforge" / "native-cpu.json"
        memo = json.loads(memo_file.read_text())
        assert len(memo) == 1
        proc, again = tiny.build("native")
        assert "-march=native is" not in proc.stderr  # memoized
        assert {n: r["status"] for n, r in again.items()} == {"one": "up-to-date", "two": "up-to-date"}
        # the same stage on another CPU (as a runner of another type would see it): other keys
        (entry,) = memo.values()
        entry["arch"], entry["tune"] = "skylake", "skylake"
        memo_file.write_text(json.dumps(memo))
        proc, other = tiny.build("native")
        assert {n: r["status"] for n, r in other.items()} == {"one": "built", "two": "built"}
        assert tiny.state("native", "one")["key"] != key
        assert other["one"]["digest"] != images["one"]["digest"]  # the build key is in the image's labels
    finally:
        toml.write_text(saved)


def test_push_publishes_only_a_successful_build_and_a_failed_push_is_one_error(tiny, htpasswd_registry):
    import os

    ns = tiny.tmp / "tinypush"
    shutil.copytree(tiny.ns, ns)
    repo = f"push{secrets.token_hex(4)}"
    toml = ns / "chrootforge.toml"
    toml.write_text(
        toml.read_text().replace(
            "[output]\n", f'[output]\nregistry = "docker://{htpasswd_registry.host}/{repo}"\n'
        )
    )
    (ns / "bad").mkdir()
    (ns / "bad" / "boom.sh").write_text("echo boom; exit 3\n")
    (ns / "bad" / "image.toml").write_text('parent = "one"\n[hooks]\nconfigure_rootfs = ["boom.sh"]\n')
    if os.getuid() == 0:
        for path in [ns, *ns.rglob("*")]:
            os.chown(path, tiny.identity.uid, tiny.identity.gid)

    def build(*flags):
        proc = tiny.identity.cf(
            "build",
            "--json",
            "--layout",
            str(tiny.tmp / "pushed"),
            *flags,
            str(ns),
            env=tiny.env,
            timeout=600,
        )
        no_secrets(proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        return proc, json.loads(proc.stdout)

    before = len(htpasswd_registry.access_log("PUT", "/manifests/"))
    proc, report = build("--push", *tiny.auth)
    assert proc.returncode == 1 and not report["ok"]
    statuses = {r["image"]: r["status"] for r in report["images"]}
    assert statuses["bad"] == "failed" and statuses["two"] == "built"  # a failure skips only its children
    assert "nothing pushed: the build failed" in proc.stderr
    assert all(r["pushed"] == [] for r in report["images"])
    assert len(htpasswd_registry.access_log("PUT", "/manifests/")) == before  # not one manifest
    shutil.rmtree(ns / "bad")
    proc, report = build("--push", "--cert-dir", tiny.auth[1], "--creds", f"{USER}:wrong-password")
    assert proc.returncode == 1 and not report["ok"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("chrootforge: error: ")]
    assert len(errors) == 1 and "one" not in errors[0].split("error:")[0], proc.stderr
    # (two, a sibling of bad, was built despite bad's failure; the push of one fails first)
    assert {r["image"]: r["status"] for r in report["images"]} == {"one": "up-to-date", "two": "up-to-date"}
    assert all(r["pushed"] == [] for r in report["images"])
    proc, report = build("--push", *tiny.auth)
    assert proc.returncode == 0, proc.stderr
    assert [p["reference"] for r in report["images"] for p in r["pushed"]] == [
        f"docker://{htpasswd_registry.host}/{repo}/{image}:latest" for image in ("one", "two")
    ]


def test_a_pushing_runner_and_a_plain_one_share_the_cache(tiny, htpasswd_registry):
    """Issue 18: `[output] registry` (and another prefix and tags) changed every build key and
    digest, so a runner that pushes and one that does not never met in the remote cache. Now the
    plain runner pulls what the pushing one stored: the same keys, the same images."""
    import os

    ns = tiny.tmp / "tinyreg"
    shutil.copytree(tiny.ns, ns)
    toml = ns / "chrootforge.toml"
    toml.write_text(
        toml.read_text()
        .replace(
            "[output]\n",
            f'[output]\nregistry = "docker://{htpasswd_registry.host}/reg{secrets.token_hex(4)}"\n',
        )
        .replace('prefix = "localhost/chrootforge"', 'prefix = "registry.example.com/elsewhere"')
        .replace('tags = ["latest"]', 'tags = ["v1"]')
    )
    if os.getuid() == 0:
        for path in [ns, *ns.rglob("*")]:
            os.chown(path, tiny.identity.uid, tiny.identity.gid)
    cache = f"docker://{htpasswd_registry.host}/shared{secrets.token_hex(4)}-cache"
    pusher = tiny.identity.cf(
        "build",
        "--json",
        "--layout",
        str(tiny.tmp / "pusher"),
        "--push",
        "--remote-cache",
        cache,
        *tiny.auth,
        str(ns),
        env=tiny.env,
        timeout=600,
    )
    assert pusher.returncode == 0, pusher.stderr
    pushed = {r["image"]: r for r in json.loads(pusher.stdout)["images"]}
    assert {n: (r["status"], r["cache"]) for n, r in pushed.items()} == {
        "one": ("built", "stored"),
        "two": ("built", "stored"),
    }
    proc, plain = tiny.build("plainrunner", "--remote-cache", cache, *tiny.auth)
    assert proc.returncode == 0, proc.stderr
    assert {n: r["status"] for n, r in plain.items()} == {"one": "pulled", "two": "pulled"}
    assert {n: r["digest"] for n, r in plain.items()} == {n: r["digest"] for n, r in pushed.items()}
    for image in ("one", "two"):
        assert tiny.state("plainrunner", image)["key"] == tiny.state("pusher", image)["key"]
