"""Spec values that their readers would reject or misread are refused at load, at their file:line.

Each value here ends up in a file or a command line another program reads: /etc/portage files
and make.conf (portage), emerge's arguments, s6 run scripts (sh), the OCI config (podman, docker,
runc). Before these checks, every case of BAD_IMAGE and BAD_NAMESPACE loaded: a trailing newline
passed every `^...$` pattern, ports up to 99999 passed, and most strings were not checked at all.
"""

from __future__ import annotations

import json

import pytest

from chrootforge.errors import UsageError
from chrootforge.spec.image import load_image
from chrootforge.spec.namespace import load_namespace


def _err(func, *args) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert info.value.exit_code == 2
    text = info.value.render()
    assert len(text.splitlines()) <= 2, text  # one line, and its hint
    return text


def _s(value: str) -> str:
    """A TOML basic string holding `value` exactly (control characters escaped)."""
    return json.dumps(value)


BAD_IMAGE = [
    # atoms: a newline would start a line of its own in package.mask / package.use
    (f"packages = [{_s('app-misc/hello' + chr(10))}]", 2, "it must be one line"),
    (f"mask = [{_s('app-misc/hello' + chr(10) + 'sys-libs/glibc')}]", 2, "one line"),
    ('unmask = ["app-misc/hello foo"]', 2, "not a package atom"),
    ('packages = ["!app-misc/hello"]', 2, "not a package atom"),
    ('packages = ["app-misc/hello[static]::gentoo"]', 2, "not a package atom"),
    ('packages = ["app-misc/hello-1.0"]', 2, "without an operator: write =app-misc/hello-1.0"),
    ('packages = ["app-misc/hello-1"]', 2, "without an operator: write =app-misc/hello-1"),
    ('packages = [">app-misc/hello-1*"]', 2, "goes with = only"),
    ('packages = [">=app-misc/hello"]', 2, "has a version operator but no version"),
    (f"provided = [{_s('a/b-1.0' + chr(10) + 'sys-libs/glibc-2.0')}]", 2, "one line"),
    (f"uninstall = [{_s('a/b' + chr(10))}]", 2, "one line"),
    (f"runtime_libs = [{_s('libgcc_s.so.1' + chr(10))}]", 2, "one line"),
    (f'[package.{_s("a/b" + chr(10))}]\nuse = ["x"]', 2, "not a package atom"),
    ('[package."a/b"]\nkeywords = ["~amd64;"]', 3, "is not a keyword"),
    (f'[package."a/b"]\nuse = [{_s("x" + chr(0))}]', 3, "NUL"),
    ('[package."a/b"]\nuse = ["x;y"]', 3, "is not a USE flag"),
    ('[package."a/b"]\nenv = { "CFLAGS=x" = "1" }', 3, "not a make.conf variable name"),
    (f'[package."a/b"]\nenv = {{ CFLAGS = {_s("-O2" + chr(10) + "LDFLAGS=-evil")} }}', 3, "one line"),
    ('[package."a/b"]\nenv = { ROOT = "/x" }', 3, "managed by chrootforge"),
    # the OCI config: what runc and podman take
    ('[config]\nenv = { "A=B" = "x" }', 3, "environment variable name 'A=B'"),
    (f"[config]\nenv = {{ {_s('A' + chr(10) + 'B')} = 'x' }}", 3, "environment variable name"),
    ('[config]\nenv = { "" = "x" }', 3, "environment variable name ''"),
    ('[config]\nenv = { "MY VAR" = "x" }', 3, "environment variable name"),
    (f"[config]\nenv = {{ A = {_s('x' + chr(0) + 'y')} }}", 3, "NUL"),
    (f"[config]\nuser = {_s('nobody' + chr(10))}", 3, "one line"),
    ('[config]\nuser = "no body"', 3, "must be NAME, UID, NAME:GROUP or UID:GID"),
    ('[config]\nuser = "99999999999"', 3, "must be NAME, UID"),
    ('[config]\nuser = "a:b:c"', 3, "must be NAME, UID"),
    ('[config]\nports = ["99999"]', 3, "N from 1 to 65535"),
    ('[config]\nports = ["0"]', 3, "N from 1 to 65535"),
    ('[config]\nports = ["65536/tcp"]', 3, "N from 1 to 65535"),
    ('[config]\nports = ["80/icmp"]', 3, "is not a port"),
    (f"[config]\nports = [{_s('80' + chr(10))}]", 3, "one line"),
    ('[config]\nvolumes = ["data"]', 3, "must be an absolute path"),
    (f"[config]\nworkdir = {_s('/srv' + chr(10))}", 3, "one line"),
    (f"[config]\ncmd = [{_s('sh' + chr(0))}]", 3, "NUL"),
    (f"[config]\nentrypoint = {_s('/bin/app' + chr(0))}", 3, "NUL"),
    ('[config]\nlabels = { "org.chrootforge.build.engine-key" = "sha256:fake" }', 3, "the build's own"),
    ('[config]\nlabels = { "my label" = "x" }', 3, "without blanks"),
    (f"[config]\nlabels = {{ a = {_s('x' + chr(0))} }}", 3, "NUL"),
    (f"[config]\nstop_signal = {_s('SIGTERM' + chr(10))}", 3, "one line"),
    # s6 run scripts: `exec <run>` is one line of sh
    (f"[services.web]\nrun = {_s('httpd' + chr(10) + 'rm -rf /')}", 3, "one line"),
    (f"[services.web]\nrun = 'x'\nfinish = {_s('a' + chr(13) + 'b')}", 4, "one line"),
    # free text and names
    (f"description = {_s('two' + chr(10) + 'lines')}", 2, "one line"),
    (f"tags = [{_s('latest' + chr(10))}]", 2, "one line"),
    ('tags = ["v1:2"]', 2, "is not a valid tag"),
    ('parent = "../x"', 1, "parent image name '../x'"),
    ('[strip]\nlocales = ["en_US; rm"]', 3, "is not a locale name"),
    (f"[strip]\nkeep = [{_s('/usr/share/x' + chr(10))}]", 3, "one line"),
    ('[hooks]\npost_emerge = ["/tmp/x.sh"]', 3, "relative path inside the namespace"),
    ('[hooks]\npost_emerge = ["a\\"b.sh"]', 3, "relative path inside the namespace"),
    (f"[hooks]\npost_emerge = [{_s('a' * 5000)}]", 3, "File name too long"),
    # Unicode's own line breaks and controls: splitlines() and split() break at U+2028/U+2029,
    # 0x9b is a terminal's CSI, and bidirectional overrides make a value display as another
    (f"description = {_s('one' + chr(0x2028) + 'two')}", 2, "control character"),
    (f"[config]\nlabels = {{ a = {_s('x' + chr(0x2029) + 'y')} }}", 3, "control character"),
    (f"[config]\ncmd = [{_s('ls' + chr(0x202E) + 'txt.exe')}]", 3, "control character"),
    (f'[package."a/b"]\nenv = {{ CFLAGS = {_s("-O2" + chr(0x85) + "x")} }}', 3, "control character"),
    (f"[services.web]\nrun = {_s('httpd' + chr(0x9B) + '31m')}", 3, "control character"),
]


