"""BuildOptions (the one shape of build's options) and BuildReport's decoder: each a round trip."""

from __future__ import annotations

import dataclasses

import pytest

from chrootforge import cli
from chrootforge.build.engine import BuildReport, ImageResult
from chrootforge.build.flags import BuildOptions
from chrootforge.errors import UsageError

SOME = BuildOptions(
    force=True, no_deps=True, layout="/l", network="host", single_id=True, stage3="/s.tar", jobs=3
)


def _parsed(argv):
    return cli.build_parser(["build", *argv]).parse_args(["build", *argv])


@pytest.mark.parametrize("options", [BuildOptions(), SOME, BuildOptions(force_all=True, jobs=2)])
def test_argv_parses_back_to_the_same_options(options):
    """to_argv gives the flags that `chrootforge build` parses into the same value: every field
    of BuildOptions is a flag of the command, and no flag is lost on the way (the VM guest's
    command line is made this way)."""
    assert BuildOptions.from_args(_parsed([*options.to_argv(), "ns"])) == options


def test_every_field_is_a_build_flag():
    args = _parsed(["ns"])
    assert {f.name for f in dataclasses.fields(BuildOptions)} <= set(vars(args))


def test_json_round_trip_and_bad_documents():
    assert BuildOptions.from_json(SOME.to_json()) == SOME
    for bad in ([], {"force": "yes"}, {"jobs": True}, {"jobs": "2"}, {"layout": 3}, {"nope": 1}):
        with pytest.raises(UsageError):
            BuildOptions.from_json(bad)


def test_build_report_round_trip():
    report = BuildReport(
        "ns",
        "/layout",
        [
            ImageResult("a", ["r:1"], "built", 1.5, {"emerge": 1.0}, "sha256:" + "a" * 64, 10, 1),
            ImageResult("b", [], "failed", error="boom", platforms={"linux/arm64": {"status": "built"}}),
        ],
        2.5,
        False,
    )
    assert BuildReport.from_json(report.to_json()) == report


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"layout": "/l"},  # no namespace
        {"namespace": "n", "layout": "/l", "images": {}},
        {"namespace": "n", "layout": "/l", "images": [{"image": "a", "refs": [], "status": 1}]},
        {
            "namespace": "n",
            "layout": "/l",
            "images": [{"image": "a", "refs": [], "status": "x", "size": True}],
        },
        {"namespace": "n", "layout": "/l", "ok": "yes"},
        {"namespace": "n", "layout": "/l", "extra": 1},
    ],
)
def test_build_report_decoder_refuses_what_its_encoder_never_writes(doc):
    with pytest.raises(ValueError):
        BuildReport.from_json(doc)
