"""`chrootforge cache ls|prune` against a real cache, with a real concurrent holder, as root and as
an unprivileged user (whose extracted stage belongs to its sub-ids: only the mapping can remove it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from tests.helpers.identity import shared_dir
from tests.helpers.mirror import make_tar, stage_members

FILL = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from chrootforge.fsutil import user_cache_dir
    from chrootforge.sources.stage_cache import pristine_root, unverified_stage
    stage = pristine_root(unverified_stage(sys.argv[1]))
    root = user_cache_dir()
    for rel, size in (("sources/blobs/ab12/stage3.tar.xz", 3000), ("trees/t1/metadata/layout.conf", 200),
                      ("distfiles/hello-1.0.tar.gz", 5000), ("binpkgs/ns-1/app/hello-1.gpkg.tar", 7000),
                      # a work dir kept by `build --keep`, packages downloaded from a binhost, and
                      # what killed runs left: a fetch's scratch dir, a guest's run dir
                      ("work/0a1b2c3d4e5f6a7b/hello/rootfs/bin/hello", 900),
                      ("binhost/5d6e7f8091a2b3c4/k1/app/hello-1.gpkg.tar", 800),
                      ("sources/tmp/fetch-dead/stage3.tar.xz", 600), ("vm-runs/run.1.ab/scratch.img", 400)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)
    (root / "trees/t1/metadata").chmod(0o555)  # snapshots may hold read-only directories
    # a kept build root holds what emerge made as other ids: a 0700 directory of id 250 inside
    from chrootforge.sandbox import owned_dir
    from chrootforge.sources.mapped_run import run_under_mapping
    kept = root / "work/0a1b2c3d4e5f6a7b/hello/rootfs"
    owned_dir(kept)  # (as root: the namespace's root is another host id, the build gives it the dir)
    assert run_under_mapping(["sh", "-c", f"mkdir -p {kept}/var/tmp/p && touch {kept}/var/tmp/p/f && "
                              f"chown -R 250:250 {kept}/var/tmp/p && chmod 700 {kept}/var/tmp/p"]) == 0
    print(stage)
""")

HOLD = textwrap.dedent("""
    import sys
    from chrootforge.holds import Holds
    holds = Holds()
    for path in sys.argv[1:]:
        holds.hold(path)
    print("held", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
""")


@pytest.fixture(scope="module")
def scripts():
    folder = shared_dir("cachecli.")
    (folder / "stage.tar.xz").write_bytes(make_tar(stage_members(), "xz"))
    for name, text in (("fill.py", FILL), ("hold.py", HOLD)):
        (folder / name).write_text(text)
    for path in folder.iterdir():
        path.chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(identity):
    """A private cache for the identity, removed afterwards (under its mapping: sub-id files too)."""
    folder = identity.mkdtemp("xdg.")
    yield {"XDG_CACHE_HOME": str(folder)}
    identity.run(
        [*identity.python, "-c", f"from chrootforge.sandbox import remove_tree; remove_tree({str(folder)!r})"]
    )