@pytest.mark.parametrize("body,line,message", BAD_IMAGE)
def test_bad_image_values_are_refused_at_their_line(ns, body, line, message):
    text = body if body.startswith("parent") else f'parent = "scratch"\n{body}'
    path = ns.image("a", text + "\n")
    err = _err(load_image, load_namespace(ns.root), "a")
    assert f"{path}:{line}:" in err and message in err, err


def _ns_text(top: str = "", stage3: str = "", tree: str = "", rest: str = "") -> str:
    return f'{top}\n[stage3]\npath = "stage3.tar.zst"\n{stage3}\n[tree]\npath = "repo"\n{tree}\n{rest}\n'


# (the file's parts, the key whose line the error names, what it says)
BAD_NAMESPACE = [
    ({"stage3": 'arch = "../../x"'}, "arch", "is not a Gentoo arch"),
    ({"stage3": 'variant = "openrc/../../x"'}, "variant", "is not a stage3 variant"),
    ({"stage3": 'date = "20240101T170309Z;id"'}, "date", "release stamp"),
    ({"stage3": 'mirror = ["ftp://m.example.org"]'}, "mirror", "must be an http://, https:// or file://"),
    ({"stage3": 'mirror = ["https://a.example.org/ x"]'}, "mirror", "must be a plain URL"),
    ({"stage3": f"keyring = [{_s('k.asc' + chr(0))}]"}, "keyring", "NUL"),
    ({"tree": 'name = "my repo"'}, "name", "repository name 'my repo'"),
    ({"tree": f"name = {_s('gentoo' + chr(10) + '[evil]')}"}, "name", "one line"),
    ({"tree": 'profile = "../../../etc"'}, "profile", "must be a path inside profiles/"),
    ({"tree": 'profile = "default/linux amd64"'}, "profile", "must be a path inside profiles/"),
    ({"rest": '[repos]\n"x/../y" = "repo"'}, '"x/../y"', "repository name 'x/../y'"),
    ({"rest": '[repos]\n"a]\\n[b" = "repo"'}, '"a]', "repository name"),
    ({"rest": f"[make_conf]\nCFLAGS = {_s('-O2' + chr(10) + 'FEATURES=-sandbox')}"}, "CFLAGS", "one line"),
    ({"rest": '[make_conf]\nUSE = ["a", "b\\nc"]'}, "USE", "one line"),
    ({"rest": '[output]\ntags = ["latest\\n"]'}, "tags", "one line"),
    ({"rest": "[build]\njobs = 0"}, "jobs", "must be at least 1"),
    ({"rest": f"[make_conf]\nCFLAGS = {_s('-O2' + chr(0x2028) + 'FEATURES=-sandbox')}"}, "CFLAGS", "control"),
    ({"top": 'name = "a..b"'}, "name", "namespace name 'a..b'"),
    ({"top": 'name = "ns-"'}, "name", "namespace name 'ns-'"),
]


