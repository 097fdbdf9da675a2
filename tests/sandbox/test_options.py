"""The words of `chrootforge run`/`shell` (sandbox/runoptions.py): pure, no privileges."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chrootforge.errors import UsageError
from chrootforge.sandbox.runoptions import help_text, parse


def test_options_before_and_after_rootfs_then_the_command():
    parsed = parse(
        "run",
        [
            "--bind",
            "/a:/b",
            "ROOT",
            "--env=K=V",
            "--bind=/c:/d:ro",
            "--single-id",
            "--",
            "sh",
            "-c",
            "echo --bind",
        ],
    )
    assert parsed.rootfs == "ROOT" and parsed.argv == ["sh", "-c", "echo --bind"]
    assert parsed.values["bind"] == ["/a:/b", "/c:/d:ro"] and parsed.values["env"] == ["K=V"]
    assert parsed.values["single_id"] is True and not parsed.help


def test_defaults():
    values = parse("run", ["ROOT", "--", "true"]).values
    assert values["network"] == "none" and values["sys"] == "none" and values["hostname"] == "chrootforge"
    assert values["bind"] == [] and values["tmpfs"] == [] and values["cwd"] is None
    assert values["log"] is None and values["tee"] is False and values["single_id"] is False
    # every call starts from fresh lists
    assert parse("run", ["ROOT", "--", "true"]).values["bind"] is not values["bind"]


def test_without_separator_everything_after_rootfs_is_the_command():
    parsed = parse("run", ["--network", "host", "ROOT", "ls", "--bind", "-h"])
    assert parsed.rootfs == "ROOT" and parsed.argv == ["ls", "--bind", "-h"]
    assert parsed.values["network"] == "host" and parsed.values["bind"] == []


def test_unambiguous_prefixes_like_argparse():
    values = parse("run", ["--net", "host", "--hostn=box", "--portage", "4G", "ROOT", "--", "x"]).values
    assert values["network"] == "host" and values["hostname"] == "box" and values["portage_tmpfs"] == "4G"
    with pytest.raises(UsageError, match="ambiguous option: --h could match --help, --hostname"):
        parse("run", ["--h", "ROOT", "--", "x"])


@pytest.mark.parametrize(
    "words, needle",
    [
        (["ROOT", "--network", "bridge", "--", "x"], "invalid choice: 'bridge' (choose from 'none', 'host')"),
        (["ROOT", "--sys=rw", "--", "x"], "invalid choice: 'rw'"),
        (["--bind"], "argument --bind: expected one argument"),
        (["ROOT", "--bind", "--", "x"], "argument --bind: expected one argument"),
        (["ROOT", "--tee=yes", "--", "x"], "ignored explicit argument 'yes'"),
        (["ROOT", "--nope", "--", "x"], "unrecognized arguments: --nope"),
        (["ROOT", "-x", "--", "x"], "unrecognized arguments: -x"),
        (["--", "x"], "required: ROOTFS"),
        (["ROOT", "OTHER", "--", "x"], "unexpected arguments: OTHER"),
    ],
)
def test_bad_words_are_usage_errors(words, needle):
    with pytest.raises(UsageError) as caught:
        parse("run", words)
    assert needle in str(caught.value) and "chrootforge run --help" in caught.value.hint


def test_shell_takes_no_command_nor_run_only_options():
    assert parse("shell", ["ROOT", "--cwd", "/tmp"]).values["cwd"] == "/tmp"
    with pytest.raises(UsageError, match="unexpected arguments: ls"):
        parse("shell", ["ROOT", "ls"])
    with pytest.raises(UsageError, match="unexpected arguments: ls"):
        parse("shell", ["ROOT", "--", "ls"])
    with pytest.raises(UsageError, match="unrecognized arguments: --log"):
        parse("shell", ["ROOT", "--log", "f"])
    assert "--log" not in help_text("shell") and "--log FILE" in help_text("run")


def test_help_wins_before_the_separator_only():
    assert parse("run", ["--bind", "/a:/b", "--help"]).help
    assert parse("shell", ["-h"]).help
    assert not parse("run", ["ROOT", "--", "sh", "--help"]).help


def _cf(*args):
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True, check=False
    )


def test_cli_help_and_errors_without_argparse():
    out = _cf("run", "--help")
    assert out.returncode == 0 and out.stdout == help_text("run")
    out = _cf("--quiet", "run", "/nonexistent", "--network", "bridge", "--", "true")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("chrootforge: error: argument --network: invalid choice")
    # global options argparse knows best still go through it, up to the command name
    assert _cf("-qq", "shell", "--help").stdout == help_text("shell")
    out = _cf("--bogus", "run", "/x", "--", "true")
    assert out.returncode == 2 and "unrecognized arguments: --bogus" in out.stderr


def test_run_parses_without_importing_argparse():
    probe = (
        "import sys\n"
        "from chrootforge import cli\n"
        "rc = cli.main(['--quiet', 'run', '/nonexistent', '--', 'true'])\n"
        "print(rc, 'argparse' in sys.modules, 'dataclasses' in sys.modules, 'typing' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": ":".join(p for p in sys.path if p)},
    )
    assert out.stdout.split() == ["2", "False", "False", "False"], out.stderr
