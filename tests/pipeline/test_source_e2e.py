"""examples/source end to end: compiled from upstream tarballs on the test world's stage, as root and
as the test user, reproducible, and run under podman.

Each identity builds the namespace cold (the module-scoped fixture): its own copy of the namespace,
its own cache (so every package is compiled, once per identity) and its own layout, with
SOURCE_DATE_EPOCH unset (the epoch then comes from the stage). The user's build starts at least a
minute after root's and runs with umask 077, TZ=Pacific/Kiritimati and LANG=fr_FR.UTF-8: the two
builds must still give the same manifest digests (on a difference, diffoscope says what differs).
One more image, `probe`, compiles app-misc/hello with a bashrc and a hook that print what an ebuild
phase and a hook see (the epoch, TZ, the locale, umask, host and domain name, the flags, whether
${CHOST}-ar is deterministic). Root's build is then repeated from its binary packages into another
layout: the same digests again. Last, images that cannot start must not build.
"""

from __future__ import annotations

import calendar
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.identity import get_identity
from tests.helpers.world_build import LayoutView, WorldBuild, namespace, own

pytestmark = pytest.mark.slow
IMAGES = ("busybox", "glibc", "hello", "nginx", "skalibs", "skahello")  # examples/source
DEPTH = {"busybox": 1, "glibc": 2, "hello": 3, "nginx": 3, "skalibs": 3, "skahello": 4, "probe": 3}
PREFIX = "localhost/chrootforge/source"  # examples/source: [output] prefix
# each compiled once per identity, never twice (a library that is a build and a runtime dependency
# is built into the builder and taken from its binary package for the image)
COMPILED = (
    "sys-apps/busybox",
    "app-misc/gnu-hello",
    "sys-libs/zlib",
    "dev-libs/libpcre2",
    "www-servers/nginx",
    "dev-libs/skalibs",
    "app-misc/skahello",
    "app-misc/hello",
)
# The user's build runs in another environment than root's; none of it may reach the images.
USER_ENV = {"TZ": "Pacific/Kiritimati", "LANG": "fr_FR.UTF-8", "LC_ALL": "fr_FR.UTF-8"}
USER_UMASK = "077"
BUILDS: dict[str, WorldBuild] = {}  # each identity's build, for the comparison

PROBE_BASHRC = r"""
if [[ ${EBUILD_PHASE} == compile ]]; then
	cf_ar=$T/cf-ar; mkdir -p "$cf_ar"; echo member > "$cf_ar/m.o"
	touch -d @1 "$cf_ar/m.o"; "${CHOST}-ar" rc "$cf_ar/a.a" "$cf_ar/m.o"
	touch -d @2 "$cf_ar/m.o"; "${CHOST}-ar" rc "$cf_ar/b.a" "$cf_ar/m.o"
	cmp -s "$cf_ar/a.a" "$cf_ar/b.a" && cf_det=yes || cf_det=no
	echo "CFPROBE phase SDE=${SOURCE_DATE_EPOCH:-unset} TZ=${TZ:-unset} LC_ALL=${LC_ALL:-unset}" \
		"LANG=${LANG:-unset} umask=$(umask) host=$(uname -n)" \
		"domain=$(cat /proc/sys/kernel/domainname) ar-deterministic=${cf_det}"
	echo "CFPROBE cflags ${CFLAGS}"
fi
"""
PROBE_SPEC = """\
# test only: compiles app-misc/hello with a bashrc that prints what its phases see
parent = "glibc"
packages = ["app-misc/hello"]

[hooks]
configure_builder = ["bashrc.sh"]
configure_rootfs = ["env.sh"]
"""
PROBE_HOOK = (
    'echo "CFPROBE hook SDE=${SOURCE_DATE_EPOCH:-unset} TZ=${TZ:-unset} LC_ALL=${LC_ALL:-unset}'
    ' LANG=${LANG:-unset} umask=$(umask) host=$(uname -n) domain=$(cat /proc/sys/kernel/domainname)"\n'
)