@pytest.mark.parametrize("parts,key,message", BAD_NAMESPACE)
def test_bad_namespace_values_are_refused_at_their_line(ns, parts, key, message):
    text = _ns_text(**parts)
    path = ns.write("chrootforge.toml", text)
    err = _err(load_namespace, ns.root)
    line = next(
        i for i, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key} =") or t.startswith(key)
    )
    assert f"{path}:{line}:" in err and message in err, err


def test_repo_name_from_the_tree_is_checked(ns):
    (ns.root / "repo" / "profiles" / "repo_name").write_text("evil]\n[x\n")
    err = _err(load_namespace, ns.root)
    assert "profiles/repo_name: repository name" in err and "[tree] name" in err


GOOD_IMAGE = """\
parent = "scratch"
description = "a web server"
packages = ["app-misc/hello", ">=sys-apps/s6-2.11:0/2.11::gentoo[execline,-static(+)]",
            "=dev-libs/foo-1.2*", "~dev-lang/tcl-8.6.14-r1", "dev-lang/python:3.12", "a/b:=",
            "<sys-libs/glibc-2.40_p1", "x11-libs/gtk+:3", "dev-libs/foo[bar?,!baz=]"]
mask = [">=app-misc/hello-2"]
provided = ["dev-lang/perl", "sys-devel/gcc-13.2.1_p20240113"]
[package."app-misc/hello"]
use = "static -nls python_targets_python3_12"
keywords = ["~amd64", "**", "-*"]
env = { CFLAGS = "-O3 -march=native", LDFLAGS = "-Wl,-O1" }
[strip]
locales = ["en_US", "de_DE.UTF-8", "sr_RS@latin"]
[hooks]
post_emerge = ["check-binaries"]
[services.web]
run = "httpd -f -p 8080"
[config]
cmd = ["sh", "-c", "echo one\\necho two"]
env = { LANG = "C.UTF-8", "MULTI" = "line one\\nline two", "lower.dotted" = "ok" }
user = "nginx:nginx"
ports = ["80", "443/tcp", "53/udp", "65535/sctp"]
volumes = ["/var/lib/app"]
labels = { "org.opencontainers.image.version" = "1.2", "note" = "two\\nlines" }
"""


