"""A namespace whose stage3 comes from a (local, real HTTP) mirror: "latest" is resolved on every
run, a lock pins it, and a locked build works with the mirror gone. Real builds, as the
unprivileged user (the rootless path is what CI runners use; root builds are covered by
test_build_e2e.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.helpers.mirror import STAMP, STAMP2
from tests.helpers.rootfs import remove_as
from tests.helpers.world_build import namespace

pytestmark = pytest.mark.slow


def _namespace(dest: Path, repo: Path, mirror_url: str, keyring: Path) -> Path:
    """examples/world's busybox and glibc, with the stage3 from the mirror (the latest openrc)."""

    def from_the_mirror(text: str) -> str:
        text = re.sub(r'path = "\$\{CHROOTFORGE_WORLD_STAGE\}".*\n', f'mirror = "{mirror_url}"\n', text)
        return re.sub(r'keyring = "\$\{CHROOTFORGE_WORLD_KEYRING\}".*\n', f'keyring = "{keyring}"\n', text)

    return namespace(dest, repo, drop=("s6", "hello", "greeter"), edit=from_the_mirror)


def test_latest_is_resolved_each_run_and_a_lock_pins_it(
    user_identity, world_inputs, world_repo, mirror_tree, mirror_server, gpg_keys
):
    ident = user_identity
    tmp = ident.mkdtemp("inputs.")
    try:
        ns = _namespace(tmp, world_repo, mirror_server.url, gpg_keys.good.public_file)
        for path in [ns, *ns.rglob("*")]:  # the user's own namespace folder (`lock` writes into it)
            os.chown(path, ident.uid, ident.gid)
        stage_bytes = world_inputs.stage.read_bytes()
        mirror_tree.publish_stage(stage_bytes, STAMP)
        env = {**world_inputs.env(), "XDG_CACHE_HOME": str(tmp / "cache"), "SOURCE_DATE_EPOCH": ""}
        layout = tmp / "layout"

        def build(*extra):
            proc = ident.cf("build", "--json", "--layout", str(layout), *extra, str(ns), env=env, timeout=900)
            report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
            return proc, report

        def statuses(report):
            return {r["image"]: r["status"] for r in report["images"]}

        def label(image, key):
            index = json.loads((layout / "index.json").read_text())
            desc = next(
                m
                for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                == f"localhost/chrootforge/{image}:latest"
            )
            manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_text())
            config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
            return config["config"]["Labels"][key]

        proc, report = build()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert statuses(report) == {"busybox": "built", "glibc": "built"}
        assert label("glibc", "org.chrootforge.stage3.name").endswith(f"{STAMP}.tar.xz")
        first_key = label("glibc", "org.chrootforge.build.engine-key")

        proc, report = build()  # latest unchanged: a no-op
        assert proc.returncode == 0 and statuses(report) == {"busybox": "up-to-date", "glibc": "up-to-date"}

        mirror_tree.publish_stage(stage_bytes, STAMP2)  # latest moves to a new release
        proc, report = build()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert statuses(report) == {"busybox": "built", "glibc": "built"}
        assert label("glibc", "org.chrootforge.stage3.name").endswith(f"{STAMP2}.tar.xz")
        assert label("glibc", "org.chrootforge.build.engine-key") != first_key

        locked = ident.cf("lock", str(ns), env=env)
        assert locked.returncode == 0, locked.stderr
        lock_text = (ns / "chrootforge.lock").read_text()
        assert f'release = "{STAMP2}"' in lock_text and "sha512 = " in lock_text
        again = ident.cf("lock", str(ns), env=env)  # nothing changed: a no-op that says so
        assert again.returncode == 0 and "unchanged" in again.stderr, again.stderr
        assert (ns / "chrootforge.lock").read_text() == lock_text

        proc, report = build()  # the lock pins what was built: still a no-op
        assert proc.returncode == 0 and statuses(report) == {"busybox": "up-to-date", "glibc": "up-to-date"}

        mirror_server.stop()  # air gap: the lock and the warm source cache are all it needs
        proc, report = build("--force")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert statuses(report) == {"busybox": "built", "glibc": "built"}
        (ns / "chrootforge.lock").rename(tmp / "lock.saved")
        proc, _ = build()  # without the lock, "latest" cannot be resolved with the mirror gone
        assert proc.returncode == 1 and "cannot resolve the latest" in proc.stderr
        assert "chrootforge lock" in proc.stderr

        (tmp / "lock.saved").rename(ns / "chrootforge.lock")
        tampered = re.sub(
            r'(\[stage3\][^\[]*sha512 = ")[0-9a-f]+',
            r"\g<1>" + "0" * 128,
            (ns / "chrootforge.lock").read_text(),
        )
        (ns / "chrootforge.lock").write_text(tampered)
        proc, _ = build("--force")
        assert proc.returncode == 1 and "pins" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        remove_as(ident, tmp)
