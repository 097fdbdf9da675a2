"""The mount plan, path resolution, CLI value parsing and id-map logic: pure, no privileges."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from chrootforge.errors import UsageError
from chrootforge.rootpath import PathRefused, RootDir, check_inside_path, executable_in_root
from chrootforge.sandbox import blocked, cliargs, idmap
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.config import Bind, OverlayRoot, SandboxConfig, Tmpfs
from chrootforge.sandbox.mountplan import expected_mountpoints, plan_mounts, validate_sources


def _cfg(**kw) -> SandboxConfig:
    kw.setdefault("root", Path("/srv/root"))
    kw.setdefault("argv", ["/bin/true"])
    return SandboxConfig(**kw)


def _ops(steps):
    return [(s.op, s.target) for s in steps]


def test_order_private_first_pivot_last_root_second():
    steps = plan_mounts(_cfg())
    assert steps[0].op == "private"
    assert steps[1].op == "root" and steps[1].host == "/srv/root"
    assert steps[1].flags & sc.MS_BIND and steps[1].flags & sc.MS_REC
    assert steps[-1].op == "pivot"
    assert [s.op for s in steps].count("pivot") == 1


def test_default_filesystems():
    steps = plan_mounts(_cfg())
    by_target = {s.target: s for s in steps if s.op == "mount"}
    assert by_target["/proc"].fstype == "proc" and by_target["/proc"].fallback == "/proc"
    assert by_target["/dev"].fstype == "tmpfs"
    assert "newinstance" in by_target["/dev/pts"].data and "ptmxmode=0666" in by_target["/dev/pts"].data
    assert by_target["/dev/shm"].fstype == "tmpfs" and "mode=1777" in by_target["/dev/shm"].data
    assert by_target["/run"].fstype == "tmpfs"
    assert "/sys" not in by_target
    binds = {s.target: s.source for s in steps if s.op == "bind"}
    for node in ("null", "zero", "full", "random", "urandom", "tty"):
        assert binds[f"/dev/{node}"] == f"/dev/{node}"
    links = {s.target: s.source for s in steps if s.op == "symlink"}
    assert links["/dev/ptmx"] == "pts/ptmx"
    assert links["/dev/fd"] == "/proc/self/fd"
    # /dev must be mounted before what goes inside it
    order = [s.target for s in steps]
    assert order.index("/dev") < order.index("/dev/null") < order.index("/dev/pts")
    assert order.index("/proc") < order.index("/dev")


def test_sys_ro_and_bad_values():
    steps = plan_mounts(_cfg(sys="ro"))
    sysfs = [s for s in steps if s.target == "/sys"]
    assert len(sysfs) == 1 and sysfs[0].flags & sc.MS_RDONLY and sysfs[0].fallback == "/sys"
    with pytest.raises(UsageError):
        plan_mounts(_cfg(sys="rw"))
    with pytest.raises(UsageError):
        plan_mounts(_cfg(network="bridge"))


def test_repos_read_only_portage_tmpfs_and_caches():
    steps = plan_mounts(
        _cfg(
            repos={"gentoo": Path("/r/g"), "extra": Path("/r/e")},
            portage_tmpfs_size="4G",
            distfiles=Path("/c/d"),
            binpkgs=Path("/c/b"),
        )
    )
    ops = _ops(steps)
    for name, src in (("gentoo", "/r/g"), ("extra", "/r/e")):
        i = ops.index(("bind", f"/var/db/repos/{name}"))
        assert steps[i].source == src
        assert ops[i + 1] == ("remount_ro", f"/var/db/repos/{name}")
    tmp = next(s for s in steps if s.target == "/var/tmp/portage")
    assert tmp.fstype == "tmpfs" and "size=4G" in tmp.data and "uid=250" in tmp.data
    for dst in ("/var/cache/distfiles", "/var/cache/binpkgs"):
        assert ("bind", dst) in ops and ("remount_ro", dst) not in ops
    single = plan_mounts(_cfg(portage_tmpfs_size="", single_id=True))
    tmp = next(s for s in single if s.target == "/var/tmp/portage")
    assert "uid=" not in tmp.data and "size=" not in tmp.data
    assert not any(s.target == "/var/tmp/portage" for s in plan_mounts(_cfg()))


def test_network_host_copies_resolv_conf_and_hosts():
    assert not [s for s in plan_mounts(_cfg()) if s.op == "copy_file"]
    copies = [s for s in plan_mounts(_cfg(network="host")) if s.op == "copy_file"]
    assert sorted(s.target for s in copies) == ["/etc/hosts", "/etc/resolv.conf"]
    assert all(s.create == "file" for s in copies)


def test_extra_binds_and_tmpfs(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    steps = plan_mounts(
        _cfg(binds=[Bind(tmp_path, "/mnt/dir", True), Bind(f, "/etc/x")], tmpfs=[Tmpfs("/scratch", "1G")])
    )
    ops = _ops(steps)
    i = ops.index(("bind", "/mnt/dir"))
    assert steps[i].create == "dir" and ops[i + 1] == ("remount_ro", "/mnt/dir")
    j = ops.index(("bind", "/etc/x"))
    assert steps[j].create == "file" and ops[j + 1] != ("remount_ro", "/etc/x")
    scratch = next(s for s in steps if s.target == "/scratch")
    assert "size=1G" in scratch.data
    assert ops.index(("mount", "/scratch")) < len(ops) - 1


@pytest.mark.parametrize("dst", ["../etc", "/a/../../etc", "relative", "/", "/./.."])
def test_escaping_targets_are_refused(dst):
    with pytest.raises(UsageError):
        plan_mounts(_cfg(binds=[Bind(Path("/tmp"), dst)]))


def test_bad_repo_names_refused():
    for name in ("", "a/b", ".."):
        with pytest.raises(UsageError):
            plan_mounts(_cfg(repos={name: Path("/tmp")}))


def test_readonly_root_only_the_root():
    """readonly_root marks the root step read-only (a bind is remounted so by the mounter); the
    mounts on it are as they were."""
    plain, readonly = (
        plan_mounts(_cfg(tmpfs=[Tmpfs("/t")])),
        plan_mounts(_cfg(tmpfs=[Tmpfs("/t")], readonly_root=True)),
    )
    assert not plain[1].flags & sc.MS_RDONLY and readonly[1].flags & sc.MS_RDONLY
    assert [s for s in plain if s.op != "root"] == [s for s in readonly if s.op != "root"]
    overlay = OverlayRoot([Path("/l1")], Path("/u/upper"), Path("/u/work"))
    assert plan_mounts(_cfg(root=overlay, readonly_root=True))[1].flags & sc.MS_RDONLY


def test_overlay_root():
    root = OverlayRoot([Path("/l1"), Path("/l2")], Path("/u/upper"), Path("/u/work"))
    step = plan_mounts(_cfg(root=root))[1]
    assert step.op == "root" and step.fstype == "overlay" and step.host == "/l1"
    opts = step.data.split(",")
    assert "lowerdir=/l1:/l2" in opts and "upperdir=/u/upper" in opts and "workdir=/u/work" in opts
    assert {"userxattr", "index=off", "metacopy=off"} <= set(opts)
    with pytest.raises(UsageError):
        plan_mounts(_cfg(root=OverlayRoot([], Path("/u"), Path("/w"))))
    with pytest.raises(UsageError):
        plan_mounts(_cfg(root=OverlayRoot([Path("/a,b")], Path("/u"), Path("/w"))))


def test_expected_mountpoints():
    points = expected_mountpoints(plan_mounts(_cfg(repos={"gentoo": Path("/g")})))
    assert points[0] == "/"
    assert "/var/db/repos/gentoo" in points and points.count("/var/db/repos/gentoo") == 1
    assert "/dev/ptmx" not in points


def test_validate_sources(tmp_path):
    validate_sources(_cfg(root=tmp_path))
    with pytest.raises(UsageError, match="does not exist"):
        validate_sources(_cfg(root=tmp_path / "nope"))
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        validate_sources(_cfg(root=tmp_path / "f"))
    with pytest.raises(UsageError, match="bind source"):
        validate_sources(_cfg(root=tmp_path, binds=[Bind(tmp_path / "missing", "/x")]))
    with pytest.raises(UsageError, match="repository"):
        validate_sources(_cfg(root=tmp_path, repos={"gentoo": tmp_path / "missing"}))


def test_mount_targets_resolve_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/bin/sh").write_text("")
    (root / "usr/bin/sh").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    (root / "abs").symlink_to("/etc")  # absolute: must mean root/etc, not the host's
    (root / "up").symlink_to("../../../../..")
    (root / "loop").symlink_to("loop")
    (root / "last").symlink_to("/etc/last-target")  # a final symlink is followed, inside
    assert executable_in_root(str(root), "/bin/sh")
    assert not executable_in_root(str(root), "/abs/passwd")
    created = []
    with RootDir(root) as rd:
        with rd.target("/abs/newdir/file", "file", created) as path:
            assert os.readlink(path) == str(root / "etc/newdir/file") and os.path.isfile(path)
        assert not Path("/etc/newdir").exists()
        with rd.target("/up/var/db/repos/gentoo", "dir", created) as path:
            assert os.readlink(path) == str(root / "var/db/repos/gentoo") and os.path.isdir(path)
        with rd.target("/last", "dir", created) as path:
            assert os.readlink(path) == str(root / "etc/last-target")
        with pytest.raises(PathRefused, match="too many levels"), rd.target("/loop/x", "dir", created):
            pass
    made = {c.inside for c in created}
    assert {"/etc/newdir", "/etc/newdir/file", "/var", "/var/db/repos/gentoo", "/etc/last-target"} <= made


def test_creations_on_ephemeral_filesystems_are_not_recorded(tmp_path):
    """What the plan creates on its own tmpfs (/dev/null on the sandbox's /dev, say) ends with the
    sandbox: the mounter names those filesystems, and nothing there is recorded for undoing."""
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    created = []
    with RootDir(root) as rd:
        rd.ephemeral_devs.add(os.stat(root / "dev").st_dev + 1)  # another filesystem
        with rd.target("/dev/null", "file", created):
            pass
        assert [c.inside for c in created] == ["/dev/null"]
        rd.ephemeral_devs.add(os.stat(root / "dev").st_dev)
        with rd.target("/dev/zero", "file", created), rd.target("/dev/pts", "dir", created):
            pass
    assert [c.inside for c in created] == ["/dev/null"]
    assert (root / "dev/zero").is_file() and (root / "dev/pts").is_dir()


def test_created_targets_are_undone_with_their_parents_times(tmp_path):
    from chrootforge.rootpath import decode_created, encode_created, undo_created

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.utime(root / "etc", ns=(1_000_000_000, 2_000_000_000))
    os.utime(root, ns=(3_000_000_000, 4_000_000_000))
    created = []
    with RootDir(root) as rd:
        with rd.target("/etc/a/b", "dir", created):
            pass
        with rd.target("/run", "dir", created):
            pass
        (root / "etc/a/b/keep").write_text("payload data")  # not ours to remove
        created = decode_created(encode_created(created))  # what crosses the pipe
        undo_created(rd, created)
    assert not (root / "run").exists()
    assert (root / "etc/a/b/keep").exists()
    (root / "etc/a/b/keep").unlink()
    with RootDir(root) as rd:
        undo_created(rd, created)
    assert os.listdir(root / "etc") == []
    assert os.stat(root / "etc").st_mtime_ns == 2_000_000_000
    assert os.stat(root).st_mtime_ns == 4_000_000_000


def test_layer_names_and_in_memory_parents():
    from chrootforge.rootpath import entry_parts, parent_policy_problem

    assert entry_parts("./a//b/") == ["a", "b"]
    for bad in ("/etc/passwd", "a/../../x", ".."):
        with pytest.raises(PathRefused):
            entry_parts(bad)
    kinds = {"a": "symlink", "f": "file", "d": "dir"}
    assert parent_policy_problem(["a", "x"], kinds.get) == "it goes through the symlink a"
    assert "not a directory" in parent_policy_problem(["f", "x"], kinds.get)
    assert parent_policy_problem(["d", "x", "y"], kinds.get) is None


def test_check_inside_path():
    assert check_inside_path("/a//b/./c") == "/a/b/c"
    for bad in ("a", "/a/../b", "/"):
        with pytest.raises(UsageError):
            check_inside_path(bad)


def test_cli_values(tmp_path):
    bind = cliargs.parse_bind(f"{tmp_path}:/mnt:ro")
    assert bind == Bind(str(tmp_path.resolve()), "/mnt", True)
    assert not cliargs.parse_bind(f"{tmp_path}:/mnt").readonly
    assert not cliargs.parse_bind(f"{tmp_path}:/mnt:rw").readonly
    for bad in (
        str(tmp_path),
        f"{tmp_path}:",
        ":/x",
        f"{tmp_path}:/x:rx",
        f"{tmp_path}:../x",
        f"{tmp_path}/missing:/x",
        "a:b:c:d",
    ):
        with pytest.raises(UsageError):
            cliargs.parse_bind(bad)
    assert cliargs.parse_tmpfs("/scratch:512M") == Tmpfs("/scratch", "512M")
    assert cliargs.parse_tmpfs("/scratch") == Tmpfs("/scratch", None)
    for bad in ("/x:", "/x:lots", "x", "/x:1:2"):
        with pytest.raises(UsageError):
            cliargs.parse_tmpfs(bad)
    assert cliargs.parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(UsageError):
        cliargs.parse_env(["NOEQUALS"])
    # names runc or a shell would split or drop, values no environment can hold (issue 18)
    for bad in ("A\nB=1", "A\n=1", "MY VAR=1", "A\tB=1", "=1", "A\x00B=1", "A=x\x00y", "\x1b[2J=1"):
        with pytest.raises(UsageError, match="--env: "):
            cliargs.parse_env([bad])
    assert cliargs.parse_env(["lower.dotted=1", "MULTI=a\nb"]) == {"lower.dotted": "1", "MULTI": "a\nb"}
    assert cliargs.parse_repo(f"gentoo={tmp_path}") == ("gentoo", str(tmp_path.resolve()))
    for bad in (f"={tmp_path}", "gentoo=", f"a/b={tmp_path}", f"x={tmp_path}/missing"):
        with pytest.raises(UsageError):
            cliargs.parse_repo(bad)


def test_subid_parsing_and_maps():
    text = "other:100000:65536\n# junk\nbad:line\n1001:200000:10\nme:300000:65536\n"
    assert idmap.parse_subid(text, "me", 1234) == (300000, 65536)
    assert idmap.parse_subid(text, "nobody-here", 1001) == (200000, 10)
    assert idmap.parse_subid(text, "ghost", 42) is None
    full = idmap.full_map(1000, 1000, (300000, 65536), (400000, 100000))
    assert full.uid_map == ((0, 1000, 1), (1, 300000, 65535))
    assert full.gid_map == ((0, 1000, 1), (1, 400000, 65535))
    assert full.helper_args("uid") == ["0", "1000", "1", "1", "300000", "65535"]
    assert full.use_helpers and not full.single_id and full.size == 65536
    small = idmap.full_map(1000, 1000, (300000, 10), (300000, 10))
    assert small.uid_map[1] == (1, 300000, 10)
    single = idmap.single_map(1000, 1001)
    assert single.single_id and single.gid_lines() == "0 1001 1\n"
    assert full.host_uid == 1000 and full.to_host(250, 250) == (300249, 400249)
    assert full.to_inside(300249, 400249) == (250, 250) and full.to_inside(5, 5) is None
    assert full.nested_lines("uid") == "0 0 1\n1 1 65535\n"  # the payload's namespace, 1:1
    assert single.nested_lines("gid") == "0 0 1\n"
    ranged = idmap.range_map(500000, 600000)
    assert ranged.uid_lines() == "0 500000 65536\n" and not ranged.use_helpers
    assert ranged.host_uid == 500000 and ranged.to_host(65536, 0) is None
    assert ranged.nested_lines("uid") == "0 0 65536\n"


def test_free_range_suggestion():
    assert idmap.free_range_start("") == 131072  # 100000 rounded up to a 65536 boundary
    text = "a:100000:65536\nb:300000:65536\nbad\n"
    start = idmap.free_range_start(text)
    assert start >= 365536 and start % 65536 == 0


def test_real_root_gets_an_unprivileged_range(tmp_path):
    """Root is never mapped to itself: its /etc/subuid entry, else the documented default."""
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("cftest:100000:65536\n")
    subgid.write_text("")
    default = idmap.root_map(str(subuid), str(subgid))
    assert default.uid_map == ((0, idmap.DEFAULT_ROOT_RANGE[0], 65536),)
    assert default.host_uid != 0 and default.to_inside(0, 0) is None
    subuid.write_text("root:2000000:65536\n")
    subgid.write_text("0:3000000:70000\n")
    own = idmap.root_map(str(subuid), str(subgid))
    assert own.uid_map == ((0, 2000000, 65536),) and own.gid_map == ((0, 3000000, 65536),)
    subuid.write_text("root:0:65536\n")
    with pytest.raises(UsageError, match="host root"):
        idmap.root_map(str(subuid), str(subgid))
    subuid.write_text("root:2000000:1000\n")
    with pytest.raises(UsageError, match="1000 ids"):
        idmap.root_map(str(subuid), str(subgid))


@pytest.mark.skipif(os.getuid() != 0, reason="checks the real-root choice")
def test_root_never_maps_host_root():
    chosen = idmap.detect_idmap()
    assert chosen.to_inside(0, 0) is None and chosen.host_uid != 0 and chosen.size == 65536
    single = idmap.detect_idmap(single_id=True)
    assert single.host_uid == chosen.host_uid and single.to_inside(0, 0) is None


def test_blocked_diagnosis_names_the_remedy():
    cause, remedy = blocked.diagnose(errno.ENOSPC)
    assert "max_user_namespaces" in cause and "sysctl" in remedy and "--vm on" in remedy
    err = blocked.userns_blocked_error(errno.EPERM)
    assert "user namespace" in str(err) and err.hint
