"""`chrootforge import kubler` from the user's side, as root and as the unprivileged user: the
fixture namespace kfix (every kubler helper, every mapped Dockerfile instruction, a builder, the
three levels base -> mid -> leaf) is imported and checked key by key, and every image plans; bad
input is one line and writes nothing. The probe runs in the real sandbox."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from chrootforge.importers.kubler.helpers import NAMES
from tests.helpers.identity import get_identity
from tests.helpers.rootfs import remove_as

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBLER_USE = "bindist threads -X -gnome -gtk -kde -qt4 -cups -alsa -ipv6 -pppd -gdbm -gpm -pam -ncurses"
MAINTAINER = {"maintainer": "Kfix Maintainer <kfix@example.invalid>"}
INHERITED = {  # what the builder chain leaves in kubler's builder: every image of kfix has it
    "mask": [">=sys-apps/busybox-9"],
    "unmask": ["=sys-libs/musl-1.2.5"],
}
PACKAGE_TABLES = {
    "dev-lang/go": {"keywords": ["~amd64"]},
    "sys-apps/busybox": {"use": ["static", "-make-symlinks"], "keywords": ["~amd64"]},
}
CHAIN = ["kubler-compat", "../kubler-builders/bob/kubler.sh"]

EXPECTED = {
    "chrootforge.toml": {
        "stage3": {"arch": "amd64", "variant": "musl-hardened", "date": "20240601T000000Z"},
        "tree": {"snapshot": "latest"},
        "repos": {"kfix-overlay": "repos/kfix-overlay"},
        "output": {"tags": ["20240601", "latest"], "prefix": "localhost/kfix"},
        "make_conf": {
            "USE": KUBLER_USE,
            "ACCEPT_LICENSE": "*",
            "LINGUAS": "en",
            "FEATURES": "-ipc-sandbox -network-sandbox -pid-sandbox",
            "CHOST": "x86_64-pc-linux-musl",
            "CFLAGS": "-O2 -pipe -march=x86-64",
            "CXXFLAGS": "-O2 -pipe -march=x86-64",
            "MAKEOPTS": "-j3",
        },
        "build": {"network": "host"},
    },
    "base": {
        "parent": "scratch",
        "packages": ["sys-apps/baselayout", "sys-apps/busybox", "sys-libs/musl"],
        **INHERITED,
        "provided": ["dev-lang/python"],
        "uninstall": ["sys-libs/musl"],
        "force_uninstall": True,
        "runtime_libs": [
            "libgcc_s.so.1",
            "libgomp.so.1",
            "libstdc++.so.6",
            "libgfortran.so.5",
            "libquadmath.so.0",
        ],
        "package": PACKAGE_TABLES,
        "strip": {"locales": "all", "headers": False},
        "config": {
            "cmd": ["/bin/sh"],
            "env": {
                "PATH": "/opt/kfix/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "KFIX_LEVEL": "base",
            },
            "labels": MAINTAINER,
        },
        "hooks": {
            "configure_builder": [*CHAIN, "kubler.sh"],
            "configure_rootfs": ["kubler.sh"],
            "post_emerge": ["kubler.sh"],
        },
    },
    "mid": {
        "parent": "base",
        "packages": ["app-misc/mid-tool", "dev-libs/kfixlib"],
        **INHERITED,
        "provided": ["dev-lang/perl"],
        "unprovided": ["dev-lang/python"],
        "package": PACKAGE_TABLES,
        "strip": {"locales": "all"},
        "config": {
            "entrypoint": ["/usr/bin/mid-tool"],
            "cmd": ["--serve"],
            "user": "nobody",
            "workdir": "/var/lib/mid",
            "ports": ["8080/tcp", "9000/udp", "9001/udp", "9002/udp"],
            "volumes": ["/var/lib/mid", "/var/log/mid"],
            "labels": {
                **MAINTAINER,
                "org.example.tier": "mid",
                "kubler.healthcheck": "--interval=30s --timeout=3s CMD wget -q --spider "
                "http://localhost:8080/ || exit 1",
            },
            "stop_signal": "SIGINT",
        },
        "hooks": {
            "configure_builder": [*CHAIN, "kubler.sh"],
            "configure_rootfs": ["kubler.sh"],
            "post_emerge": ["kubler.sh"],
            "finish_rootfs": ["kubler.sh"],
        },
    },
    "leaf": {
        "parent": "mid",
        "packages": ["app-misc/leaf"],
        **INHERITED,
        "package": PACKAGE_TABLES,  # not kfixlib: mid's hook (run again) and leaf's set it
        "strip": {"locales": "all"},
        "config": {
            "entrypoint": ["/usr/bin/mid-tool"],
            "cmd": ["--version"],
            "env": {"LEAF": "1", "FROM_PARENT": "base"},
            "labels": MAINTAINER,
        },
        "hooks": {
            "configure_builder": [*CHAIN, "../mid/kubler.sh", "kubler.sh"],
            "configure_rootfs": ["kubler.sh"],
            "post_emerge": ["kubler.sh"],
        },
    },
    "plain": {
        "parent": "base",
        **INHERITED,
        "package": PACKAGE_TABLES,
        "strip": {"locales": "all"},
        "config": {"entrypoint": ["/bin/sh", "-c", "/bin/sh -c 'echo plain'"]},
        "hooks": {"configure_builder": CHAIN},
    },
}


@dataclass
class Imported:
    identity: object
    tmp: Path
    source: Path
    ns: Path
    proc: subprocess.CompletedProcess
    before: dict[str, str]

    def load(self, name: str) -> dict:
        path = self.ns / ("chrootforge.toml" if name == "chrootforge.toml" else f"{name}/image.toml")
        return tomllib.loads(path.read_text())

    @property
    def import_md(self) -> str:
        return (self.ns / "IMPORT.md").read_text()


def _copy_fixture(name: str, identity, dest: Path) -> Path:
    source = dest / name
    shutil.copytree(FIXTURES / name, source)
    if not identity.is_root and os.getuid() == 0:
        for path in [dest, *dest.rglob("*")]:
            os.chown(path, identity.uid, identity.gid, follow_symlinks=False)
    return source


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module", params=["root", "user"])
def kfix(request) -> Imported:
    identity = get_identity(request.param)
    tmp = identity.mkdtemp("kubler.")
    source = _copy_fixture("kfix", identity, tmp)
    before = _digests(source)
    tmpdir = tmp / "tmpdir"  # the probe's scratch goes here: it must leave it as it was
    tmpdir.mkdir(mode=0o711)
    tmpdir.chmod(0o711)
    if os.getuid() == 0:
        os.chown(tmpdir, identity.uid, identity.gid)
    proc = identity.cf("import", "kubler", str(source), str(tmp / "out"), env={"TMPDIR": str(tmpdir)})
    yield Imported(identity, tmp, source, tmp / "out", proc, before)
    remove_as(identity, tmp)


def test_import_says_what_it_wrote(kfix):
    assert kfix.proc.returncode == 0, kfix.proc.stderr
    assert kfix.proc.stdout.strip() == (
        f"wrote {kfix.ns}: 4 images (4 with kubler hooks), 1 builders; {kfix.ns}/IMPORT.md says what "
        "became of each line"
    )
    assert sorted(p.name for p in kfix.ns.iterdir()) == [
        "IMPORT.md",
        "base",
        "chrootforge.toml",
        "kubler-builders",
        "leaf",
        "mid",
        "plain",
    ]
    assert sorted(p.name for p in kfix.tmp.iterdir()) == ["kfix", "out", "tmpdir"]  # no temporary left
    tmpdir = kfix.tmp / "tmpdir"
    assert list(tmpdir.iterdir()) == [] and oct(tmpdir.stat().st_mode & 0o7777) == "0o711"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_keys(kfix, name):
    assert kfix.load(name) == EXPECTED[name]


def test_the_probe_changed_nothing_of_the_source(kfix):
    assert _digests(kfix.source) == kfix.before


def test_hook_scripts(kfix):
    scripts = sorted(str(p.relative_to(kfix.ns)) for p in kfix.ns.rglob("kubler.sh"))
    assert scripts == ["base/kubler.sh", "kubler-builders/bob/kubler.sh", "leaf/kubler.sh", "mid/kubler.sh"]
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(kfix.ns / script)]).returncode == 0, script
    mid = (kfix.ns / "mid" / "kubler.sh").read_text()
    # the image folder, as kubler's /config: build.sh verbatim, the etc/ tree, the template
    assert "kubler_file etc/kfix/mid.conf 644 <<'KUBLER_EOF'\nlisten = 8080\nKUBLER_EOF\n" in mid
    assert (FIXTURES / "kfix/images/mid/build.sh").read_text() in mid
    assert (
        "kubler_applied configure_rootfs_build:16:provide_package configure_rootfs_build:17:unprovide_package"
        in mid
    )
    assert "export BOB_MID_PORT=8080" in mid
    assert "\tkubler_copy COPY '' /etc etc\n" in mid and "\tkubler_copy ADD '' /etc/motd motd\n" in mid
    assert "kubler_run nobody" not in mid  # USER comes after RUN in the template
    assert (
        re.search(r"kubler_run '' '' PATH=\S+ 'PATH=/opt/kfix/bin:\S+' KFIX_LEVEL=base -- /bin/sh -c", mid)
        is None
    )
    bob = (kfix.ns / "kubler-builders" / "bob" / "kubler.sh").read_text()
    assert "kubler_begin kfix/bob replay" in bob and "\tkubler_hook configure_builder\n" in bob


def test_import_md_says_what_became_of_each_line(kfix):
    text = kfix.import_md
    for line in (
        "- `builder/bob/build.conf:2` `STAGE3_BASE='stage3-amd64-musl-hardened'` → [stage3] (see chrootforge.toml)",
        "- `builder/bob/build.sh:5` `update_keywords 'dev-lang/go' '+~amd64'` → `[package.\"dev-lang/go\"] keywords` of every image built in this builder",
        '- `builder/bob/build.sh:7` `add_overlay kfix-overlay https://example.invalid/kfix-overlay.git` → [repos] kfix-overlay = "repos/kfix-overlay" in chrootforge.toml: check out https://example.invalid/kfix-overlay.git there',
        "- `builder/bob/build.sh:8` `emerge dev-lang/go` → kept in the configure_builder hook (kubler.sh): not a kubler helper",
        "- `images/base/build.conf:2` `POST_BUILD_HC=true` → omitted: chrootforge runs no post-build health check",
        "- `images/base/build.sh:2` `_keep_headers=true` → [strip] headers = false",
        "- `images/base/build.sh:17` `[[ -f /etc/kfix-flag ]]` → kept in the configure_rootfs hook (kubler.sh): not a kubler helper",
        "- `images/base/build.sh:17` `update_use 'sys-apps/sed' +static` → kept in the configure_rootfs hook (kubler.sh): a condition, loop or list of the hook decides whether it runs",
        "- `images/base/build.sh:22` `copy_gcc_libs` → `runtime_libs`",
        "- `images/base/build.sh:24` `uninstall_package sys-libs/musl` → `uninstall` (force_uninstall = true: kubler's emerge -C checks nothing)",
        '- `images/mid/build.sh:19` `copy_from_builder_if_changed /etc/group "${__get_file_mod_stamp}"` → kept in the configure_rootfs hook (kubler.sh): its arguments depend on the build container\'s state',
        "- `images/mid/build.sh:34` `mask_package dev-libs/kfixlib-2` → kept in the configure_rootfs hook (kubler.sh): made by the function _kfix_helper, not by the hook itself",
        "- `images/mid/Dockerfile.template:18` `HEALTHCHECK --interval=30s --timeout=3s CMD wget -q --spider http://localhost:8080/ || exit 1` → label kubler.healthcheck: the OCI image config has no health check (docs/import.md)",
        "- `images/leaf/build.sh:8` `finish_rootfs_build()` → kept in the post_emerge hook (kubler.sh), whole: run A called exit 0 at line 11",
        '- `images/leaf/Dockerfile.template:5` `CMD ["--version"]` → [config] entrypoint repeats the parent\'s: docker keeps it with a new CMD',
    ):
        assert line in text, line


def test_every_helper_and_instruction_is_exercised(kfix):
    """Each kubler helper is called somewhere in kfix (IMPORT.md lists each call), and each of the
    Dockerfile instructions the importer maps is there, with its outcome."""
    sources = re.findall(r"^- `[^`]+:\d+` `+ ?(.*?) ?`+ → (.*)$", kfix.import_md, re.M)
    called = {word for source, _ in sources for word in re.findall(r"[a-z_-]+", source) if word in NAMES}
    assert called == set(NAMES)
    outcomes: dict[str, str] = {}
    for source, outcome in sources:
        if source.split()[0].isupper():
            outcomes.setdefault(source.split()[0], outcome)
    for instruction, outcome in {
        "ENV": "[config] env",
        "EXPOSE": "[config] ports",
        "CMD": "[config] cmd",
        "ENTRYPOINT": "[config] entrypoint",
        "USER": "[config] user",
        "VOLUME": "[config] volumes",
        "HEALTHCHECK": "label kubler.healthcheck",
        "RUN": "kept in the finish_rootfs hook",
        "COPY": "kept in the finish_rootfs hook",
        "WORKDIR": "[config] workdir",
        "LABEL": "[config] labels",
        "STOPSIGNAL": "[config] stop_signal",
        "ONBUILD": "omitted",
    }.items():
        assert outcomes[instruction].startswith(outcome), (instruction, outcomes[instruction])


def test_every_image_plans(kfix):
    for image in ("base", "mid", "leaf", "plain"):
        proc = kfix.identity.cf("build", "--plan", str(kfix.ns / image))
        assert proc.returncode == 0, proc.stderr
        assert f"== image {image} (parent: " in proc.stdout
    plan = kfix.identity.cf("build", "--plan", str(kfix.ns / "base")).stdout
    assert "sys-apps/busybox static -make-symlinks" in plan and "dev-lang/python-<best visible" in plan


# -- bad input: one line, nothing written ----------------------------------------------------------------
def _break(source: Path, case: str) -> None:
    if case == "missing kubler.conf":
        (source / "kubler.conf").unlink()
    elif case == "missing build.conf":
        (source / "images/mid/build.conf").unlink()
    elif case == "missing Dockerfile.template":
        (source / "images/leaf/Dockerfile.template").unlink()
    elif case == "syntax error":
        path = source / "images/mid/build.sh"
        path.write_text(path.read_text().replace("finish_rootfs_build()\n{", "finish_rootfs_build()\n{ (", 1))
    elif case == "parent outside":
        (source / "images/leaf/build.conf").write_text('# elsewhere\nIMAGE_PARENT="kubler/glibc"\n')
    elif case == "dynamic packages":
        path = source / "images/leaf/build.sh"
        path.write_text(path.read_text().replace('_packages="app-misc/leaf"', '_packages="$(cat /etc/pkgs)"'))
    elif case == "exit while sourced":
        path = source / "images/leaf/build.sh"
        path.write_text(
            path.read_text().replace('_packages="app-misc/leaf"', '_packages="app-misc/leaf"\nexit 3')
        )
    elif case == "multi-stage":
        (source / "images/plain/Dockerfile.template").write_text("FROM ${IMAGE_PARENT} AS b\nFROM scratch\n")


BAD = {
    "missing kubler.conf": r"kfix/kubler.conf: no such file$",
    "missing build.conf": r"kfix/images/mid/build.conf: no such file$",
    "missing Dockerfile.template": r"kfix/images/leaf/Dockerfile.template: no such file$",
    "syntax error": r"kfix/images/mid/build.sh:4\d: syntax error near unexpected token",
    "parent outside": r"kfix/images/leaf/build.conf:2: IMAGE_PARENT kubler/glibc is outside the kubler namespace kfix$",
    "dynamic packages": r"kfix/images/leaf/build.sh:1: _packages depends on the build container's state",
    "multi-stage": r"kfix/images/plain/Dockerfile.template:1: a multi-stage Dockerfile.template is not supported$",
    "exit while sourced": r"kfix/images/leaf/build.sh:2: sourcing build.conf and build.sh did not finish \(exit 3\)$",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(identity, case):
    tmp = identity.mkdtemp("kubler-bad.")
    try:
        source = _copy_fixture("kfix", identity, tmp)
        _break(source, case)
        proc = identity.cf("import", "kubler", str(source), str(tmp / "out"))
        assert proc.returncode == 2, proc.stderr
        first, *rest = proc.stderr.splitlines()
        assert re.search(BAD[case], first), first
        assert first.startswith("chrootforge: error: ") and all(line.startswith("  hint: ") for line in rest)
        assert sorted(p.name for p in tmp.iterdir()) == ["kfix"]
    finally:
        remove_as(identity, tmp)


def test_an_existing_target_is_refused(identity):
    tmp = identity.mkdtemp("kubler-exists.")
    try:
        source = _copy_fixture("kfix", identity, tmp)
        (tmp / "out").mkdir()
        proc = identity.cf("import", "kubler", str(source), str(tmp / "out"))
        assert proc.returncode == 2
        assert proc.stderr.splitlines()[0] == f"chrootforge: error: {tmp / 'out'} exists"
        assert list((tmp / "out").iterdir()) == []
    finally:
        remove_as(identity, tmp)
