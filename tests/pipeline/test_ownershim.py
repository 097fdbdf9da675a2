"""The owner shim of single-id builds (chrootforge/gentoo/ownershim.c), built with this host's C
compiler and preloaded into real tools in a real single-id namespace (as a user without
/etc/subuid, and as root with the single-id map): chown to ids the namespace lacks is recorded and
stat reports it, as chown(2) would have left things; a program that locks itself down with
seccomp is left alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from chrootforge import ownerxattr
from chrootforge.gentoo import singleid
from tests.helpers.identity import get_identity

# Installs a seccomp filter that kills the process on any *getxattr (like scanelf's and file's
# sandboxes, which know nothing of the shim), then stats a file.
LOCKED = textwrap.dedent("""
    #include <linux/filter.h>
    #include <linux/seccomp.h>
    #include <stddef.h>
    #include <stdio.h>
    #include <sys/prctl.h>
    #include <sys/stat.h>
    #include <sys/syscall.h>
    int main(int argc, char **argv) {
        struct sock_filter code[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getxattr, 3, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_lgetxattr, 2, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fgetxattr, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        };
        struct sock_fprog prog = {sizeof code / sizeof code[0], code};
        struct stat st;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
            return 2;
        if (stat(argv[1], &st)) return 3;
        printf("%u:%u\\n", st.st_uid, st.st_gid);
        return 0;
    }
""")

SCRIPT = textwrap.dedent("""
    set -u
    cd "$1"
    export CF_OWNER_LOG="$1/owners.log"
    echo a > f && chmod 4755 f && setcap cap_net_raw+ep f
    echo "capsbefore=$(getcap f | wc -l)"
    chown 701:702 f && echo "chown=$(stat -c '%u:%g %a' f)"
    echo "caps=$(getcap f 2>/dev/null | wc -l)"
    chown :0 f && echo "group0=$(stat -c %u:%g f)"
    chown 0:0 f && echo "root=$(stat -c %u:%g f)"
    mkdir d && chown 250:250 d && chmod 2775 d && echo "dir=$(stat -c '%u:%g %a' d)"
    install -o 701 -g 701 -m 0640 f d/inst && echo "install=$(stat -c '%u:%g %a' d/inst)"
    python3 -c 'import os; fd = os.open("d/inst", os.O_RDONLY); os.fchown(fd, 5, -1); print("fchown=%d:%d" % os.stat(fd)[4:6])'
    ln -s inst d/link && chown -h 9:9 d/link && echo "symlink=$(stat -c %u:%g d/link)"
    tar --numeric-owner -cf t.tar d && tar --numeric-owner -tvf t.tar | awk '{print "tar", $2, $NF}'
    mkdir x && tar --numeric-owner --same-owner -xpf t.tar -C x && echo "untar=$(stat -c %u:%g x/d x/d/inst | tr '\\n' ' ')"
    cp -a d y && echo "cp=$(stat -c %u:%g y y/inst | tr '\\n' ' ')"
    chown 7:7 /nonexistent 2>/dev/null; echo "missing=$?"
    echo "locked=$(./locked d)"
""")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on this host")
    out = tmp_path_factory.mktemp("shim")
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", out / "shim.so", singleid.SOURCE, "-ldl"],
        check=True,
    )
    (out / "locked.c").write_text(LOCKED)
    subprocess.run([cc, "-O2", "-o", out / "locked", out / "locked.c"], check=True)
    return out


@pytest.mark.parametrize("who", ["single", "root"])
def test_chown_to_ids_the_namespace_lacks_is_recorded(who, shim):
    identity = get_identity(who)
    work = identity.mkdtemp("shim.")
    for name in ("shim.so", "locked"):
        shutil.copy(shim / name, work / name)
    (work / "script.sh").write_text(SCRIPT)
    if identity.is_root:
        from chrootforge.sandbox import owned_dir
        from chrootforge.sandbox.idmap import detect_idmap

        owned_dir(work, detect_idmap(single_id=True))
    for path in work.iterdir():
        path.chmod(0o755)
    code = (
        "import sys; from chrootforge.sandbox import run_mapped, detect_idmap; "
        "sys.exit(run_mapped(['sh', sys.argv[1] + '/script.sh', sys.argv[1]], detect_idmap(single_id=True), "
        "env={'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'LD_PRELOAD': sys.argv[1] + '/shim.so'}))"
    )
    done = identity.run([*identity.python, "-c", code, str(work)])
    assert done.returncode == 0, done.stdout + done.stderr
    said = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        said[key] = value.strip()
    # chown(2) drops set-user-ID and capabilities: so does the emulation
    assert said["capsbefore"] == "1" and said["chown"] == "701:702 755" and said["caps"] == "0"
    assert said["group0"] == "701:0" and said["root"] == "0:0"
    assert said["dir"] == "250:250 2775"  # a directory keeps its setgid bit
    assert said["install"] == "701:701 640" and said["fchown"] == "5:701"
    assert said["symlink"] == "0:0"  # no xattr on a symlink: not recorded, logged
    tar = sorted(line for line in done.stdout.splitlines() if line.startswith("tar "))
    assert tar == ["tar 0/0 inst", "tar 250/250 d/", "tar 5/701 d/inst"]
    assert said["untar"] == "250:250 5:701" and said["cp"] == "250:250 5:701"
    assert said["missing"] == "1"  # a real error stays one
    assert said["locked"] == "0:0"  # under its own seccomp filter a program sees the plain owner
    log = (work / "owners.log").read_text().splitlines()
    assert log == [f"symlink\t9:9\t{work}/d/link"]
    # what is on disk is the rootless containers record, as the commit reads it
    read = (
        "import json, os, sys; from chrootforge import ownerxattr; "
        "print(json.dumps({p: ownerxattr.read(os.path.join(sys.argv[1], p)).hex() for p in sys.argv[2:]}))"
    )
    records = identity.run([*identity.python, "-c", read, str(work), "d", "d/inst", "x/d/inst"])
    assert records.returncode == 0, records.stderr
    decoded = {p: ownerxattr.decode(bytes.fromhex(v)) for p, v in json.loads(records.stdout).items()}
    assert decoded == {"d": (250, 250), "d/inst": (5, 701), "x/d/inst": (5, 701)}
