"""A multi-platform image in a layout, made without a build (quick): for the OCI and registry tests.

- `multi_layout` (session): a world-readable layout whose tags `localhost/t/multi:1` and `:latest`
  point at an OCI image index of two busybox images, linux/amd64 (Debian's busybox) and
  linux/arm64 (Debian's arm64 busybox), each with an SBOM referrer; made the way a multi-platform
  build makes it: each platform's image committed into a layout of its own (with its platform),
  then build.platformindex.assemble.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.helpers.identity import shared_dir

TAGS = ("localhost/t/multi:1", "localhost/t/multi:latest")
SBOM = "application/spdx+json"


@dataclasses.dataclass(frozen=True)
class MultiLayout:
    layout: Path
    index_digest: str
    digests: dict  # platform text -> image manifest digest
    sboms: dict  # platform text -> SBOM referrer digest
    tag: str = TAGS[0]


@pytest.fixture(scope="session")
def multi_layout(arm64_busybox) -> MultiLayout:
    from chrootforge import oci
    from chrootforge.build.platformindex import assemble
    from chrootforge.platforms import parse_platform
    from tests.helpers.oci import fixed_epoch, make_busybox_rootfs, open_to_all

    root = shared_dir("multi.")
    with fixed_epoch():
        images, digests, sboms = [], {}, {}
        for name, busybox in (("linux/amd64", Path("/bin/busybox")), ("linux/arm64", arm64_busybox)):
            platform = parse_platform(name)
            rootfs = make_busybox_rootfs(root / f"rootfs-{platform.slug}", busybox)
            sub = root / f"sub-{platform.slug}"
            result = oci.commit(
                rootfs,
                sub,
                "x:1",
                quiet=True,
                platform=platform,
                config={"Cmd": ["/bin/sh", "-c", "cat /etc/motd"]},
            )
            sboms[name] = oci.attach_referrer(sub, "x:1", f'{{"name": "{name}"}}'.encode(), SBOM)
            digests[name] = result.digest
            images.append((platform, sub, result.digest))
        index_digest, _size = assemble(root / "layout", list(TAGS), images)
    open_to_all(root)
    yield MultiLayout(root / "layout", index_digest, digests, sboms)
    shutil.rmtree(root, ignore_errors=True)
