"""A build's commit (gentoo/image_io.py): one CommitRequest value crosses into the id map whole
(rootless: inside the mapped namespace; root: translating host ids), with every field it holds."""

from __future__ import annotations

import json
import textwrap

from tests.helpers.oci import layers_of

DRIVER = textwrap.dedent("""
    import sys
    from chrootforge.gentoo import image_io
    from chrootforge.oci.mapped_io import CommitRequest
    from chrootforge.sandbox.idmap import detect_idmap
    root, layout = sys.argv[1:3]
    request = CommitRequest(
        ("one:1", "two:2"),
        config={"Cmd": ["/bin/sh"]},
        labels={"org.example.mark": "marked"},
        history=({"created_by": "the driver"},),
        epoch=1700000000,
    )
    print(image_io.commit(detect_idmap(), root, layout, request, parent=None, compression="gzip"))
""")


def test_build_commit_passes_the_whole_request(identity, busybox_rootfs):
    layout = identity.mkdtemp("mcommit.") / "L"
    result = identity.run([*identity.python, "-c", DRIVER, str(busybox_rootfs), str(layout)])
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip()
    index = json.loads((layout / "index.json").read_text())
    tagged = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert tagged == {"one:1": digest, "two:2": digest}
    manifest = json.loads((layout / "blobs/sha256" / digest[7:]).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes())
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert config["config"]["Labels"]["org.example.mark"] == "marked"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert [h.get("created_by") for h in config["history"]] == ["the driver"]
    (layer,) = layers_of(layout, "one:1")
    # the image's owners, whoever committed it: the request's tree crossed the map
    assert layer["owned/portage-file"][:2] == (250, 250)
    assert layer["owned/user-file"][:2] == (1000, 1000)
    assert layer["bin/busybox"][:2] == (0, 0)
