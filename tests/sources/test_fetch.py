"""Discovery, download, resume, mirror fallback and the cache, against a real local HTTP mirror."""

from __future__ import annotations

import hashlib
import json

import pytest

from chrootforge.errors import CfError, VerificationError
from chrootforge.sources import fetch
from chrootforge.sources.fetch import fetch_snapshot, fetch_stage3
from tests.helpers.mirror import STAMP, STAMP2, make_tar, member
from tests.sources.conftest import cache_is_empty


def test_discovery_and_download(mirror_tree, mirror_server, gpg_keys, stage_tarball, cache_dir):
    mirror_tree.publish_stage(stage_tarball)
    got = fetch_stage3(
        "amd64", "openrc", [mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    assert got.path.read_bytes() == stage_tarball
    assert got.sha512 == hashlib.sha512(stage_tarball).hexdigest()
    assert got.blake2b == hashlib.blake2b(stage_tarball).hexdigest()
    assert got.verified_by == gpg_keys.good.fingerprint  # the primary, though a subkey signed
    assert got.insecure is False and got.kind == "stage3"
    assert got.source_url == f"{mirror_server.url}/{mirror_tree.stage_rel()}"
    assert got.path.is_relative_to(cache_dir)
    assert got.name == f"stage3-amd64-openrc-{STAMP}.tar.xz"
    paths = [r[0] for r in mirror_server.requests]
    assert paths[0] == "releases/amd64/autobuilds/latest-stage3-amd64-openrc.txt"
    assert {mirror_tree.stage_rel() + s for s in ("", ".asc", ".DIGESTS")} <= set(paths)
    assert got.labels()["org.chrootforge.stage3.insecure-skip-verify"] == "false"


def test_latest_moves_on_and_second_fetch_uses_cache(mirror_tree, mirror_server, gpg_keys, cache_dir):
    old, new = make_tar([member("./a", data=b"old")]), make_tar([member("./a", data=b"new")])
    mirror_tree.publish_stage(old, STAMP)
    keys = [gpg_keys.good.public_file]
    first = fetch_stage3(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)
    mirror_server.requests.clear()
    again = fetch_stage3(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)
    assert again.path == first.path
    # latest is re-read (it may have moved on), but the tarball is not downloaded again
    assert [r[0] for r in mirror_server.requests] == [
        "releases/amd64/autobuilds/latest-stage3-amd64-openrc.txt"
    ]
    mirror_tree.publish_stage(new, STAMP2)
    newer = fetch_stage3(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)
    assert newer.path.read_bytes() == new and STAMP2 in newer.name


def test_cache_hit_with_server_stopped(mirror_tree, mirror_server, gpg_keys, stage_tarball, cache_dir):
    mirror_tree.publish_stage(stage_tarball)
    keys = [gpg_keys.good.public_file]
    first = fetch_stage3(mirrors=[mirror_server.url], date=STAMP, keyrings=keys, cache_dir=cache_dir)
    mirror_server.stop()
    again = fetch_stage3(mirrors=[mirror_server.url], date=STAMP, keyrings=keys, cache_dir=cache_dir)
    assert again == first
    offline = fetch_stage3(mirrors=[mirror_server.url], offline=True, keyrings=keys, cache_dir=cache_dir)
    assert offline.path == first.path
    with pytest.raises(CfError, match="could not fetch"):  # latest needs the network: the server is gone
        fetch_stage3(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)


def test_resume_after_connection_cut(mirror_tree, mirror_server, gpg_keys, cache_dir):
    big = make_tar(
        [member(f"./f{i}", data=hashlib.sha512(str(i).encode()).digest() * 200) for i in range(40)],
        compression="",
    )  # incompressible-ish and large enough to cut mid-way
    rel = mirror_tree.publish_stage(big)
    mirror_server.fault(rel, cut_after=len(big) // 3, times=1)
    got = fetch_stage3(mirrors=[mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir)
    assert got.path.read_bytes() == big
    tar_requests = [r for r in mirror_server.requests if r[0] == rel]
    assert len(tar_requests) == 2
    assert tar_requests[0][1] is None
    # resumed from what had arrived (whole 64 KiB reads: a read cut short is lost), not restarted
    resumed_at = int(tar_requests[1][1].removeprefix("bytes=").rstrip("-"))
    assert len(big) // 3 - 65536 < resumed_at <= len(big) // 3


def test_resume_when_server_ignores_range(mirror_tree, mirror_server, gpg_keys, cache_dir):
    data = make_tar([member("./x", data=b"x" * 200000)], compression="")
    rel = mirror_tree.publish_stage(data)
    mirror_server.ranges = False  # answers 200 with the whole body: must restart, not append
    mirror_server.fault(rel, cut_after=50000, times=1)
    got = fetch_stage3(mirrors=[mirror_server.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir)
    assert got.path.read_bytes() == data


@pytest.mark.parametrize("status", [404, 500])
def test_mirror_fallback(
    mirror_tree, mirror_server, second_mirror, gpg_keys, stage_tarball, cache_dir, status
):
    tree2, server2 = second_mirror
    mirror_tree.publish_stage(stage_tarball)
    tree2.publish_stage(stage_tarball)
    mirror_server.fault("*", status=status)
    got = fetch_stage3(
        mirrors=[mirror_server.url, server2.url], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    assert got.source_url.startswith(server2.url)
    assert mirror_server.requests, "the first mirror was tried first"
    if status == 500:
        assert len(mirror_server.requests) > 1  # retried before giving up


def test_gentoo_mirrors_env_and_file_mirror(mirror_tree, gpg_keys, stage_tarball, cache_dir, monkeypatch):
    mirror_tree.publish_stage(stage_tarball)
    monkeypatch.setenv("GENTOO_MIRRORS", f"http://127.0.0.1:9/nothing-listens {mirror_tree.root.as_uri()}")
    got = fetch_stage3(keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir)
    assert got.source_url.startswith("file://") and got.path.read_bytes() == stage_tarball


def test_local_mirror_directory_needs_no_network(mirror_tree, gpg_keys, stage_tarball, cache_dir):
    mirror_tree.publish_stage(stage_tarball)
    got = fetch_stage3(
        mirrors=[str(mirror_tree.root)], keyrings=[gpg_keys.good.public_file], cache_dir=cache_dir
    )
    assert got.verified_by == gpg_keys.good.fingerprint


def test_air_gapped_local_stage(mirror_tree, gpg_keys, stage_tarball, cache_dir):
    rel = mirror_tree.publish_stage(stage_tarball)
    got = fetch.use_local_stage(mirror_tree.root / rel, [gpg_keys.good.public_file], cache_dir=cache_dir)
    assert got.sha512 == hashlib.sha512(stage_tarball).hexdigest()
    assert got.source_url.startswith("file://") and got.path.is_relative_to(cache_dir)


def test_snapshot_latest_and_dated(mirror_tree, mirror_server, gpg_keys, cache_dir):
    snap = make_tar([member("./metadata/timestamp", data=b"Mon Jan  1 00:45:00 UTC 2024\n")])
    mirror_tree.publish_snapshot(snap, "latest")
    mirror_tree.publish_snapshot(snap, "20240101")
    keys = [gpg_keys.good.public_file]
    latest = fetch_snapshot(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)
    assert latest.path.read_bytes() == snap and latest.kind == "snapshot"
    mirror_server.requests.clear()
    again = fetch_snapshot(mirrors=[mirror_server.url], keyrings=keys, cache_dir=cache_dir)
    assert again.path == latest.path
    assert [r[0] for r in mirror_server.requests] == ["snapshots/gentoo-latest.tar.xz.gpgsig"]
    dated = fetch_snapshot("20240101", [mirror_server.url], keys, cache_dir)
    mirror_server.stop()
    assert fetch_snapshot("20240101", [mirror_server.url], keys, cache_dir) == dated
    offline = fetch_snapshot(None, [mirror_server.url], keys, cache_dir, offline=True)
    assert offline.sha512 == latest.sha512
    local = fetch.use_local_snapshot(
        mirror_tree.root / "snapshots/gentoo-20240101.tar.xz", keys, cache_dir=cache_dir
    )
    assert local.sha512 == dated.sha512


def test_insecure_skip_verify_is_loud_and_recorded(
    mirror_tree, mirror_server, stage_tarball, cache_dir, capfd
):
    mirror_tree.publish_stage(stage_tarball)
    got = fetch_stage3(mirrors=[mirror_server.url], cache_dir=cache_dir, insecure=True)
    assert got.insecure is True and got.verified_by is None
    assert "WARNING" in capfd.readouterr().err
    assert got.labels()["org.chrootforge.stage3.insecure-skip-verify"] == "true"
    assert not (cache_dir / "names").is_dir() or not any((cache_dir / "names").iterdir())
    assert cache_is_empty(cache_dir) is False  # it is kept, but only in the unverified area
    assert "unverified" in got.path.parts


def test_cli_fetch_as_each_identity(identity, mirror_tree, mirror_server, gpg_keys, stage_tarball):
    mirror_tree.publish_stage(stage_tarball)
    cache = identity.mkdtemp("cache.")
    out = identity.cf(
        "fetch",
        "stage3",
        "--mirror",
        mirror_server.url,
        "--keyring",
        str(gpg_keys.good.public_file),
        "--cache-dir",
        str(cache),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["verified_by"] == gpg_keys.good.fingerprint
    assert record["sha512"] == hashlib.sha512(stage_tarball).hexdigest()
    stopped = identity.cf(
        "fetch",
        "stage3",
        "--mirror",
        mirror_server.url,
        "--date",
        STAMP,
        "--keyring",
        str(gpg_keys.good.public_file),
        "--cache-dir",
        str(cache),
        "--json",
    )
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["path"] == record["path"]


def test_cli_missing_key_says_where_to_get_it(mirror_tree, mirror_server, stage_tarball, cache_dir):
    import subprocess
    import sys

    mirror_tree.publish_stage(stage_tarball)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chrootforge",
            "fetch",
            "stage3",
            "--mirror",
            mirror_server.url,
            "--cache-dir",
            str(cache_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert "13EBBDBEDE7A12775DFDB1BABB572E0E2D182910" in out.stderr and "--keyring" in out.stderr
    assert "Traceback" not in out.stderr
    assert mirror_server.requests == []  # failed before any network I/O


def test_download_resume_edge_cases(mirror_tree, mirror_server, tmp_path):
    from chrootforge.sources import download

    data = bytes(range(256)) * 400
    mirror_tree.write("blob.bin", data)
    url = f"{mirror_server.url}/blob.bin"
    part = tmp_path / "blob.part"
    part.write_bytes(data)  # complete already (a run killed before the rename): 416 means done
    download.get_file(url, part, label="blob")
    assert part.read_bytes() == data and mirror_server.requests[-1] == ("blob.bin", f"bytes={len(data)}-")
    part.write_bytes(data + b"junk")  # longer than the file: 416 with another total -> start over
    download.get_file(url, part, label="blob")
    assert part.read_bytes() == data
    part.write_bytes(data[:1000])  # a real partial: 206 appends
    download.get_file(url, part, label="blob")
    assert part.read_bytes() == data and mirror_server.requests[-1] == ("blob.bin", "bytes=1000-")
    with pytest.raises(download.NotFound):
        download.get_file(f"{mirror_server.url}/missing.bin", tmp_path / "m.part", label="m")


def test_local_stage_is_verified_once_until_it_changes(
    mirror_tree, gpg_keys, stage_tarball, cache_dir, capfd
):
    rel = mirror_tree.publish_stage(stage_tarball)
    path = mirror_tree.root / rel
    keys = [gpg_keys.good.public_file]
    first = fetch.use_local_stage(path, keys, cache_dir=cache_dir)
    capfd.readouterr()
    again = fetch.use_local_stage(path, keys, cache_dir=cache_dir)
    assert again == first and "unchanged since it was verified" in capfd.readouterr().err
    path.write_bytes(stage_tarball + b"\0" * 512)  # changed in place: verified again, and refused
    with pytest.raises(VerificationError, match="BAD signature"):
        fetch.use_local_stage(path, keys, cache_dir=cache_dir)


def test_concurrent_fetches_of_one_stage(mirror_tree, mirror_server, gpg_keys, cache_dir):
    """Two processes fetching the same stage at once: one downloads, the other waits and reuses it."""
    import subprocess
    import sys

    data = make_tar(
        [member(f"./f{i}", data=hashlib.sha512(str(i).encode()).digest() * 300) for i in range(30)],
        compression="",
    )
    rel = mirror_tree.publish_stage(data)
    code = (
        "import sys; from chrootforge.sources.fetch import fetch_stage3; "
        f"print(fetch_stage3(mirrors=[{mirror_server.url!r}], keyrings=[{str(gpg_keys.good.public_file)!r}], "
        f"cache_dir={str(cache_dir)!r}).path)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert outs[0][0] == outs[1][0]
    assert len([r for r in mirror_server.requests if r[0] == rel]) == 1
