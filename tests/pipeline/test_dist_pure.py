"""Distribution in the build, the pure parts: cache tags and references, the build state carried as a
referrer (and what a hostile cache could put in it), the binhost's index/paths/config, -march=native
in the keys, and the up-front checks of --push, --remote-cache and --binhost. No sandbox, no network."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chrootforge.build import engine as build
from chrootforge.build.distribution import DistOptions, Distribution
from chrootforge.build.remotecache import cache_tag, parse_cache_ref
from chrootforge.errors import UsageError
from chrootforge.gentoo import binhost as bh
from chrootforge.gentoo import state_referrer
from chrootforge.gentoo.inputs import Inputs, binpkg_key, package_env_of
from chrootforge.gentoo.native_cpu import NativeCpu, parse_target_help, project_uses_native, uses_native
from chrootforge.gentoo.plan import plan_image
from chrootforge.gentoo.state import ImageState
from chrootforge.spec.graph import load_project
from chrootforge.spec.namespace import load_namespace

KEY = "sha256:" + "ab" * 32


# -- remote cache references -------------------------------------------------------------------------
def test_cache_tag_is_the_key_hex():
    assert cache_tag(KEY) == "cf-" + "ab" * 32
    assert len(cache_tag(KEY)) <= 128
    with pytest.raises(ValueError):
        cache_tag("md5:abc")


def test_remote_cache_reference_names_a_repository_only():
    ref = parse_cache_ref("docker://registry.example.com:5000/ci/cache")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "registry.example.com:5000",
        "ci/cache",
        None,
        None,
    )
    for bad in (
        "docker://registry.example.com/ci/cache:latest",
        "docker://registry.example.com/c@sha256:" + "0" * 64,
        "registry.example.com/ci/cache",
        "docker://cache",
    ):
        with pytest.raises(UsageError):
            parse_cache_ref(bad)


# -- the build state as a referrer -------------------------------------------------------------------
def _state(**changes) -> ImageState:
    state = ImageState(
        image="hello",
        key=KEY,
        manifest_digest="sha256:" + "cd" * 32,
        tags=["localhost/w/hello:latest"],
        records=[
            {
                "category": "app-misc",
                "name": "hello",
                "version": "1.0-r1",
                "use": ["ipv6"],
                "iuse": ["ipv6", "static"],
                "slot": "0",
                "repository": "cfworld",
                "license": "|| ( MIT GPL-2 )",
                "homepage": "https://x.invalid",
                "description": "Hello, world",
                "image": "hello",
            }
        ],
        own=["app-misc/hello-1.0-r1"],
        provided=["dev-lang/perl", "sys-apps/busybox-1.36"],
        builder_files=[
            {
                "path": "/usr/lib64/libgcc_s.so.1",
                "source": "/usr/lib/gcc/libgcc_s.so.1",
                "package": "sys-devel/gcc-13.2.1",
                "license": "GPL-3+",
                "sha1": "1" * 40,
                "sha256": "2" * 64,
                "image": "glibc",
            }
        ],
        size=1234,
        layers=4,
        seconds=9.5,
        sources={"stage3": "file:///home/me/stage3.tar.xz"},
    )
    return dataclasses.replace(state, **changes)


def test_state_round_trip_holds_content_only():
    data = state_referrer.encode(_state())
    assert b"/home/me" not in data and b"seconds" not in data  # no location, no time
    assert state_referrer.encode(_state(seconds=1.0, sources={})) == data  # the same on every runner
    got = state_referrer.decode(data, "hello", KEY)
    want = _state()
    assert got == {
        "records": [{**want.records[0], "use": ["ipv6"], "iuse": ["ipv6", "static"]}],
        "own": want.own,
        "provided": want.provided,
        "builder_files": want.builder_files,
        "size": 1234,
        "layers": 4,
    }


def _doc(**changes) -> bytes:
    doc = json.loads(state_referrer.encode(_state()))
    doc.update(changes)
    return json.dumps(doc).encode()


def _record(**changes) -> dict:
    return {**_state().records[0], **changes}


def _file(**changes) -> dict:
    return {**_state().builder_files[0], **changes}


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\x00not json", "the build state is not valid JSON"),
        (
            b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "the build state nests deeper than 64 levels",
        ),
        (b"[]", "format"),
        (_doc(format=2), "format"),
        (_doc(key="sha256:" + "00" * 32), "not hello with"),
        (_doc(image="glibc"), "not hello with"),
        (_doc(records={"a": 1}), "records is not a list"),
        (_doc(records=[_record(version="1.0\nsys-apps/evil-1")]), "record version"),
        (_doc(records=[_record(category="../etc")]), "category"),
        (_doc(records=[_record(extra="x")]), "other fields"),
        (_doc(records=[_record(use=["ok", "bad flag"])]), "use flag"),
        (_doc(records=[_record(slot="0\n")]), "slot"),
        (_doc(records=[_record(repository="cfworld\n")]), "repository"),
        (_doc(records=[_record(description="line\nbreak")]), "description"),
        (_doc(own=["not-a-cpv"]), "own"),
        (_doc(provided=[">=dev-lang/perl-5"]), "provided entry"),
        (_doc(provided=["dev-lang/perl\nsys-libs/glibc"]), "provided entry"),
        (_doc(builder_files=[_file(path="/usr/lib/../../etc/shadow")]), "runtime_libs path"),
        (_doc(builder_files=[_file(path="relative.so")]), "runtime_libs path"),
        (_doc(builder_files=[_file(sha256="zz")]), "runtime_libs sha256"),
        (_doc(builder_files=[{**_file(), "mode": 4755}]), "other fields"),
        (_doc(size=True), "size is not a count"),
        (_doc(layers=-1), "layers is not a count"),
        (b" " * (state_referrer.MAX_SIZE + 1), "more than"),
    ],
)
def test_hostile_state_is_refused(data, why):
    with pytest.raises(state_referrer.BadState, match=why):
        state_referrer.decode(data, "hello", KEY)


# -- the binhost -------------------------------------------------------------------------------------
INDEX = """\
ARCH: amd64
CHOST: x86_64-pc-linux-gnu
PACKAGES: 3
TIMESTAMP: 1700000000
VERSION: 0

