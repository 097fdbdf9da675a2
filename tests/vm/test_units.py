"""Pure parts of the VM harness, without QEMU: the argv, the job script, the recipe hash, the
initramfs archive, the share specs, the index merge, the accel choice and the userns probe."""

from __future__ import annotations

import errno
import json
import lzma
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from chrootforge.build.flags import BuildOptions
from chrootforge.errors import CfError, UsageError
from chrootforge.sandbox import binfmt
from chrootforge.vm import accel, kernel, merge, qemu, recipe, rootfs, vmbuild
from chrootforge.vm.cli import parse_size
from chrootforge.vm.job import Job, command_argv, guest_ids, job_script, parse_status
from chrootforge.vm.shares import Share, minimal_dirs, parse_share

REPO = Path(__file__).resolve().parents[2]
SECCOMP = REPO / "tests" / "helpers" / "seccomp.py"


def machine(tmp_path: Path, **kw) -> qemu.Machine:
    base = {
        "kernel": tmp_path / "vmlinux",
        "initramfs": tmp_path / "initramfs.cpio",
        "rootfs": tmp_path / "root.sqfs",
        "job_file": tmp_path / "job.sh",
        "console_log": tmp_path / "c.log",
        "stdout_log": tmp_path / "o.log",
        "stderr_log": tmp_path / "e.log",
        "bios": Path("/usr/share/qemu/qboot.rom"),
    }
    return qemu.Machine(**{**base, **kw})


# -- the QEMU command line -------------------------------------------------------------------------
def test_argv_has_no_network_device_and_reports_status(tmp_path):
    argv = qemu.argv(machine(tmp_path))
    assert argv[argv.index("-nic") + 1] == "none" and "-nodefaults" in argv
    assert not any(a.startswith(("-netdev", "-net")) and a != "-nic" for a in argv)
    assert not any("virtio-net" in a or "e1000" in a for a in argv)
    assert "isa-debug-exit,iobase=0xf4,iosize=0x04" in argv
    assert argv[argv.index("-accel") + 1] == "tcg" and argv[argv.index("-cpu") + 1] == "max"
    assert argv[argv.index("-M") + 1] == "q35" and "qboot.rom" in argv[argv.index("-bios") + 1]
    drives = [a for a in argv if a.startswith("file=")]
    assert drives == [f"file={tmp_path / 'root.sqfs'},format=raw,if=none,id=root,readonly=on"]
    assert [a for a in argv if a.startswith("chardev:")] == [
        "chardev:console",
        "chardev:stdout",
        "chardev:stderr",
    ]


def test_argv_shares_scratch_and_kvm(tmp_path):
    shares = (Share(Path("/src,odd"), "/opt/chrootforge/src", True), Share(tmp_path, "/cf/out", False))
    argv = qemu.argv(
        machine(tmp_path, accel="kvm", cpus=2, memory_mb=4096, shares=shares, scratch=tmp_path / "s.img")
    )
    assert argv[argv.index("-cpu") + 1] == "host" and argv[argv.index("-smp") + 1] == "2"
    assert argv[argv.index("-m") + 1] == "4096M"
    fsdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-fsdev"]
    assert fsdevs[0] == "local,id=cf0,path=/src,,odd,security_model=none,multidevs=remap,readonly=on"
    assert fsdevs[1] == f"local,id=cf1,path={tmp_path},security_model=none,multidevs=remap"
    assert "virtio-9p-pci,fsdev=cf1,mount_tag=cf1" in argv
    assert "virtio-blk-pci,drive=scratch,serial=cfscratch" in argv


def test_exit_status_only_from_odd_codes():
    assert qemu.exit_status(1) == 0 and qemu.exit_status(7) == 3 and qemu.exit_status(511) == 255
    assert qemu.exit_status(0) is None and qemu.exit_status(2) is None and qemu.exit_status(-9) is None


# -- the job script --------------------------------------------------------------------------------
HOSTILE = ("$(touch /tmp/pwned)", "'; poweroff -f; '", "a\nb", "", "`id`", "\\", "--", "*")


