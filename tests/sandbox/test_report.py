"""userns.Report: the one wire form of what the sandbox's processes tell each other (errors,
notices, exec failures, the nested map's answer). Pure: encode/decode, hostile and garbled input."""

from __future__ import annotations

import random

import pytest

from chrootforge.errors import CfError
from chrootforge.sandbox.userns import REPORT_KINDS, Report

TRICKY = [
    "",
    "plain",
    "separators \x1f and \x1e inside, as the old records used",
    "new\nlines\0nul \x7f del",
    "ünïcödé ✓ and a lone surrogate \udcff",
    "x" * 70000,
]


@pytest.mark.parametrize("message", TRICKY)
def test_round_trip(message):
    reports = [Report("error", message, "a hint: " + message), Report("notice", message), Report("ok")]
    data = b"".join(item.encode() for item in reports)
    back = Report.decode_all(data)
    expected = message.encode(errors="replace").decode()  # a lone surrogate cannot cross as itself
    assert back == [
        Report("error", expected, "a hint: " + expected),
        Report("notice", expected),
        Report("ok"),
    ]


def test_userns_errno_and_empty_stream():
    assert Report.decode_all(Report("userns", "28").encode()) == [Report("userns", "28")]
    assert Report.decode_all(b"") == []


def test_huge_field_is_cut_on_a_character_boundary():
    item = Report("error", "é" * (1 << 20))
    (back,) = Report.decode_all(item.encode())
    assert back.message == "é" * ((1 << 20) // 2)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown report kind"):
        Report("warning", "x")


def test_every_truncation_is_refused_or_a_whole_prefix():
    records = [Report("exec", "cannot run x", "hint"), Report("error", "boom")]
    data = b"".join(item.encode() for item in records)
    boundary = len(records[0].encode())
    for cut in range(1, len(data)):
        if cut == boundary:
            assert Report.decode_all(data[:cut]) == records[:1]
            continue
        with pytest.raises(CfError, match="garbled report from the sandbox: a record is cut short"):
            Report.decode_all(data[:cut], "the sandbox")


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@pytest.mark.parametrize(
    "data, problem",
    [
        (_field(b"warning") + _field(b"x") + _field(b""), "unknown kind 'warning'"),
        (_field(b"error") + _field(b"\xff\xfe") + _field(b""), "not UTF-8"),
        (_field(b"userns") + _field(b"EPERM") + _field(b""), "errno 'EPERM'"),
        (_field(b"userns") + _field(b"") + _field(b""), "errno ''"),
        ((1 << 31).to_bytes(4, "big") + b"error", "cut short"),
        (b"error\x1fold style record\x1f\x1e", "cut short"),
        (b"\0\0\0", "cut short"),
    ],
)
def test_garbled_input_is_one_clear_error(data, problem):
    with pytest.raises(CfError, match=problem) as err:
        Report.decode_all(data, "PID 1")
    assert str(err.value).startswith("garbled report from PID 1: ")
    assert err.value.hint


def test_random_bytes_never_escape_as_another_exception():
    rng = random.Random(22)
    valid = b"".join(Report(kind, "m", "h").encode() for kind in REPORT_KINDS if kind != "userns")
    for _ in range(2000):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.5:
            data = data[: rng.randrange(len(data))]
        try:
            reports = Report.decode_all(bytes(data))
        except CfError as err:
            assert str(err).startswith("garbled report from ")
        else:
            assert all(item.kind in REPORT_KINDS for item in reports)
