"""Helpers for the pipeline's unit tests: write small namespaces into tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

NS_MIN = """\
name = "t"
[stage3]
path = "stage3.tar.zst"
[tree]
path = "repo"
"""


class NsMaker:
    def __init__(self, root: Path):
        self.root = root
        (root / "repo" / "profiles").mkdir(parents=True)
        (root / "repo" / "profiles" / "repo_name").write_text("testrepo\n")
        self.write("chrootforge.toml", NS_MIN)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def image(self, name: str, text: str) -> Path:
        return self.write(f"{name}/image.toml", text)


@pytest.fixture
def ns(tmp_path) -> NsMaker:
    return NsMaker(tmp_path / "ns")
