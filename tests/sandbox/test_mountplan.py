"""The mount plan, path resolution, CLI value parsing and id-map logic: pure, no privileges."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from chrootforge.errors import CfError, UsageError
from chrootforge.sandbox import blocked, cliargs, idmap
from chrootforge.sandbox import syscalls as sc
from chrootforge.sandbox.config import Bind, OverlayRoot, SandboxConfig, Tmpfs
from chrootforge.sandbox.mountplan import expected_mountpoints, plan_mounts, validate_sources
from chrootforge.sandbox.rootpath import check_inside_path, ensure_target, resolve_in_root


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
    steps = plan_mounts(_cfg(repos={"gentoo": Path("/r/g"), "extra": Path("/r/e")},
                             portage_tmpfs_size="4G", distfiles=Path("/c/d"),
                             binpkgs=Path("/c/b")))
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
    steps = plan_mounts(_cfg(binds=[Bind(tmp_path, "/mnt/dir", True), Bind(f, "/etc/x")],
                             tmpfs=[Tmpfs("/scratch", "1G")]))
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


def test_resolve_in_root_keeps_symlinks_inside(tmp_path):
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "abs").symlink_to("/etc")  # absolute: must mean root/etc, not the host's
    (root / "up").symlink_to("../../../../..")
    (root / "loop").symlink_to("loop")
    assert resolve_in_root(str(root), "/bin/sh") == "/usr/bin/sh"
    assert resolve_in_root(str(root), "/abs/passwd") == "/etc/passwd"
    assert resolve_in_root(str(root), "/up/etc/shadow") == "/etc/shadow"
    assert resolve_in_root(str(root), "/missing/a/b") == "/missing/a/b"
    with pytest.raises(CfError):
        resolve_in_root(str(root), "/loop/x")
    host = ensure_target(str(root), "/abs/newdir/file", "file")
    assert host == str(root / "etc/newdir/file") and os.path.isfile(host)
    assert not Path("/etc/newdir").exists()
    host = ensure_target(str(root), "/up/var/db/repos/gentoo", "dir")
    assert host == str(root / "var/db/repos/gentoo") and os.path.isdir(host)


def test_check_inside_path():
    assert check_inside_path("/a//b/./c") == "/a/b/c"
    for bad in ("a", "/a/../b", "/"):
        with pytest.raises(UsageError):
            check_inside_path(bad)


def test_cli_values(tmp_path):
    bind = cliargs.parse_bind(f"{tmp_path}:/mnt:ro")
    assert bind == Bind(tmp_path.resolve(), "/mnt", True)
    assert not cliargs.parse_bind(f"{tmp_path}:/mnt").readonly
    assert not cliargs.parse_bind(f"{tmp_path}:/mnt:rw").readonly
    for bad in (str(tmp_path), f"{tmp_path}:", ":/x", f"{tmp_path}:/x:rx", f"{tmp_path}:../x",
                f"{tmp_path}/missing:/x", "a:b:c:d"):
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
    assert cliargs.parse_repo(f"gentoo={tmp_path}") == ("gentoo", tmp_path.resolve())
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
    ident = idmap.identity_map()
    assert ident.uid_lines() == "0 0 65536\n" and not ident.use_helpers
    single = idmap.single_map(1000, 1001)
    assert single.single_id and single.gid_lines() == "0 1001 1\n"


def test_free_range_suggestion():
    assert idmap.free_range_start("") == 131072  # 100000 rounded up to a 65536 boundary
    text = "a:100000:65536\nb:300000:65536\nbad\n"
    start = idmap.free_range_start(text)
    assert start >= 365536 and start % 65536 == 0


@pytest.mark.skipif(os.getuid() != 0, reason="checks the real-root choice")
def test_root_maps_identity_range():
    assert idmap.detect_idmap() == idmap.identity_map()


def test_blocked_diagnosis_names_the_remedy():
    cause, remedy = blocked.diagnose(errno.ENOSPC)
    assert "max_user_namespaces" in cause and "sysctl" in remedy and "--vm on" in remedy
    err = blocked.userns_blocked_error(errno.EPERM)
    assert "user namespace" in str(err) and err.hint
