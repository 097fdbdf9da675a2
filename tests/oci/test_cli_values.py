"""What the layout commands accept and say, from the command line: config values and names that
consumers would refuse or misread are refused with one line; missing layouts, ambiguous and
mistyped tags get a message that says so; gc --dry-run removes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chrootforge import oci
from chrootforge.oci import layout as lo


def cf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("hi\n")
    return root


@pytest.mark.parametrize(
    "config,message",
    [
        ({"Entrypoint": "/bin/sh -c date"}, "Entrypoint must be a list of strings, not a string"),
        ({"Cmd": "echo hi"}, "Cmd must be a list of strings, not a string"),
        ({"Cmd": ["echo", "a\u0000b"]}, "Cmd argument 'a\\x00b' holds a NUL character"),
        ({"ExposedPorts": "abc"}, "ExposedPorts must be an object"),
        ({"ExposedPorts": {"abc": {}}}, "ExposedPorts key 'abc' is not PORT"),
        ({"ExposedPorts": ["99999/tcp"]}, "ExposedPorts key '99999/tcp'"),
        ({"ExposedPorts": ["80/http"]}, "ExposedPorts key '80/http'"),
        ({"ExposedPorts": {"80/tcp": "yes"}}, "ExposedPorts must map each entry to {}"),
        ({"Env": ["A=x\u0000y"]}, "Env entry 'A=x\\x00y' holds a NUL character"),
        ({"Env": ["A B=1"]}, "Env name 'A B' holds a space"),
        ({"Env": ["=1"]}, "Env entry '=1' is not NAME=VALUE"),
        ({"Env": {"A": 1}}, "Env must be a list of NAME=VALUE strings or an object of strings"),
        ({"User": "app\nroot"}, "User 'app\\nroot' is not USER or USER:GROUP"),
        ({"User": "a:b:c"}, "User 'a:b:c'"),
        ({"WorkingDir": "srv"}, "WorkingDir 'srv' is not an absolute path"),
        ({"Volumes": ["data"]}, "Volumes entry 'data' is not an absolute path"),
        ({"StopSignal": "SIGNOPE"}, "StopSignal 'SIGNOPE' is not a signal name"),
        ({"StopSignal": 15}, "StopSignal must be a string"),
        ({"Labels": {"": "x"}}, "a label key is empty"),
        ({"Labels": {"a": 1}}, "Labels must be an object of strings"),
        ({"Healthcheck": {}}, "unknown image config field 'Healthcheck'"),
    ],
)
def test_commit_config_values_consumers_reject(tmp_path, tree, config, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = cf("commit", str(tree), "--layout", str(tmp_path / "L"), "--tag", "x", "--config", str(path))
    assert out.returncode == 2, out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith(f"chrootforge: error: --config {path}: ") and message in first, out.stderr
    assert not (tmp_path / "L").exists()  # refused before anything is written


def test_commit_config_values_in_the_specs_formats_pass(tmp_path, tree):
    config = {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["date"],
        "Env": ["PATH=/bin", "MULTI=a\nb"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
        "Volumes": {"/data": {}},
        "User": "1000:1000",
        "WorkingDir": "/srv",
        "StopSignal": "SIGRTMIN+3",
        "Labels": {"a": "b"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = cf("commit", str(tree), "--layout", str(tmp_path / "L"), "--tag", "x", "--config", str(path))
    assert out.returncode == 0, out.stderr
    assert oci.resolve(tmp_path / "L", "x").config["config"] == config


@pytest.mark.parametrize(
    "tag,message",
    [
        ("a" * 300, "has 310 characters, more than 255"),  # podman and containerd see localhost/NAME
        ("a" * 246, "more than 255"),
        ("ns/img:" + "t" * 129, "its TAG has 129 characters, more than 128"),
        ("Img", "must be lower case"),
        ("img:-x", "TAG '-x' may hold only"),
        ("img:", "nothing follows its ':'"),
        ("img\n:1", "control character"),
        ("-bad.example/img", "is not lowercase words"),
    ],
)
def test_tags_consumers_reject(tmp_path, tree, tag, message):
    out = cf("commit", str(tree), "--layout", str(tmp_path / "L"), f"--tag={tag}")
    assert out.returncode == 2 and message in out.stderr.splitlines()[0], out.stderr
    assert not (tmp_path / "L").exists()


def test_the_longest_names_consumers_take_are_accepted(tmp_path, tree):
    for tag in ("a" * 245, "registry.example:5000/" + "b" * 233 + ":" + "t" * 128):
        out = cf("commit", str(tree), "--layout", str(tmp_path / "L"), "--tag", tag, "--quiet")
        assert out.returncode == 0, out.stderr


@pytest.fixture
def layout(tmp_path, tree) -> Path:
    for tag in ("a/hello:1", "b/hello:1", "localhost/tools/busybox:latest"):
        oci.commit(tree, tmp_path / "L", tag, quiet=True)
    return tmp_path / "L"


def test_a_missing_layout_does_not_exist(tmp_path, layout):
    for argv in (
        ("verify", str(tmp_path / "nope")),
        ("gc", str(tmp_path / "nope")),
        ("inspect", str(tmp_path / "nope")),
        ("inspect", f"{tmp_path / 'nope'}:x"),
        ("export", f"{tmp_path / 'nope'}:x", "-o", str(tmp_path / "x.tar")),
        ("sbom", f"{tmp_path / 'nope'}:x"),
    ):
        out = cf(*argv)
        assert out.returncode == 2 and f"{tmp_path / 'nope'} does not exist" in out.stderr, (argv, out.stderr)
    out = cf("inspect", f"{layout}/busybox")  # a '/' where the ':' belongs
    assert out.returncode == 2 and f"did you mean {layout}:busybox?" in out.stderr, out.stderr
    (tmp_path / "file").write_text("x")
    out = cf("verify", str(tmp_path / "file"))
    assert out.returncode == 2 and "is not a directory" in out.stderr


def test_an_ambiguous_short_tag_lists_its_candidates(layout):
    for wanted in ("hello", "hello:1"):
        out = cf("inspect", f"{layout}:{wanted}")
        assert out.returncode == 2, out.stderr
        assert f"tag '{wanted}' is ambiguous" in out.stderr and "a/hello:1, b/hello:1" in out.stderr, (
            out.stderr
        )


def test_a_mistyped_tag_gets_a_did_you_mean(layout):
    for wanted, meant in (
        ("busybx", "localhost/tools/busybox:latest"),
        ("tools/busybox:lates", "localhost/tools/busybox:latest"),
        ("a/hello", "a/hello:1"),  # NAME alone means NAME:latest
    ):
        out = cf("export", f"{layout}:{wanted}", "-o", "-")
        assert out.returncode == 1 and f"did you mean '{meant}'?" in out.stderr, (wanted, out.stderr)
    out = cf("inspect", f"{layout}:zzz")
    assert out.returncode == 1 and "tags in the layout: a/hello:1, b/hello:1" in out.stderr


def test_gc_dry_run_lists_and_removes_nothing(layout):
    orphan, size = lo.write_blob(layout, b"x" * 20_000)
    stale = layout / ".tmp" / "blob.999999999.abc.tmp"  # a pid that cannot be alive
    stale.write_bytes(b"y" * 10)
    before = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    out = cf("gc", str(layout), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"would remove blobs/sha256/{orphan[7:]} (19.5 KiB)" in out.stdout
    assert "would remove .tmp/blob.999999999.abc.tmp (10 B)" in out.stdout
    assert out.stdout.splitlines()[-1] == f"{layout}: would remove 2 unreferenced files, 19.5 KiB"
    assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == before and stale.exists()
    out = cf("gc", str(layout), "--dry-run", "--json")
    result = json.loads(out.stdout)
    assert result["dry_run"] and result["removed"] == 2 and result["bytes_freed"] == size + 10
    assert {f["path"] for f in result["files"]} == {
        f"blobs/sha256/{orphan[7:]}",
        ".tmp/blob.999999999.abc.tmp",
    }
    assert stale.exists() and lo.blob_path(layout, orphan).exists()
    out = cf("gc", str(layout), "--json")
    assert json.loads(out.stdout)["bytes_freed"] == size + 10
    assert not stale.exists() and not lo.blob_path(layout, orphan).exists()
    assert oci.verify(layout) == [] and os.listdir(layout / ".tmp") == []