def test_job_script_quotes_everything(tmp_path):
    shares = (Share(tmp_path, "/mnt/it's here", True), Share(tmp_path, "/mnt/$(x)", False))
    job = Job(
        argv=("printf", *HOSTILE), uid=1234, gid=99, cwd="/mnt/$(x)", env=(("V", "$(id)"),), shares=shares
    )
    probe = tmp_path / "probe.sh"
    probe.write_text(
        'cf_share() { printf "share<%s|%s|%s>\\n" "$1" "$2" "$3"; }\n. "$1"\ncf_mounts\n'
        'printf "uid=%s gid=%s root=%s cwd=%s\\n" "$CF_UID" "$CF_GID" "$CF_AS_ROOT" "$CF_CWD"\n'
        'for a in "$@"; do printf "%s\\0" "$a"; done\n'
    )
    (tmp_path / "job.sh").write_text(job_script(job))
    out = subprocess.run(["sh", str(probe), str(tmp_path / "job.sh")], capture_output=True, check=True).stdout
    head, _, args = out.partition(b"cwd=/mnt/$(x)\n")
    assert head.decode() == "share<cf0|ro|/mnt/it's here>\nshare<cf1|rw|/mnt/$(x)>\nuid=1234 gid=99 root=0 "
    assert args.split(b"\0")[:-1] == [a.encode() for a in command_argv(job)]
    assert command_argv(job)[-len(HOSTILE) - 1 :] == ["printf", *HOSTILE]
    assert "V=$(id)" in command_argv(job) and not (tmp_path / "pwned").exists()


def test_job_script_registers_emulators_quoted(tmp_path):
    from chrootforge.platforms import parse_platform
    from chrootforge.vm.emulators import guest_binfmt

    shares, lines = guest_binfmt(
        [parse_platform(p) for p in ("linux/amd64", "linux/arm64", "arm64", "linux/386")]
    )
    assert shares == [Share(Path("/usr/bin"), "/cf/emulators/0", True)]  # amd64 and 386: the guest's own
    assert lines == [binfmt.registration("aarch64", "/cf/emulators/0/qemu-aarch64-static").line().decode()]
    job = Job(argv=("true",), uid=1, gid=1, binfmt=(*lines, "$(touch /tmp/pwned)'x"))
    probe = tmp_path / "probe.sh"
    probe.write_text('cf_register() { printf "<%s>\\n" "$1"; }\n. "$1"\ncf_binfmt\n')
    (tmp_path / "job.sh").write_text(job_script(job))
    out = subprocess.run(
        ["sh", str(probe), str(tmp_path / "job.sh")], capture_output=True, check=True, text=True
    )
    assert out.stdout.splitlines() == [f"<{lines[0]}>", "<$(touch /tmp/pwned)'x>"]
    assert "\\x7f\\x45" in lines[0]  # the kernel, not the shell, decodes the escapes


def test_job_rejects_bad_env_and_commands():
    with pytest.raises(ValueError):
        command_argv(Job(argv=("true",), uid=1, gid=1, env=(("A B", "x"),)))
    with pytest.raises(ValueError):
        command_argv(Job(argv=("A=b",), uid=1, gid=1))
    assert guest_ids(0, 0) == (1000, 1000) and guest_ids(1001, 1002) == (1001, 1002)


def test_status_line_parsing():
    console = "boot\nchrootforge-vm: job started\nchrootforge-vm: status 42\r\n"
    assert parse_status(console) == 42
    assert parse_status("chrootforge-vm: status 1\nnoise chrootforge-vm: status 9\n") == 1
    assert parse_status("Kernel panic - not syncing") is None


# -- the recipe and its hash -----------------------------------------------------------------------
def sample_recipe() -> recipe.Recipe:
    return recipe.Recipe(
        kernel_package="linux-image-6.1.0-57-amd64",
        kernel_version="6.1.192-3",
        busybox_version="1:1.35",
        packages=("python3", "mount"),
        modules=("9p",),
        requirements=("zstandard>=0.21",),
        guest_files=(("guest-init", "ab"),),
    )


