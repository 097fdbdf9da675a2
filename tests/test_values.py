"""chrootforge.values: the dataclass replacement of the sandbox's plan values."""

from __future__ import annotations

import pickle

import pytest

from chrootforge.rootpath import Created
from chrootforge.sandbox.config import Bind, Tmpfs
from chrootforge.sandbox.idmap import full_map, range_map, single_map
from chrootforge.sandbox.mountplan import MountStep


def test_equality_hash_repr_and_defaults():
    assert Bind("/a", "/b") == Bind("/a", "/b", False) != Bind("/a", "/b", True)
    assert Bind("/a", "/b") != Tmpfs("/b")  # another type, same shape or not
    assert len({Bind("/a", "/b"), Bind("/a", "/b"), Bind("/a", "/c")}) == 2
    assert repr(Tmpfs("/t", "1G")) == "Tmpfs(dst='/t', size='1G', mode=493)"
    assert MountStep("pivot").target == "" and MountStep("pivot").flags == 0


def test_immutable_with_replace():
    step = MountStep("bind", "/x", "/src")
    with pytest.raises(AttributeError, match="immutable"):
        step.target = "/y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del step.op
    moved = step.replace(target="/y")
    assert moved == MountStep("bind", "/y", "/src") and step.target == "/x"
    assert Created("/a", "/", None).replace(step=3).step == 3


def test_pickles_as_values():  # call_mapped hands id maps and results across processes
    for value in (full_map(1000, 1000, (100000, 65536), (100000, 65536)), Created("/a", "/", (1, 2), 4)):
        assert pickle.loads(pickle.dumps(value)) == value


def test_idmap_cache_keys_did_not_change():
    """The stage cache keys extracted stages by idmap_key(); these were the keys when IdMap was a
    dataclass, so no cache is invalidated."""
    from chrootforge.sources.mapped_run import idmap_key

    assert idmap_key(full_map(1000, 1000, (300000, 65536), (400000, 65536))) == "e3cedf1b53bd83df"
    assert idmap_key(range_map(1879048192, 1879048192)) == "a98a638bcd2bbcf6"
    assert idmap_key(single_map(1000, 1001)) == "9cea55099a5fa02d"
