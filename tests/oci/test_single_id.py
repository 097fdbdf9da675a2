"""Single-id trees: unpack records the image's owners (only id 0 exists), commit gives them back.

Run as a user without /etc/subuid (`single`) and as root with the single-id map: a parent image
whose files belong to 250, 701, 42 and 1000 (with setuid/setgid bits and symlinks owned by 5) is
unpacked, changed a little inside the namespace and committed again as a child and as a copy. The
child's layer must hold exactly what changed, with the owners the image means; the copy must be
the parent's tree, owners included, and so must `chrootforge commit --single-id` of the same tree.
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from chrootforge import ownerxattr
from tests.helpers.identity import get_identity
from tests.helpers.mirror import member
from tests.helpers.oci import layers_of, merged, store_image
from tests.helpers.rootfs import TREE_INSPECT

EPOCH = 1700000000

DRIVER = textwrap.dedent("""
    import json, os, subprocess, sys
    from chrootforge.oci.mapped_io import CommitRequest, commit_as, unpack_as
    from chrootforge.sandbox.idmap import detect_idmap
    from chrootforge.sources.mapped_run import run_under_mapping
    layout, root, inspect, out = sys.argv[1:5]
    idmap = detect_idmap(single_id=True)
    symlinks = unpack_as(idmap, layout, "parent", root)
    assert run_under_mapping([sys.executable, inspect, root, out], idmap) == 0
    change = "echo new > new && ln -sfn elsewhere usr/bin/moved && rm etc/gone && chmod 0700 home/x"
    assert run_under_mapping(["sh", "-c", f"cd {root} && {change}"], idmap) == 0
    kw = dict(epoch=1700000000, quiet=True)
    child = commit_as(idmap, root, layout, CommitRequest(("child",), parent="parent", **kw), symlinks)
    copy = commit_as(idmap, root, layout, CommitRequest(("copy",), **kw), symlinks)
    bare = commit_as(idmap, root, layout, CommitRequest(("bare",), **kw))  # without unpack's symlinks
    cli = subprocess.run([sys.executable, "-m", "chrootforge", "commit", "--single-id", root,
                          "--layout", layout, "--tag", "cli", "--quiet"],
                         capture_output=True, text=True, env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
    assert cli.returncode == 0, cli.stderr
    print(json.dumps({"symlinks": symlinks, "map": idmap.uid_lines()}))
""")


def parent_layers() -> list[list]:
    return [
        [
            member("etc", "dir"),
            member("etc/shadow", "file", b"root:*::\n", gid=42, mode=0o640),
            member("etc/gone", "file", b"bye\n", uid=701, gid=701),
            member("home", "dir"),
            member("home/x", "dir", uid=1000, gid=1000, mode=0o750),
            member("home/x/f", "file", b"f", uid=1000, gid=1000, mode=0o600),
            member("usr", "dir"),
            member("usr/bin", "dir"),
            member("usr/bin/q", "file", b"#!/bin/sh\n", gid=701, mode=0o2755),
            member("usr/bin/su", "file", b"su", mode=0o4755),
            member("usr/bin/alias", "symlink", link="q", uid=5, gid=5, mode=0o777),
            member("usr/bin/moved", "symlink", link="q", uid=5, gid=5, mode=0o777),
            # an image's own record is content of that image, which a single-id tree cannot keep
            member("usr/bin/claims", "file", b"c", xattrs={ownerxattr.XATTR: ownerxattr.encode(9, 9)}),
        ],
        [
            member("var", "dir"),
            member("var/spool", "dir"),
            member("var/spool/hello", "dir", uid=701, gid=701, mode=0o3770),
            member("var/spool/hello/m", "file", b"m", uid=701, gid=701, mode=0o660),
        ],
    ]


def owners(tree: dict) -> dict:
    return {path: entry[:4] for path, entry in tree.items()}


@pytest.mark.parametrize("who", ["single", "root"])
def test_unpack_and_commit_keep_the_owners_single_id(who):
    identity = get_identity(who)
    work = identity.mkdtemp("single-oci.")
    layout = work / "layout"
    store_image(layout, "parent", parent_layers())
    (work / "driver.py").write_text(DRIVER)
    (work / "tree_inspect.py").write_text(TREE_INSPECT)
    if identity.is_root:
        from chrootforge.sandbox import owned_dir
        from chrootforge.sandbox.idmap import detect_idmap

        for path in (work, work / "root"):  # the namespace's root writes the report and the tree
            owned_dir(path, detect_idmap(single_id=True))
    elif os.getuid() == 0:
        for path in [layout, *layout.rglob("*"), work / "driver.py", work / "tree_inspect.py"]:
            os.chown(path, identity.uid, identity.gid)
    done = identity.run(
        [
            *identity.python,
            str(work / "driver.py"),
            str(layout),
            str(work / "root"),
            str(work / "tree_inspect.py"),
            str(work / "seen.json"),
        ]
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["map"].splitlines()) == 1 and result["map"].split()[::2] == ["0", "1"]

    # unpacked: every file is id 0's inside; the image's owners are records; modes as in the image
    seen = json.loads((work / "seen.json").read_text())["tree"]
    assert {(e["uid"], e["gid"]) for e in seen.values()} == {(0, 0)}
    records = {
        path: ownerxattr.decode(bytes.fromhex(e["xattrs"][ownerxattr.XATTR]))
        for path, e in seen.items()
        if ownerxattr.XATTR in e["xattrs"]
    }
    assert records == {
        "etc/shadow": (0, 42),
        "etc/gone": (701, 701),
        "home/x": (1000, 1000),
        "home/x/f": (1000, 1000),
        "usr/bin/q": (0, 701),
        "var/spool/hello": (701, 701),
        "var/spool/hello/m": (701, 701),
    }
    assert seen["usr/bin/q"]["mode"] & 0o7777 == 0o2755 and seen["usr/bin/su"]["mode"] & 0o7777 == 0o4755
    assert seen["var/spool/hello"]["mode"] & 0o7777 == 0o3770
    # symlinks hold no record: unpack reports them with their targets, for the commit
    assert result["symlinks"] == {"usr/bin/alias": [5, 5, "q"], "usr/bin/moved": [5, 5, "q"]}

    parent = layers_of(layout, "parent")
    parent_tree = owners(merged(parent))
    # the child's layer holds exactly what changed, with the owners the image means
    child = layers_of(layout, "child")
    assert child[:2] == parent
    top = child[2]
    # ... and the file whose record xattr was the image's own: the one thing not kept, said loudly
    assert set(top) == {"new", "usr/bin/moved", "etc/.wh.gone", "home/x", "usr/bin/claims"}
    assert "1 files of parent carry a user.rootlesscontainers xattr of their own" in done.stderr
    assert "/usr/bin/claims" in done.stderr
    assert top["new"][:2] == (0, 0)
    assert top["usr/bin/moved"][:4] == (0, 0, 0o777, "elsewhere")  # a new link: root's
    assert top["home/x"][:3] == (1000, 1000, 0o700)  # the mode changed, the owner did not
    # a copy is the parent's tree, owners and modes included; the image's own record is gone
    copy = owners(merged(layers_of(layout, "copy")))
    expected = dict(parent_tree, new=(0, 0, 0o644, ""), **{"home/x": (1000, 1000, 0o700, "")})
    expected["usr/bin/moved"] = (0, 0, 0o777, "elsewhere")
    del expected["etc/gone"]
    assert copy == expected
    assert all(ownerxattr.XATTR not in str(e[4]) for e in merged(layers_of(layout, "copy")).values())
    assert owners(merged(layers_of(layout, "cli"))) == dict(expected, **{"usr/bin/alias": (0, 0, 0o777, "q")})
    # without unpack's word on them, symlinks are 0:0: the only loss, and unpack reports it
    bare = owners(merged(layers_of(layout, "bare")))
    assert {p for p in bare if bare[p] != copy[p]} == {"usr/bin/alias"}