def test_recipe_key_is_stable_and_covers_every_input():
    base = sample_recipe()
    assert base.key() == sample_recipe().key() and len(base.key()) == 24
    variants = [
        replace(base, kernel_version="6.1.192-4"),
        replace(base, busybox_version="1:1.36"),
        replace(base, packages=("python3", "mount", "gpg")),
        replace(base, modules=("9p", "ext4")),
        replace(base, requirements=("zstandard>=0.22",)),
        replace(base, guest_files=(("guest-init", "ac"),)),
        replace(base, suite="trixie"),
        replace(base, python="3.13"),
    ]
    keys = {v.key() for v in variants}
    assert len(keys) == len(variants) and base.key() not in keys
    assert base.kernel_release == "6.1.0-57-amd64"


def test_recipe_reads_the_checkout():
    assert recipe.read_list("# c\npython3  # why\n\n mount\n") == ("python3", "mount")
    packages = recipe.read_list((REPO / "vm" / "packages.txt").read_text())
    assert {"python3", "uidmap", "mount", "passwd", "gpg"} <= set(packages)
    assert "zstandard>=0.21" in recipe.runtime_requirements(REPO)
    assert (
        recipe.parse_depends("linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n", "linux-image-")
        == "linux-image-6.1.0-57-amd64"
    )
    assert recipe.parse_version("Package: x\nVersion: 1:2.3-4\n") == "1:2.3-4"
    with pytest.raises(CfError):
        recipe.parse_depends("Depends: other\n", "linux-image-")


def test_guest_file_change_changes_the_key(tmp_path, monkeypatch):
    folder = tmp_path / "vm"
    folder.mkdir()
    for name in recipe.GUEST_FILES:
        (folder / name).write_text(f"{name}\n")
    monkeypatch.setattr(recipe, "GUEST_DIR", folder)
    monkeypatch.setattr(
        recipe,
        "apt_packages",
        lambda: {"kernel_package": "linux-image-9-amd64", "kernel_version": "1", "busybox_version": "2"},
    )
    first = recipe.resolve().key()
    (folder / "guest-init").write_text("changed\n")
    assert recipe.resolve().key() != first


def test_apt_answers_are_memoized_per_state_of_the_lists(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "a_Packages").write_text("one")
    monkeypatch.setattr(recipe, "APT_LISTS", lists)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    answers = iter(
        [
            {"kernel_package": "k1", "kernel_version": "1", "busybox_version": "b"},
            {"kernel_package": "k2", "kernel_version": "2", "busybox_version": "b"},
        ]
    )
    monkeypatch.setattr(recipe, "_apt_packages", lambda: next(answers))
    assert recipe.apt_packages()["kernel_package"] == "k1"
    assert recipe.apt_packages()["kernel_package"] == "k1"  # not asked again
    (lists / "a_Packages").write_text("three")  # apt-get update
    assert recipe.apt_packages()["kernel_package"] == "k2"


# -- kernel and initramfs --------------------------------------------------------------------------
def test_cpio_is_what_cpio_reads_back(tmp_path):
    entries = kernel.initramfs_entries(
        b"BUSYBOX", b"#!/bin/busybox sh\n", [("virtio.ko", b"\x7fELFa"), ("9p.ko", b"x" * 5)]
    )
    data = kernel.cpio_newc(entries)
    assert data == kernel.cpio_newc(entries)  # deterministic
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(
        ["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames"], input=data, cwd=out, check=True
    )
    assert (out / "init").read_bytes() == b"#!/bin/busybox sh\n" and os.access(out / "init", os.X_OK)
    assert (out / "modules.order").read_text() == "virtio.ko\n9p.ko\n"
    assert (out / "modules" / "9p.ko").read_bytes() == b"xxxxx" and (out / "bin" / "busybox").exists()