def test_valid_values_still_load(ns):
    ns.image("a", GOOD_IMAGE)
    image = load_image(load_namespace(ns.root), "a")
    assert image.config.ports == ("80", "443/tcp", "53/udp", "65535/sctp")
    assert dict(image.config.env)["MULTI"] == "line one\nline two"
    assert image.config.cmd == ("sh", "-c", "echo one\necho two")
    assert image.package_settings[0].keywords == ("~amd64", "**", "-*")
    for user in ("0", "1000:1000", "nobody", "_apt", "www-data:www-data", "svc.user"):
        ns.image("u", f'parent = "scratch"\n[config]\nuser = "{user}"\n')
        assert load_image(load_namespace(ns.root), "u").config.user == user


def test_long_names_are_refused_before_a_build(ns, tmp_path):
    name = "a" * 129
    ns.image(name, 'parent = "scratch"\n')
    assert "more than 128" in _err(load_image, load_namespace(ns.root), name)
    ns.write("chrootforge.toml", _ns_text(rest=f'[output]\nprefix = "localhost/{"p" * 200}"'))
    ns.image("b" * 60, 'parent = "scratch"\n')
    assert "more than 255" in _err(load_image, load_namespace(ns.root), "b" * 60)


def test_checks_match_whole_values():
    """The class behind most of the above: a pattern matched with `match` and `$` lets a trailing
    newline through. Every check refuses it by itself, whatever the kind's own text check does."""
    from chrootforge.sources import grammar
    from chrootforge.spec import checks

    for check, good in [
        (checks.atom, "app-misc/hello"),
        (checks.cp, "app-misc/hello"),
        (checks.provided_entry, "app-misc/hello-1.0"),
        (checks.use_flag, "static"),
        (checks.keyword, "~amd64"),
        (checks.port, "8080/tcp"),
        (checks.tag, "latest"),
        (checks.prefix, "localhost/ns"),
        (checks.name("image"), "web"),
        (checks.repo_name, "gentoo"),
        (grammar.arch, "amd64"),
        (grammar.variant, "openrc"),
        (grammar.stamp, "20240101T170309Z"),
        (checks.profile, "default/linux/amd64/23.0"),
        (checks.locale, "en_US"),
        (checks.hook_ref, "check-binaries"),
        (checks.user, "nobody"),
        (checks.env_name, "LANG"),
        (checks.label_key, "org.example.x"),
        (checks.soname, "libgcc_s.so.1"),
        (checks.keep_pattern, "/usr/share/doc"),
        (checks.make_var, "CFLAGS"),
        (checks.make_value, "-O2"),
    ]:
        assert check(good) is None, (check, good)
        assert check(good + "\n") is not None, (check, good)


def test_hooks_outside_the_namespace_are_refused(ns):
    """`..` may reach a sibling folder of the namespace (shared scripts), never a file beyond it,
    whether by `..` or through a symlink in the image folder."""
    outside = ns.root.parent / "outside.sh"
    outside.write_text("#!/bin/sh\n")
    shared = ns.root / "shared"
    shared.mkdir()
    (shared / "common.sh").write_text("#!/bin/sh\n")
    ok = ns.image("a", 'parent = "scratch"\n[hooks]\npost_emerge = ["../shared/common.sh"]\n')
    [hook] = load_image(load_namespace(ns.root), "a").hooks_for("post_emerge")
    assert hook.path == (shared / "common.sh").resolve()
    ok.write_text('parent = "scratch"\n[hooks]\npost_emerge = ["../../outside.sh"]\n')
    err = _err(load_image, load_namespace(ns.root), "a")
    assert f"{ok}:3:" in err and "outside the namespace" in err, err
    (ok.parent / "link.sh").symlink_to(outside)
    ok.write_text('parent = "scratch"\n[hooks]\npost_emerge = ["link.sh"]\n')
    err = _err(load_image, load_namespace(ns.root), "a")
    assert "outside the namespace" in err, err
