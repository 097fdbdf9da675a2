"""The extracted-stage cache: extract once, then start builders from it without re-extracting."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers.identity import shared_dir
from tests.helpers.mirror import make_tar, member


def busybox_stage() -> bytes:
    """A minimal runnable root: busybox-static and a few applet links."""
    members = [member("./", "dir")] + [
        member(f"./{d}", "dir")
        for d in ("bin", "dev", "etc", "proc", "root", "run", "sys", "tmp", "var", "var/tmp")
    ]
    members.append(member("./bin/busybox", data=Path("/bin/busybox").read_bytes(), mode=0o755))
    members += [
        member(f"./bin/{applet}", "symlink", link="busybox") for applet in ("sh", "true", "touch", "ls")
    ]
    members.append(member("./etc/owned", data=b"portage\n", uid=250, gid=250))
    return make_tar(members, "zst")


SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from chrootforge.sources.stage_cache import (pristine_root, fresh_builder, remove_builder, newest_mtime,
                                                 unverified_stage)
    from chrootforge.sandbox import SandboxConfig, run_sandboxed
    path, cache, work, overlay = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
    tarball = unverified_stage(path)  # a test stage, explicitly unverified
    first = pristine_root(tarball, cache_dir=cache)
    ino = os.stat(first / "bin/busybox").st_ino
    start = time.monotonic()
    again = pristine_root(tarball, cache_dir=cache)
    builder = fresh_builder(again, work / "b1", allow_overlay=overlay)
    code = run_sandboxed(SandboxConfig(root=builder, argv=["/bin/sh", "-c", "touch /etc/new && ls -ln /etc"]))
    warm = time.monotonic() - start
    second = fresh_builder(again, work / "b2", allow_overlay=overlay)
    code2 = run_sandboxed(SandboxConfig(root=second, argv=["/bin/sh", "-c", "test ! -e /etc/new"]))
    out = {"same": first == again, "ino_same": ino == os.stat(again / "bin/busybox").st_ino,
           "code": code, "code2": code2, "warm": warm, "kind": type(builder).__name__,
           "pristine_clean": not (again / "etc/new").exists(), "newest_mtime": newest_mtime(again)}
    remove_builder(work / "b1")
    remove_builder(work / "b2")
    out["removed"] = not (work / "b1").exists() and not (work / "b2").exists()
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def stage_file():
    folder = shared_dir("bbstage.")
    path = folder / "busybox-stage.tar.zst"
    path.write_bytes(busybox_stage())
    path.chmod(0o644)
    (folder / "script.py").write_text(SCRIPT)
    (folder / "script.py").chmod(0o644)
    return path


@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "copy"])
def test_warm_start_from_the_stage_cache(identity, stage_file, overlay):
    work = identity.mkdtemp("stagecache.")
    done = identity.run(
        [
            *identity.python,
            str(stage_file.parent / "script.py"),
            str(stage_file),
            str(work / "cache"),
            str(work),
            "1" if overlay else "0",
        ]
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] and result["ino_same"], "the second call reused the cached extraction"
    assert result["code"] == 0 and result["code2"] == 0, done.stderr
    assert result["pristine_clean"] and result["removed"]
    assert result["kind"] == ("OverlayRoot" if overlay else "PosixPath")
    assert result["newest_mtime"] == 1700000000  # the members' mtime (tests/helpers/mirror.member)
    print(f"warm start ({identity.name}, {result['kind']}): {result['warm']:.3f}s")
    # the extraction log line appears once: the second pristine_root did not extract
    assert done.stderr.count("into the stage cache") == 1
    identity.run(
        [
            *identity.python,
            "-c",
            f"from chrootforge.sandbox import remove_tree; remove_tree({str(work / 'cache')!r})",
        ]
    )


def test_cache_key_depends_on_content_and_mapping(tmp_path):
    from chrootforge.sandbox.idmap import full_map
    from chrootforge.sources.mapped_run import idmap_key
    from chrootforge.sources.stage_cache import pristine_root

    m1 = full_map(1000, 1000, (100000, 65536), (100000, 65536))
    m2 = full_map(1000, 1000, (200000, 65536), (200000, 65536))
    assert idmap_key(m1) != idmap_key(m2) and idmap_key(m1) == idmap_key(m1)
    (tmp_path / "a.tar").write_bytes(make_tar([member("./x", data=b"1")], ""))
    with pytest.raises(TypeError, match="verified stage"):  # a bare path was never verified
        pristine_root(tmp_path / "a.tar", cache_dir=tmp_path / "cache")