def test_vmlinux_is_found_in_the_bzimage():
    elf = b"\x7fELF" + os.urandom(4000)
    decoy = lzma.compress(b"not a kernel", format=lzma.FORMAT_XZ)
    bzimage = b"MZ setup" + decoy + b"pad" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailer"
    assert kernel.extract_vmlinux(bzimage) == elf
    with pytest.raises(CfError, match="no XZ"):
        kernel.extract_vmlinux(b"MZ" + decoy)


def test_mmdebstrap_modes(tmp_path):
    argv = rootfs.mmdebstrap_argv(
        "fakechroot", "bookworm", ("python3", "gpg"), tmp_path / "st", tmp_path / "r.tar"
    )
    assert "--mode=fakechroot" in argv and "--variant=essential" in argv and "--include=python3,gpg" in argv
    assert f"--customize-hook=sync-in {tmp_path / 'st'} /" in argv and argv[-2:] == [
        "bookworm",
        str(tmp_path / "r.tar"),
    ]
    assert "--mode=unshare" in rootfs.mmdebstrap_argv("unshare", "bookworm", ("x",), tmp_path, tmp_path / "t")
    pip = rootfs.wheelhouse_argv(("zstandard>=0.21",), tmp_path, "3.11")
    assert pip[pip.index("--python-version") + 1] == "3.11" and "--only-binary=:all:" in pip


# -- shares ----------------------------------------------------------------------------------------
def test_share_specs(tmp_path):
    assert parse_share(f"{tmp_path}:/mnt/a:ro") == Share(tmp_path, "/mnt/a", True)
    assert parse_share(f"{tmp_path}:/mnt/a") == Share(tmp_path, "/mnt/a", False)
    for bad in (
        f"{tmp_path}",
        f"{tmp_path}:rel",
        f"{tmp_path}:/proc/x",
        f"{tmp_path}:/",
        f"{tmp_path}:/etc",
        f"{tmp_path}:/mnt/../etc",
        f"{tmp_path / 'missing'}:/mnt/a",
        f"{tmp_path}:/mnt/a:rx:ro",
        f"{tmp_path}:/opt/chrootforge/src",
    ):
        with pytest.raises(UsageError):
            parse_share(bad)
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="directory"):
        parse_share(f"{tmp_path / 'f'}:/mnt/f")


def test_build_inputs_cannot_cover_the_guests_mounts():
    from chrootforge.vm.shares import check_input_dir

    assert check_input_dir(Path("/var/db/repos/gentoo")) == Path("/var/db/repos/gentoo")
    for bad in ("/", "/proc/1", "/scratch", "/cf/out", "/opt/chrootforge/src/x", "/dev"):
        with pytest.raises(UsageError, match="cannot be shared"):
            check_input_dir(Path(bad))


def test_minimal_dirs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "a" / "b", tmp_path / "c"
    assert minimal_dirs([b, c, a, b]) == [a, c]


def test_size_parsing():
    assert parse_size("2G", "--memory", "M") == 2 << 30 and parse_size("512", "--memory", "M") == 512 << 20
    for bad in ("", "2X", "-1", "0", "1.5G"):
        with pytest.raises(UsageError):
            parse_size(bad, "--memory", "M")


# -- merging a guest's results ---------------------------------------------------------------------
def desc(digest: str, ref: str | None = None) -> dict:
    out = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1}
    if ref:
        out["annotations"] = {"org.opencontainers.image.ref.name": ref}
    return out


def test_merged_index_keeps_the_hosts_other_tags():
    host = [desc("sha256:" + "1" * 64, "a:latest"), desc("sha256:" + "2" * 64, "b:latest")]
    guest = [
        desc("sha256:" + "3" * 64, "b:latest"),
        desc("sha256:" + "4" * 64, "c:latest"),
        desc("sha256:" + "5" * 64),
        desc("sha256:" + "5" * 64),
    ]
    out = merge.merged_manifests(host, guest)
    assert [d["digest"][7] for d in out] == ["1", "3", "4", "5"]