BUILD_ID: 1
CPV: app-misc/hello-1.0
MD5: 97c8f787e7142027d915fbcced6d8012
PATH: app-misc/hello/hello-1.0-1.gpkg.tar
SHA1: acaab4de5bce34977ba4b6877e87421a669f7b7e
SIZE: 20480

CPV: sys-apps/old-1
SIZE: 100

CPV: sys-apps/evil-1
PATH: ../../../etc/passwd
SHA1: acaab4de5bce34977ba4b6877e87421a669f7b7e
SIZE: 10
"""

# what `emerge --fetchonly --pretend --getbinpkg` printed for the test world (portage 3.0.83)
PRETEND = f"""
These are the packages that would be fetched, in order:

Calculating dependencies ... done!
Dependency resolution took 0.03 s (backtrack: 0/20).


file://{bh.MOUNT}/acct-group/hello/hello-0-1.gpkg.tar

file://{bh.MOUNT}/app-misc/hello/hello-1.0-1.gpkg.tar
https://example.invalid/distfiles/hello-1.0.tar.gz
"""


def test_index_entries_by_path():
    entries = bh.parse_index(INDEX)
    assert set(entries) == {"app-misc/hello/hello-1.0-1.gpkg.tar", "../../../etc/passwd"}  # no PATH: left out
    hello = entries["app-misc/hello/hello-1.0-1.gpkg.tar"]
    assert hello.size == 20480 and hello.digests == {
        "md5": "97c8f787e7142027d915fbcced6d8012",
        "sha1": "acaab4de5bce34977ba4b6877e87421a669f7b7e",
    }
    assert bh.check_entry(hello) is None
    assert "leaves the binhost directory" in bh.check_entry(entries["../../../etc/passwd"])
    assert "no digest" in bh.check_entry(dataclasses.replace(hello, digests={}))
    assert "malformed" in bh.check_entry(dataclasses.replace(hello, digests={"sha1": "x'; rm -rf /"}))
    with pytest.raises(bh.BadIndex):
        bh.parse_index("<html>404</html>")
    with pytest.raises(bh.BadIndex):
        bh.parse_index("")


@pytest.mark.parametrize(
    "path, ok",
    [
        ("app-misc/hello/hello-1.0-1.gpkg.tar", True),
        ("sys-libs/glibc-2.38-r10-3.gpkg.tar", True),
        ("/etc/passwd", False),
        ("a/../../b", False),
        ("..", False),
        ("a//b", False),
        ("a/.hidden", False),
        ("a b/c", False),
        ("a\nb", False),
        ("a/b\n", False),
        ("", False),
        ("a/" * 600 + "b", False),
    ],
)
def test_binhost_paths_stay_inside(path, ok):
    assert bh.safe_path(path) is ok


def test_pretend_output_names_the_binary_packages_only():
    assert bh.wanted_paths(PRETEND) == [
        "acct-group/hello/hello-0-1.gpkg.tar",
        "app-misc/hello/hello-1.0-1.gpkg.tar",
    ]
    argv = ["emerge", "--buildpkg", "--usepkg", "app-misc/hello"]
    assert bh.pretend_argv(argv)[:4] == ["emerge", "--fetchonly", "--pretend", "--getbinpkg"]
    assert bh.pretend_argv(argv)[-1] == "app-misc/hello" and "--quiet" not in bh.pretend_argv(argv)
    assert bh.with_getbinpkg(argv) == ["emerge", "--getbinpkg", "--buildpkg", "--usepkg", "app-misc/hello"]
    assert bh.key_url("https://h.example/bin/", "abc") == "https://h.example/bin/abc/"


def test_binhost_config_replaces_the_stages_binrepos(ns):
    ns.write(
        "chrootforge.toml",
        ns.root.joinpath("chrootforge.toml").read_text()
        + '[build]\nbinhost = "https://binhost.example.com/cf"\n',
    )
    ns.image("a", 'parent = "scratch"\npackages = ["app-misc/hello"]\n')
    project, _ = load_project(ns.root, ["a"])
    plan = plan_image(project, "a", None)
    conf = plan.portage.files["binrepos.conf"]
    assert f"sync-uri = file://{bh.MOUNT}" in conf and f"location = {bh.DOWNLOADS}" in conf
    assert "verify-signature = false" in conf
    script = plan.portage.install_script()
    assert script.index("mv binrepos.conf binrepos.conf.cf-stage") < script.index("cp -R")
    assert plan.binhost == "https://binhost.example.com/cf"
    text = build.plan([str(ns.root / "a")])
    assert "binhost: https://binhost.example.com/cf/<binpkgs key>/" in text and "--getbinpkg" in text
    # without a binhost: no binrepos.conf, nothing moved, no --getbinpkg
    text = build.plan([str(ns.root / "a")], dist=None)
    ns.write(
        "chrootforge.toml",
        ns.root.joinpath("chrootforge.toml")
        .read_text()
        .replace('binhost = "https://binhost.example.com/cf"\n', ""),
    )
    project, _ = load_project(ns.root, ["a"])
    plan = plan_image(project, "a", None)
    assert "binrepos.conf" not in plan.portage.files and "binrepos" not in plan.portage.install_script()
    assert "--getbinpkg" not in build.plan([str(ns.root / "a")])
    assert "--getbinpkg" in build.plan(
        [str(ns.root / "a")], dist=DistOptions(binhost="http://127.0.0.1:8000/")
    )


# -- -march=native and the keys -----------------------------------------------------------------------
TARGET_HELP = """\
The following options are target specific:
  -m128bit-long-double        \t\t[enabled]
  -m32                        \t\t[disabled]
  -m64                        \t\t[enabled]
  -mabi=                      \t\tsysv
  -madx                       \t\t[enabled]
  -march=                     \t\tznver3
  -mavx2                      \t\t[enabled]
  -mavx512f                   \t\t[disabled]
  -mcpu=                      \t\t
  -mtune=                     \t\tznver3