def _json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_prune_skips_what_a_running_build_holds_and_removes_the_rest(identity, scripts, env):
    fill = identity.run([*identity.python, str(scripts / "fill.py"), str(scripts / "stage.tar.xz")], env=env)
    assert fill.returncode == 0, fill.stderr
    stage = fill.stdout.strip().splitlines()[-1]
    cache = stage.rsplit("/stages/", 1)[0]
    if not identity.is_root:  # the stage's /home/user is owned by a sub-id, mode 0700
        denied = identity.run(["rm", "-rf", f"{stage}/home/user"])
        assert denied.returncode != 0, "a plain rm must not be able to remove the mapped tree"

    listing = _json(identity.cf("cache", "ls", "--json", env=env))
    kinds = {k["kind"]: k for k in listing["kinds"]}
    assert [k["kind"] for k in listing["kinds"]] == [
        "sources",
        "stages",
        "trees",
        "distfiles",
        "binpkgs",
        "binhost",
        "work",
        "vm",
        "vm-runs",
    ]
    assert kinds["stages"]["entries"] == 1 and kinds["stages"]["bytes"] > 1000
    assert kinds["distfiles"]["bytes"] == 5000 and kinds["binpkgs"]["entries"] == 1
    assert kinds["work"]["entries"] == 1 and kinds["work"]["bytes"] >= 900
    assert kinds["binhost"]["entries"] == 1 and kinds["binhost"]["bytes"] >= 800
    assert kinds["sources"]["entries"] == 2 and kinds["vm-runs"]["entries"] == 1
    assert listing["other_bytes"] < 100, "nothing big is left uncounted as 'other'"
    assert listing["total_bytes"] >= sum(k["bytes"] for k in listing["kinds"])
    table = identity.cf("cache", "ls", env=env)
    assert table.returncode == 0 and "stages" in table.stdout and "total" in table.stdout

    holder = identity.popen(
        [*identity.python, str(scripts / "hold.py"), stage, f"{cache}/distfiles"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = _json(identity.cf("cache", "prune", "--older-than", "0", "--json", env=env))
        held = {e["name"] for e in result["held"]}
        removed = {e["name"] for e in result["removed"]}
        assert held == {"stages/" + stage.rsplit("/", 1)[1], "distfiles/hello-1.0.tar.gz"}
        assert removed == {
            "sources/blobs/ab12",
            "sources/tmp/fetch-dead",
            "trees/t1",
            "binpkgs/ns-1",
            "binhost/5d6e7f8091a2b3c4/k1",
            "work/0a1b2c3d4e5f6a7b",
            "vm-runs/run.1.ab",
        }
        assert result["freed_bytes"] >= 3000 + 200 + 7000 + 900 + 800 + 600 + 400 and result["failed"] == []
        assert identity.run(["test", "-d", f"{stage}/etc"]).returncode == 0
    finally:
        holder.stdin.close()
        holder.wait(30)

    human = identity.cf("cache", "prune", "--older-than", "0", env=env)
    assert human.returncode == 0, human.stderr
    assert "freed" in human.stdout and "stages/" in human.stderr
    assert identity.run(["test", "-e", stage]).returncode != 0, "the mapped stage is gone, sub-id files too"
    after = _json(identity.cf("cache", "ls", "--json", env=env))
    assert all(k["entries"] == 0 for k in after["kinds"])


def test_prune_keep_and_dry_run(identity, env):
    make = (
        "import os, sys\nfrom chrootforge.fsutil import user_cache_dir\n"
        "d = user_cache_dir() / 'distfiles'\nd.mkdir(parents=True)\n"
        "for i in range(3):\n"
        "    (d / f'f{i}').write_bytes(b'x' * 100)\n"
        "    os.utime(d / f'f{i}', (1e9 + i * 86400, 1e9 + i * 86400))\n"
    )
    assert identity.run([*identity.python, "-c", make], env=env).returncode == 0
    dry = _json(identity.cf("cache", "prune", "--keep", "1", "--dry-run", "--json", env=env))
    assert dry["dry_run"] and [e["name"] for e in dry["removed"]] == ["distfiles/f0", "distfiles/f1"]
    assert _json(identity.cf("cache", "ls", "--json", env=env))["kinds"][3]["entries"] == 3
    done = _json(identity.cf("cache", "prune", "--keep", "1", "--kind", "distfiles", "--json", env=env))
    assert done["freed_bytes"] == 200
    assert _json(identity.cf("cache", "ls", "--json", env=env))["kinds"][3]["entries"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prune", "--older-than", "soon"], "bad age 'soon'"),
        (["prune", "--kind", "nope"], "unknown cache kind 'nope'"),
        (["prune", "--keep", "-2"], "--keep must be 0 or more"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(identity, env, args, message):
    done = identity.cf("cache", *args, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"chrootforge: error: {message}") and "Traceback" not in done.stderr