def test_merge_refuses_a_blob_that_lies_about_its_digest(tmp_path):
    from chrootforge.oci import layout as oci_layout

    host = oci_layout.ensure_layout(tmp_path / "host")
    blobs = tmp_path / "out" / "layout" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / ("ab" * 32)).write_bytes(b"not what the name says")
    with pytest.raises(CfError, match="does not match"):
        merge.copy_blobs(tmp_path / "out" / "layout" / "blobs", host)
    assert not list((host / "blobs" / "sha256").iterdir()) and not list((host / ".tmp").iterdir())
    (blobs / ("ab" * 32)).unlink()
    (blobs / ("cd" * 32)).symlink_to("/etc/shadow")
    with pytest.raises(CfError, match="unexpected"):
        merge.copy_blobs(tmp_path / "out" / "layout" / "blobs", host)


def test_merge_refuses_an_index_naming_a_missing_blob(tmp_path):
    from chrootforge.oci import layout as oci_layout

    host = oci_layout.ensure_layout(tmp_path / "host")
    guest = oci_layout.ensure_layout(tmp_path / "guest")
    (guest / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [desc("sha256:" + "e" * 64, "x")]})
    )
    before = (host / "index.json").read_bytes()
    with pytest.raises(CfError, match="lacks"):
        merge.merge_index(guest, host)
    assert (host / "index.json").read_bytes() == before


def test_merge_results_end_to_end(tmp_path):
    from chrootforge.oci import layout as oci_layout

    host = oci_layout.ensure_layout(tmp_path / "host")
    old, _ = oci_layout.write_blob(host, b"old manifest")
    oci_layout.update_index(host, lambda m: [desc(old, "keep:latest")])
    out = tmp_path / "out"
    guest = oci_layout.ensure_layout(out / "layout")
    new, _ = oci_layout.write_blob(guest, b"new manifest")
    (guest / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [desc(new, "new:latest")]})
    )
    (out / "build" / "state").mkdir(parents=True)
    (out / "build" / "state" / "new.json").write_text("{}")
    (out / "binpkgs" / "cat").mkdir(parents=True)
    (out / "binpkgs" / "cat" / "p-1.gpkg.tar").write_text("guest")
    binpkgs = tmp_path / "binpkgs"
    (binpkgs / "cat").mkdir(parents=True)
    (binpkgs / "cat" / "p-1.gpkg.tar").write_text("host")
    refs = merge.merge_results(out, host, tmp_path / "host.build", binpkgs)
    assert refs == ["new:latest"]
    tags = oci_layout.tagged(oci_layout.read_index(host))
    assert tags["keep:latest"]["digest"] == old and tags["new:latest"]["digest"] == new
    assert oci_layout.blob_path(host, new).read_bytes() == b"new manifest"
    assert (tmp_path / "host.build" / "state" / "new.json").read_text() == "{}"
    assert (binpkgs / "cat" / "p-1.gpkg.tar").read_text() == "host"  # binpkgs are never replaced


# -- the build's inputs ----------------------------------------------------------------------------
def test_guest_build_args_and_env(monkeypatch, tmp_path):
    opts = BuildOptions(force=True, no_deps=True, stage3=str(tmp_path / "s.tar"))
    args = vmbuild.guest_args([tmp_path / "ns" / "busybox"], opts, quiet=True)
    assert args == [
        "-q",
        "--force",
        "--no-deps",
        "--stage3",
        str(tmp_path / "s.tar"),
        str(tmp_path / "ns" / "busybox"),
    ]
    from chrootforge.platforms import parse_platform

    project = SimpleNamespace(
        namespace=SimpleNamespace(
            text='path = "${STAGE_DIR}/x"', platforms=(parse_platform("amd64"), parse_platform("arm64"))
        ),
        images={"a": SimpleNamespace(text="k = '${IMG_VAR}' ${UNSET_ONE}")},
    )
    monkeypatch.setenv("STAGE_DIR", "/s")
    monkeypatch.setenv("STAGE_DIR_ARM64", "/s64")  # a platform's own value goes too
    monkeypatch.setenv("IMG_VAR", "v")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setenv("UNRELATED", "secret")
    monkeypatch.setenv("UNRELATED_ARM64", "secret")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    env = dict(vmbuild.passed_env(project))
    assert env == {
        "STAGE_DIR": "/s",
        "STAGE_DIR_ARM64": "/s64",
        "IMG_VAR": "v",
        "SOURCE_DATE_EPOCH": "1700000000",
    }