"""


def test_gcc_target_help_is_parsed():
    cpu = parse_target_help(TARGET_HELP)
    assert (cpu.arch, cpu.tune, cpu.cpu) == ("znver3", "znver3", "")
    assert cpu.enabled == ("-m128bit-long-double", "-m64", "-madx", "-mavx2")
    assert cpu.resolve("-O2 -march=native -mtune=native -pipe") == "-O2 -march=znver3 -mtune=znver3 -pipe"
    assert cpu.resolve("-march=nativeish") == "-march=nativeish"
    masked = parse_target_help(
        TARGET_HELP.replace(
            "-mavx2                      \t\t[enabled]", "-mavx2                      \t\t[disabled]"
        )
    )
    assert (
        masked.arch == cpu.arch and masked.fingerprint() != cpu.fingerprint()
    )  # same name, fewer ISA options
    assert NativeCpu.from_json(cpu.to_json()) == cpu
    with pytest.raises(ValueError):
        parse_target_help(TARGET_HELP.replace("znver3", "native"))
    with pytest.raises(ValueError):
        parse_target_help("gcc: error: unrecognized command-line option")


def test_which_values_use_native(ns):
    assert uses_native("-O2 -march=native") and uses_native("-mcpu=native -O2")
    assert not uses_native("-march=x86-64-v3") and not uses_native("-march=native2")
    ns.image("a", 'parent = "scratch"\n[package."app-misc/hello"]\nenv = { CFLAGS = "-O3 -march=native" }\n')
    ns.image("b", 'parent = "scratch"\n')
    assert project_uses_native(load_project(ns.root, ["a"])[0])
    assert not project_uses_native(load_project(ns.root, ["b"])[0])


def _with_make_conf(ns, **values) -> None:
    lines = "".join(f'{k} = "{v}"\n' for k, v in values.items())
    text = ns.root.joinpath("chrootforge.toml").read_text().split("[make_conf]")[0]
    ns.write("chrootforge.toml", text + "[make_conf]\n" + lines)


def _keys(ns, native: NativeCpu | None = None) -> tuple[str, str, str]:
    """(build key, binpkgs key, binpkgs key of an image with its own package.env)."""
    project, _ = load_project(ns.root, None)
    inputs = Inputs("stage3.tar.xz:abc", "tree", None, native=native)
    image = project.images["b"]
    return (
        build.image_key(project, "b", "sha256:parent", inputs),
        binpkg_key(project.namespace, inputs),
        binpkg_key(project.namespace, inputs, package_env_of(image)),
    )


def test_compiler_settings_separate_keys(ns):
    """Builds that differ in CHOST, CFLAGS or -march never share a build key (cache tag) or a
    binpkgs key (binpkgs directory, binhost directory); equal settings always do."""
    ns.image("b", 'parent = "scratch"\n[package."app-misc/hello"]\nenv = { CFLAGS = "-O2 -march=native" }\n')
    seen = {}
    for name, values in {
        "base": {"CFLAGS": "-O2 -pipe"},
        "chost": {"CFLAGS": "-O2 -pipe", "CHOST": "x86_64-gentoo-linux-musl"},
        "cflags": {"CFLAGS": "-O3 -pipe"},
        "march1": {"CFLAGS": "-O2 -pipe -march=x86-64-v2"},
        "march2": {"CFLAGS": "-O2 -pipe -march=x86-64-v3"},
    }.items():
        _with_make_conf(ns, **values)
        seen[name] = _keys(ns)
        assert _keys(ns) == seen[name]  # stable
    for i, (build_key, pkg_key, _) in enumerate(seen.values()):
        others = list(seen.values())[i + 1 :]
        assert all(build_key != o[0] and pkg_key != o[1] for o in others)


def test_native_enters_the_keys_resolved(ns):
    ns.image("b", 'parent = "scratch"\n[package."app-misc/hello"]\nenv = { CFLAGS = "-O2 -march=native" }\n')
    _with_make_conf(ns, CFLAGS="-O2 -pipe -march=native")
    zen = parse_target_help(TARGET_HELP)
    zen_masked = dataclasses.replace(zen, enabled=zen.enabled[:-1])
    skylake = parse_target_help(TARGET_HELP.replace("znver3", "skylake"))
    keys = {cpu.fingerprint(): _keys(ns, cpu) for cpu in (zen, zen_masked, skylake)}
    assert len({k[0] for k in keys.values()}) == 3  # build keys: one per CPU
    assert len({k[1] for k in keys.values()}) == 3  # binpkgs keys
    assert len({k[2] for k in keys.values()}) == 3  # the image's own package.env binpkgs keys
    assert _keys(ns, zen) == keys[zen.fingerprint()]  # the same CPU: the same keys
    # what enters the binpkgs key is the concrete name, never the word "native"
    _with_make_conf(ns, CFLAGS="-O2 -pipe -march=znver3")
    assert _keys(ns, zen)[1] != _keys(ns, None)[1]  # (native's ISA digest is part of it)


# -- the up-front checks ------------------------------------------------------------------------------
def test_registry_and_binhost_keys_are_checked_at_their_line(ns):
    base = ns.root.joinpath("chrootforge.toml").read_text()
    for table, line, hint in (
        ("output", 'registry = "docker://registry.example.com/team:v1"', "docker://HOST"),
        ("output", 'registry = "registry.example.com/team"', "docker://"),
        ("build", 'binhost = "ftp://binhost.example.com/"', "http"),
        ("build", 'binhost = "https://user:secret@binhost.example.com/"', "netrc"),
    ):
        path = ns.write("chrootforge.toml", f"{base}[{table}]\n{line}\n")
        with pytest.raises(UsageError) as info:
            load_namespace(ns.root)
        text = info.value.render()
        assert f"{path}:{len(base.splitlines()) + 2}:" in text and hint in text
        assert "secret" not in text
    ns.write(
        "chrootforge.toml",
        f'{base}[output]\nregistry = "docker://registry.example.com:5000/team"\n'
        '[build]\nbinhost = "file:///srv/binpkgs"\n',
    )
    loaded = load_namespace(ns.root)
    assert (loaded.registry, loaded.binhost) == (
        "docker://registry.example.com:5000/team",
        "file:///srv/binpkgs",
    )


def test_distribution_options_are_checked_before_any_work(ns, tmp_path):
    ns.image("a", 'parent = "scratch"\n')
    project, _ = load_project(ns.root, None)
    layout = tmp_path / "layout"
    assert Distribution.prepare(None, project, layout) is None
    assert Distribution.prepare(DistOptions(), project, layout) is None
    with pytest.raises(UsageError, match="needs a registry") as info:
        Distribution.prepare(DistOptions(push=True), project, layout)
    assert "[output] registry" in info.value.hint
    with pytest.raises(UsageError, match="names a tag"):
        Distribution.prepare(DistOptions(remote_cache="docker://r.example.com/cache:x"), project, layout)
    with pytest.raises(UsageError, match="--binhost"):
        Distribution.prepare(DistOptions(binhost="rsync://h/x"), project, layout)
    assert not layout.exists()  # nothing was written
    dist = Distribution.prepare(
        DistOptions(remote_cache="docker://r.example.com/ci/cache", binhost="http://127.0.0.1:1/"),
        project,
        layout,
    )
    assert dist is not None and project.namespace.binhost == "http://127.0.0.1:1/"


def test_push_destinations(ns, tmp_path):
    ns.write(
        "chrootforge.toml",
        ns.root.joinpath("chrootforge.toml").read_text()
        + '[output]\nregistry = "docker://registry.example.com:5000/team"\ntags = ["1.0", "latest"]\n',
    )
    ns.image("a", 'parent = "scratch"\n')
    from chrootforge.build.publish import destination

    project, _ = load_project(ns.root, None)
    assert (
        Distribution.prepare(DistOptions(push=True), project, tmp_path / "l").registry
        == "docker://registry.example.com:5000/team"
    )
    assert (
        str(destination("docker://registry.example.com:5000/team/", "a", "1.0"))
        == "docker://registry.example.com:5000/team/a:1.0"
    )
    assert (
        str(destination("docker://registry.example.com", "a", "latest"))
        == "docker://registry.example.com/a:latest"
    )


# -- what a remote cache entry must be before it reaches the layout -----------------------------------
def _pulled(
    labels: dict | None = None,
    states: list[bytes] = (),
    state_size: int | None = None,
    config: bytes | None = None,
):
    from chrootforge.registry import Pulled

    blobs = {}

    def put(data: bytes) -> dict:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    cfg = (
        config
        if config is not None
        else json.dumps(
            {"config": {"Labels": {"org.chrootforge.build.engine-key": KEY} if labels is None else labels}}
        ).encode()
    )
    manifest = {
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(cfg)},
        "layers": [
            {"digest": "sha256:" + "1" * 64, "size": 100},
            {"digest": "sha256:" + "2" * 64, "size": 23},
        ],
    }
    referrers = [({"artifactType": "application/spdx+json"}, {"layers": [put(b"{}")]})]
    for data in states:
        layer = put(data)
        if state_size is not None:
            layer["size"] = state_size
        referrers.append(({"artifactType": state_referrer.ARTIFACT_TYPE}, {"layers": [layer]}))

    def read_blob(digest: str, limit: int) -> bytes:
        if len(blobs[digest]) > limit:
            raise ValueError("too large")
        return blobs[digest]

    return Pulled("sha256:" + "cd" * 32, manifest, referrers, read_blob)


def test_a_cache_entry_is_checked_before_publication():
    from chrootforge.build.remotecache import Refused, _Check

    good = state_referrer.encode(_state())
    check = _Check("hello", KEY)
    check(_pulled(states=[good]))
    assert check.state["own"] == ["app-misc/hello-1.0-r1"] and (check.size, check.layers) == (123, 2)
    for pulled, why in (
        (_pulled(states=[]), "carries no build state"),
        (_pulled(states=[good, good]), "2 build states"),
        (_pulled(labels={}, states=[good]), "its config says build key None"),
        (
            _pulled(labels={"org.chrootforge.build.engine-key": "sha256:" + "00" * 32}, states=[good]),
            "its config says build key sha256:0000",
        ),
        (_pulled(config=b"[1, 2]", states=[good]), "not an image config"),
        (_pulled(config=b"\xff", states=[good]), "not an image config"),
        (_pulled(states=[good], state_size=state_referrer.MAX_SIZE + 1), "one small JSON layer"),
        (_pulled(states=[_doc(key="sha256:" + "00" * 32)]), "not hello with"),
        (_pulled(states=[_doc(provided=["x\ny"])]), "provided entry"),
    ):
        with pytest.raises(Refused, match=why):
            _Check("hello", KEY)(pulled)
