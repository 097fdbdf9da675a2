"""A small busybox rootfs for a given identity (Debian's busybox-static plus assorted owners).

Built as the identity itself, then owned as the namespace sees it: the tree by its root, the owners
250:250 and 1000:1000 by those ids, so they land in the identity's range (the subuid range through
chrootforge.sandbox.run_mapped, or root's unprivileged range) exactly as an extracted stage would. Fixtures: `busybox_rootfs` (shared per identity and session: do not write
into it) and `fresh_busybox_rootfs` (a private one per test). Plain helper: make_busybox_rootfs().
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")

# (path inside, uid, gid, mode, content or None for a directory)
OWNED_FILES = (
    ("/owned", 0, 0, 0o755, None),
    ("/owned/root-file", 0, 0, 0o644, "root\n"),
    ("/owned/portage-file", 250, 250, 0o640, "portage\n"),
    ("/owned/portage-dir", 250, 250, 0o750, None),
    ("/owned/user-file", 1000, 1000, 0o600, "user\n"),
    ("/home/user", 1000, 1000, 0o700, None),
)

# `python tree_inspect.py ROOT OUT`, run inside a mapping: a JSON of every entry's stat and xattrs
# (hex) under "tree", `ls -lnR` under "ls" and the uid_map, as the namespace sees them.
TREE_INSPECT = textwrap.dedent("""
    import json, os, subprocess, sys
    root, out = sys.argv[1:3]
    tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            xattrs = {}
            if not os.path.islink(path):
                for key in os.listxattr(path, follow_symlinks=False):
                    xattrs[key] = os.getxattr(path, key, follow_symlinks=False).hex()
            tree[os.path.relpath(path, root)] = {
                "uid": st.st_uid, "gid": st.st_gid, "mode": st.st_mode, "ino": st.st_ino,
                "nlink": st.st_nlink, "xattrs": xattrs,
                "link": os.readlink(path) if os.path.islink(path) else None}
    ls = subprocess.run(["ls", "-lnR", root], capture_output=True, text=True).stdout
    with open(out, "w") as handle:
        json.dump({"tree": tree, "ls": ls, "uid_map": open("/proc/self/uid_map").read()}, handle)
""")


_BUILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from chrootforge.sandbox import run_mapped

    root = Path(sys.argv[1])
    owned = eval(sys.argv[2])
    binary = sys.argv[3]
    root.mkdir(mode=0o755)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var/tmp", "home",
              "proc", "dev", "sys", "run", "var/db/repos"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "var/tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    data = open(binary, "rb").read()
    with open(root / "bin/busybox", "wb") as out:
        out.write(data)
    os.chmod(root / "bin/busybox", 0o755)
    import subprocess
    # the host's busybox names the applets (a foreign one cannot run here; Debian builds both alike)
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = root / applet
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath("/bin/busybox", "/" + os.path.dirname(applet)), link)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\\nportage:x:250:250:portage:/var/tmp/portage:/bin/false\\n"
        "user:x:1000:1000:user:/home/user:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/false\\n")
    (root / "etc/group").write_text("root:x:0:\\nportage:x:250:\\nuser:x:1000:\\n"
                                    "nogroup:x:65534:\\n")
    (root / "etc/hostname").write_text("busybox\\n")
    chowns = []
    for inside, uid, gid, mode, content in owned:
        path = root / inside.lstrip("/")
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_text(content)
        os.chmod(path, mode)
        chowns += [f"{uid}:{gid}", str(path)]
    if os.getuid() == 0:
        # Real root's namespace is an unprivileged range: give the tree to it directly (host root
        # may; the namespace may not chown files of ids it does not map), as extraction would.
        from chrootforge.sandbox import detect_idmap

        idmap = detect_idmap()
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [".", *dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), *idmap.to_host(0, 0))
        for i in range(0, len(chowns), 2):
            uid, gid = map(int, chowns[i].split(":"))
            os.lchown(chowns[i + 1], *idmap.to_host(uid, gid))
        sys.exit(0)
    script = "; ".join(f"chown {chowns[i]} '{chowns[i + 1]}'" for i in range(0, len(chowns), 2))
    sys.exit(run_mapped(["/bin/sh", "-c", "set -e; " + script]))
""")


def make_busybox_rootfs(identity, dest: Path, binary: Path = BUSYBOX) -> Path:
    """Build the busybox rootfs at `dest` (must not exist; its parent writable by identity), with
    `binary` as its busybox (another architecture's static one makes a foreign rootfs)."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    owned = repr(OWNED_FILES)
    result = identity.run([*identity.python, "-c", _BUILD, str(dest), owned, str(binary)])
    if result.returncode != 0:
        raise RuntimeError(
            f"building the busybox rootfs as {identity.name} failed:\n{result.stdout}{result.stderr}"
        )
    return dest


def remove_as(identity, path: Path) -> None:
    """Delete a tree that may hold sub-id owned files, with the identity's mapping."""
    if not path.exists():
        return
    script = "import sys; from chrootforge.sandbox import remove_tree; remove_tree(sys.argv[1])"
    result = identity.run([*identity.python, "-c", script, str(path)])
    if result.returncode != 0 and path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=False)  # root can always clean up
        shutil.rmtree(path, ignore_errors=True)


class RootfsCache:
    """One busybox rootfs per identity (with `binary` as its busybox), removed at the end."""

    def __init__(self, binary: Path = BUSYBOX):
        self.binary = binary
        self.built: dict[str, tuple[object, Path, Path]] = {}

    def get(self, identity) -> Path:
        if identity.name not in self.built:
            parent = identity.mkdtemp("busybox.")
            rootfs = make_busybox_rootfs(identity, parent / "rootfs", self.binary)
            self.built[identity.name] = (identity, parent, rootfs)
        return self.built[identity.name][2]

    def cleanup(self) -> None:
        for identity, parent, _ in self.built.values():
            remove_as(identity, parent)


@pytest.fixture(scope="session")
def _busybox_rootfs_cache():
    cache = RootfsCache()
    yield cache
    cache.cleanup()


@pytest.fixture
def busybox_rootfs(identity, _busybox_rootfs_cache) -> Path:
    """The identity's shared busybox rootfs (read it, do not write into it)."""
    return _busybox_rootfs_cache.get(identity)


@pytest.fixture
def fresh_busybox_rootfs(identity):
    """A private busybox rootfs for this test, removed afterwards."""
    parent = identity.mkdtemp("busybox.")
    rootfs = make_busybox_rootfs(identity, parent / "rootfs")
    yield rootfs
    remove_as(identity, parent)