def test_vm_build_refuses_what_needs_the_network(tmp_path):
    ns = tmp_path / "ns"
    (ns / "img").mkdir(parents=True)
    (ns / "chrootforge.toml").write_text('name = "ns"\n[tree]\npath = "tree"\n')
    (ns / "tree").mkdir()
    (ns / "img" / "image.toml").write_text('parent = "scratch"\npackages = ["a/b"]\n')
    with pytest.raises(UsageError, match="offline"):
        vmbuild.build_in_vm([str(ns / "img")], BuildOptions())
    with pytest.raises(UsageError, match="no network"):
        vmbuild.build_in_vm([str(ns / "img")], BuildOptions(network="host", stage3=str(tmp_path)))


# -- acceleration ----------------------------------------------------------------------------------
def test_accel_probe_runs_once_and_is_cached(tmp_path, monkeypatch):
    device = tmp_path / "kvm"
    device.write_text("")
    monkeypatch.setattr(accel, "KVM", str(device))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CHROOTFORGE_VM_ACCEL", raising=False)
    calls = []

    def probe(timeout):
        calls.append(timeout)
        return False

    assert accel.choose("k1", probe)[0] == "tcg" and accel.choose("k1", probe)[0] == "tcg"
    assert calls == [accel.PROBE_TIMEOUT]
    assert "did not boot" in accel.choose("k1", probe)[1]
    assert accel.choose("k2", lambda t: True)[0] == "kvm"  # another guest is probed anew
    device.chmod(0)
    if os.getuid() != 0:
        assert accel.choose("k3", probe) == ("tcg", "no access to /dev/kvm (the kvm group gives it)")
    monkeypatch.setattr(accel, "KVM", str(tmp_path / "none"))
    assert accel.choose("k4", probe) == ("tcg", "this host has no /dev/kvm")
    monkeypatch.setenv("CHROOTFORGE_VM_ACCEL", "kvm")
    assert accel.choose("k4", probe)[0] == "kvm"


# -- the user namespace probe ----------------------------------------------------------------------
def test_userns_probe_sees_a_seccomp_filter():
    code = "from chrootforge.sandbox.blocked import probe_userns; print(probe_userns())"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert free.stdout.strip() == "None"
    blocked = subprocess.run(
        [sys.executable, str(SECCOMP), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert blocked.stdout.strip() == str(errno.EPERM)


def test_want_vm(monkeypatch):
    assert vmbuild.want_vm("on") and not vmbuild.want_vm("off")
    from chrootforge.sandbox import blocked

    monkeypatch.setattr(blocked, "probe_userns", lambda: None)
    assert not vmbuild.want_vm("auto")


def test_want_vm_auto_when_blocked(monkeypatch):
    from chrootforge.sandbox import blocked

    monkeypatch.setattr(blocked, "probe_userns", lambda: errno.EPERM)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CfError, match="QEMU for the VM fallback is missing") as info:
        vmbuild.want_vm("auto")
    assert "apt-get install qemu-system-x86" in info.value.hint


def test_guest_report_statuses(tmp_path):
    text = json.dumps(
        {
            "namespace": "w",
            "layout": "/scratch/layout",
            "seconds": 1.0,
            "ok": False,
            "images": [{"image": "a", "refs": ["x"], "status": "failed", "error": "e"}],
        }
    )
    report = vmbuild._report(text, 1, tmp_path)
    assert report.layout == str(tmp_path) and report.images[0].status == "failed" and not report.ok
    with pytest.raises(UsageError, match="exit 2"):
        vmbuild._report("", 2, tmp_path)
    with pytest.raises(CfError, match="exit 125"):
        vmbuild._report(text, 125, tmp_path)  # a report, but the copy-out broke off
    with pytest.raises(CfError, match="exit 0"):
        vmbuild._report("{truncated", 0, tmp_path)