def make_namespace(tmp: Path, repo: Path) -> Path:
    """examples/source with the tree at `repo` (a session copy of examples/repo), plus the probe."""
    bashrc = "cat >> /etc/portage/bashrc <<'CFEOF'\n" + PROBE_BASHRC + "CFEOF\n"
    probe = {"probe/image.toml": PROBE_SPEC, "probe/bashrc.sh": bashrc, "probe/env.sh": PROBE_HOOK}
    return namespace(tmp, repo, "source", files=probe)


def build_epoch(built: WorldBuild) -> int:
    """The epoch the images were made at (their configs' `created`)."""
    return calendar.timegm(time.strptime(built.config("busybox")["created"], "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture(scope="module", params=["root", "user"])
def built(request, world_inputs, world_repo) -> WorldBuild:
    identity = get_identity(request.param)
    if BUILDS:  # the other identity's build: this one starts at least a minute after it began
        wait = 60 - (time.monotonic() - min(b.started for b in BUILDS.values()))
        if wait > 0:
            time.sleep(wait)
    b = WorldBuild.prepare(
        identity,
        "source.",
        lambda tmp: make_namespace(tmp, world_repo),
        world_inputs,
        env=None if identity.is_root else USER_ENV,
        prefix=PREFIX,
        umask=None if identity.is_root else USER_UMASK,  # the user's chrootforge runs under umask 077
        cf_timeout=1800,
    )
    report = b.build(timeout=3600)
    print(f"\n[world timing] {identity.name}: cold build of examples/source: {report['seconds']:.1f}s")
    BUILDS[identity.name] = b
    b.to_podman((*IMAGES, "probe"))
    yield b
    b.close()  # the build itself stays for the comparison of the two (kept_builds)


@pytest.fixture(scope="module", autouse=True)
def kept_builds():
    """Both identities' builds stay until the module ends: the second is compared with the first."""
    yield
    for b in BUILDS.values():
        b.remove()
    BUILDS.clear()


# -- the build ---------------------------------------------------------------------------------
def test_every_image_built_from_source(built):
    results = {r["image"]: r for r in built.report["images"]}
    assert set(results) == {*IMAGES, "probe"}
    assert all(r["status"] == "built" for r in results.values())
    assert {name: r["layers"] for name, r in results.items()} == DEPTH
    # Each compile has a build log of its own (PORTAGE_LOGDIR; emerge.log repeats a lone job's
    # output): one log per compile, and each from-source package compiled once per identity.
    logs = "\n".join(
        p.read_text(errors="replace")
        for image in results
        for p in sorted(built.logdir(image).glob("packages/*.log"))
    )
    compiled = re.findall(r"^>>> Compiling source in /var/tmp/portage/([^/]+/[^/ ]+?)-\d", logs, re.MULTILINE)
    assert sorted(cp for cp in compiled if cp in COMPILED) == sorted(COMPILED), compiled


def test_the_epoch_and_fixed_environment_reach_phases_and_hooks(built):
    """An ebuild phase and a hook see the build's epoch (portage does not filter it), UTC, the C
    locale, umask 022, the sandbox's host and domain name, the build path mapped away in CFLAGS, and
    a deterministic ${CHOST}-ar: whatever the caller's environment (the user's is another)."""
    logs = built.logs("probe")
    epoch = build_epoch(built)
    # Portage itself gives a phase LC_ALL unset (LANG decides) and, with its network-sandbox, a UTS
    # namespace of its own named localhost.
    phase = f"SDE={epoch} TZ=UTC LC_ALL=unset LANG=C.UTF-8 umask=0022 host=localhost domain=(none)"
    hook = f"SDE={epoch} TZ=UTC LC_ALL=C.UTF-8 LANG=C.UTF-8 umask=0022 host=chrootforge domain=(none)"
    assert f"CFPROBE phase {phase} ar-deterministic=yes" in logs, logs[-3000:]
    assert f"CFPROBE hook {hook}" in logs, logs[-3000:]
    cflags = re.search(r"^CFPROBE cflags (.*)$", logs, re.MULTILINE).group(1)
    assert cflags.split()[-1] == "-ffile-prefix-map=/var/tmp/portage=."
    # busybox embeds the build date: the epoch's, not the clock's
    banner = built.run("busybox", "sh", "-c", "busybox | head -n 1").stdout
    assert time.strftime("(%Y-%m-%d %H:%M:%S UTC)", time.gmtime(epoch)) in banner, banner


def test_no_build_path_and_no_loader_state_in_the_images(built):
    """No file of any image names the build directory or a host path; ldconfig's auxiliary cache
    (inode numbers, ctimes) is never in a layer."""
    needles = (b"/var/tmp/portage", str(built.tmp).encode(), str(built.env["XDG_CACHE_HOME"]).encode())
    for image in IMAGES:
        for layer in built.manifest(image)["layers"]:
            for name, (_info, data) in built.layer_members(layer["digest"]).items():
                assert not name.startswith("var/cache/ldconfig"), f"{image}: {name}"
                for needle in needles:
                    assert needle not in data, f"{image}: /{name} contains {needle!r}"


def test_the_forced_flag_is_on_in_the_build(built):
    state = built.state("busybox")
    busybox = next(r for r in state["records"] if r["name"] == "busybox")
    assert {"make-symlinks", "static"} <= set(busybox["use"])


# -- running the images -------------------------------------------------------------------------
def test_busybox_is_static_on_an_empty_root(built):
    assert built.run("busybox", "sh", "-c", "echo ok-$((6*7))").stdout.strip() == "ok-42"
    names = built.top_layer_names("busybox")
    assert {"bin/busybox", "bin/sh", "etc/passwd"} <= names
    assert not any(re.match(r"(usr/)?lib(64)?/", n) for n in names)  # no C library: static
    binary = built.layer_members(built.manifest("busybox")["layers"][0]["digest"])["bin/busybox"][1]
    assert b"/lib64/ld-linux" not in binary  # no interpreter


def test_hello_runs_on_the_glibc_image(built):
    assert built.run("hello", "hello").stdout.strip() == "Hello, world!"


def test_a_library_of_the_parent_is_found_by_a_program_of_the_child(built):
    """skalibs (in /usr/lib64, a directory Debian's loader does not search by itself) sits in the
    parent; skahello, in the child, starts because /etc/ld.so.cache lists it."""
    assert built.run("skahello", "skahello", "podman").stdout.strip() == "Hello, podman, from skalibs! argc=2"
    assert "usr/lib64/libskarnet.so.2.13.1.1" in built.top_layer_names("skalibs")
    assert not any("libskarnet" in n for n in built.top_layer_names("skahello"))
    conf = built.run("skalibs", "cat", "/etc/ld.so.conf").stdout.splitlines()
    assert {"include ld.so.conf.d/*.conf", "/lib64", "/usr/lib64"} <= set(conf)
    assert "etc/ld.so.cache" in built.top_layer_names("skalibs")


def test_nginx_checks_its_config_and_answers_over_loopback(built):
    out = built.run("nginx", "nginx", "-t")
    assert "test is successful" in out.stderr
    page = built.run(
        "nginx",
        "sh",
        "-c",
        "nginx && wget -q -O - http://127.0.0.1/ && wget -S -O /dev/null http://127.0.0.1/ 2>&1",
    ).stdout
    assert "<title>Welcome to nginx!</title>" in page and "HTTP/1.1 200 OK" in page, page
    assert "Server: nginx/1.22.1" in page
    assert {"usr/lib64/libpcre2-8.so.0.11.2", "usr/lib64/libz.so.1.2.13"} <= built.top_layer_names("nginx")


# -- reproducibility ---------------------------------------------------------------------------
def test_zz_binary_packages_give_the_same_layers(built):
    """The namespace again, into another layout, from this build's binary packages (no compiler
    run): every digest is the fresh compile's. (Once, for root: the user's build follows.)"""
    if not built.identity.is_root:
        pytest.skip("checked once, for root")
    layout = built.tmp / "from-binpkgs"
    proc = built.cf("build", "--json", "--layout", str(layout), str(built.ns))
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = LayoutView(layout, PREFIX)
    logs = "\n".join(again.logs(image) for image in IMAGES)
    assert ">>> Emerging binary" in logs and ">>> Compiling source" not in logs
    assert {image: again.digest(image) for image in IMAGES} == {
        image: built.digest(image) for image in IMAGES
    }


def test_zz_root_and_user_builds_are_identical(built):
    """Two cold builds, in two directories with separate caches, by root and by the test user (in
    another umask, time zone and locale), a minute or more apart: the same manifest digests, and
    diffoscope finds nothing between their layers (on a difference, its report says what)."""
    if set(BUILDS) != {"root", "user"} or built.identity.is_root:
        pytest.skip("compares both identities' builds, after the second")
    root, user = BUILDS["root"], BUILDS["user"]
    assert user.started - root.started >= 60
    reports = []
    for image in IMAGES:
        for a, b in zip(root.manifest(image)["layers"], user.manifest(image)["layers"], strict=True):
            diff = subprocess.run(
                ["diffoscope", "--no-progress", "--text", "-"]
                + [str(root.blob_path(a["digest"])), str(user.blob_path(b["digest"]))],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if diff.returncode != 0 or diff.stdout.strip():
                reports.append(f"{image}: diffoscope exit status {diff.returncode}\n{diff.stdout[:4000]}")
    assert not reports, "\n".join(reports)
    assert {image: root.digest(image) for image in IMAGES} == {image: user.digest(image) for image in IMAGES}
    print(
        "\n[world timing] examples/source digests (root = user): "
        + " ".join(f"{image}={root.digest(image)}" for image in IMAGES)
    )


# -- images that cannot start do not build -------------------------------------------------------
def _image(built, name: str, spec: str, hooks: dict[str, str] | None = None) -> Path:
    folder = built.ns / name
    folder.mkdir(exist_ok=True)
    (folder / "image.toml").write_text(spec)
    for file, text in (hooks or {}).items():
        (folder / file).write_text(text)
    own(built.identity, folder)
    return folder


def test_zz_a_dynamic_program_on_an_empty_root_does_not_build(built):
    before = (built.layout / "index.json").read_bytes()
    folder = _image(built, "dynscratch", 'parent = "scratch"\npackages = ["app-misc/gnu-hello"]\n')
    proc = built.cf("build", "--layout", str(built.layout), str(folder))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "hook 'check-binaries' (finish_rootfs) failed" in proc.stderr
    log = (built.logdir("dynscratch") / "finish_rootfs.log").read_text()
    assert (
        "check-binaries: /usr/bin/hello needs the dynamic loader /lib64/ld-linux-x86-64.so.2, which is not in the image"
        in log
    )
    assert (built.layout / "index.json").read_bytes() == before
    # on request, it builds (and is what it is: a program that cannot start)
    _image(
        built, "dynscratch", 'parent = "scratch"\npackages = ["app-misc/gnu-hello"]\ncheck_binaries = false\n'
    )
    proc = built.cf("build", "--layout", str(built.layout), str(folder))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "check-binaries" not in (built.logdir("dynscratch") / "finish_rootfs.log").read_text()


def test_zz_the_check_asks_the_loader_not_the_file_names(built):
    """libskarnet.so.2.13 is in the image, but without /etc/ld.so.cache the loader does not look in
    /usr/lib64: the check fails, as the program would."""
    folder = _image(
        built,
        "nocache",
        'parent = "skalibs"\npackages = ["app-misc/skahello"]\n[hooks]\nfinish_rootfs = ["drop-cache.sh"]\n',
        {"drop-cache.sh": 'rm "$ROOT/etc/ld.so.cache"\n'},
    )
    proc = built.cf("build", "--layout", str(built.layout), str(folder))
    assert proc.returncode == 1, proc.stderr[-3000:]
    log = (built.logdir("nocache") / "finish_rootfs.log").read_text()
    assert "check-binaries: /usr/bin/skahello: the image's loader finds no libskarnet.so.2.13" in log, log
