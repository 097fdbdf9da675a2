"""Property: random trees -> commit -> our unpack AND umoci unpack -> equal to the source."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chrootforge import oci
from tests.helpers.oci import EPOCH, snapshot, umoci_comparable

NAME = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00"),
        st.sampled_from([" ", "\n", "\t", "é", "✓", "-", "."]),
    ),
    min_size=1,
    max_size=10,
).filter(lambda n: n not in (".", "..") and not n.startswith(".wh.") and len(n.encode()) < 200)

OP = st.tuples(
    st.sampled_from(["dir", "file", "file", "symlink", "hardlink"]),
    st.integers(min_value=0, max_value=1000),  # parent dir / link target choice
    NAME,
    st.binary(max_size=3000),
    st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o2750, 0o1777, 0o700, 0o444]),
    st.one_of(st.none(), st.binary(min_size=1, max_size=40)),  # user.* xattr (empty ones are dropped)
    st.integers(min_value=0, max_value=2 * EPOCH),  # mtime (above EPOCH gets clamped)
)


def build(root: Path, ops) -> None:
    dirs, files = [root], []
    dir_modes: dict[Path, int] = {}  # applied last: a read-only dir would stop a non-root builder
    for kind, pick, name, data, mode, xattr, mtime in ops:
        parent = dirs[pick % len(dirs)]
        path = parent / name
        if os.path.lexists(path):
            continue
        if kind == "dir":
            path.mkdir()
            dirs.append(path)
        elif kind == "file" or (kind == "hardlink" and not files):
            path.write_bytes(data)
            files.append(path)
        elif kind == "hardlink":
            os.link(files[pick % len(files)], path)
        else:
            target = (
                os.path.relpath(files[pick % len(files)], parent)
                if files and pick % 3
                else name + "-dangling"
            )
            path.symlink_to(target)
            continue
        if xattr is not None and kind != "hardlink":  # a hardlink shares its target's (maybe read-only) inode
            os.setxattr(path, "user.prop", xattr)
        if kind == "dir":
            dir_modes[path] = mode
        elif kind != "hardlink":
            path.chmod(mode if mode != 0o1777 else 0o644)
        os.utime(path, (mtime, mtime))
    for d in reversed(dirs[1:]):  # writing into a dir changed its mtime: set dirs last
        os.utime(d, (EPOCH - 5, EPOCH - 5))
        mode = dir_modes[d]
        d.chmod(mode if mode & 0o700 == 0o700 else 0o755)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, min_size=1, max_size=25), compression=st.sampled_from(["gzip", "zstd"]))
def test_random_trees_round_trip(ops, compression):
    base = Path(tempfile.mkdtemp(prefix="cf-prop."))
    os.environ["SOURCE_DATE_EPOCH"] = str(EPOCH)
    try:
        src = base / "src"
        src.mkdir()
        build(src, ops)
        first = oci.commit(src, base / "L", "t", compression=compression, quiet=True)
        assert oci.commit(src, base / "L2", "t", compression=compression, quiet=True).digest == first.digest
        oci.unpack(base / "L", "t", base / "ours")
        want = snapshot(src)
        assert snapshot(base / "ours") == want
        if compression == "gzip" and shutil.which("umoci"):  # umoci 0.4.7 rejects zstd
            args = [] if os.getuid() == 0 else ["--rootless"]
            out = subprocess.run(
                ["umoci", "unpack", *args, "--image", f"{base / 'L'}:t", str(base / "b")],
                check=False,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 0, out.stderr
            assert umoci_comparable(snapshot(base / "b" / "rootfs")) == umoci_comparable(want)
    finally:
        shutil.rmtree(base, ignore_errors=True)
