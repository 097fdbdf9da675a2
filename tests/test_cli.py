import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "chrootforge", *args], check=False, capture_output=True, text=True
    )


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    assert "COMMAND" in out.stdout


def test_unknown_command_is_usage_error():
    out = run("no-such-command")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_identity_runs_python(identity):
    out = identity.run([*identity.python, "-c", "import os, chrootforge; print(os.getuid())"])
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == identity.uid


def test_command_owner_table_matches_registrations():
    """COMMAND_OWNERS must name exactly the module that registers each command."""
    import argparse
    import importlib

    from chrootforge import cli

    seen = {}
    for name in cli.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        seen.update({command: name for command in sub.choices})
    assert seen == cli.COMMAND_OWNERS


def test_run_imports_nothing_heavy():
    probe = (
        "import sys\n"
        "from chrootforge import cli\n"
        "cli.build_parser(['run', '/nonexistent', '--', 'true'])\n"
        "heavy = [m for m in ('requests', 'gnupg', 'zstandard', 'pyroute2', 'chrootforge.oci.cli',"
        " 'chrootforge.build.cli', 'chrootforge.sources.cli') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_push_starts_without_the_writer_or_charset_detection(tmp_path):
    """`push` only reads a layout, and reads answers as bytes: neither the commit writer (tar,
    compression, thread pools), TOML, nor requests' character detection load on its way (start-up
    speed, issue 22); requests itself does, which shows the probe got that far."""
    probe = (
        "import sys\n"
        "from chrootforge import cli\n"
        "cli._skip_charset_detection('push')\n"
        f"code = cli.main(['push', '{tmp_path}/missing:tag', 'docker://127.0.0.1:9/x/y'])\n"
        "names = ('requests', 'chardet', 'charset_normalizer', 'chrootforge.oci.writer', 'tarfile',"
        " 'tomllib', 'concurrent.futures')\n"
        "print(code, [m for m in names if sys.modules.get(m) is not None])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2 ['requests']", out.stdout
    assert "missing does not exist" in out.stderr


def _parsers():
    """(words, parser) of every command and subcommand of the whole CLI."""
    import argparse

    from chrootforge import cli

    todo = [([], cli.build_parser([]))]
    while todo:
        words, parser = todo.pop()
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [([*words, name], child) for name, child in action.choices.items()]


def test_every_command_describes_itself_and_states_its_defaults():
    import argparse

    missing, silent = [], []
    for words, parser in _parsers():
        if not parser.description:
            missing.append(" ".join(words))
        for action in parser._actions:
            if isinstance(
                action, argparse._HelpAction | argparse._SubParsersAction | argparse._VersionAction
            ):
                continue
            if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in (
                action.help or ""
            ):
                silent.append(f"{' '.join(words)} {action.option_strings}")
    assert missing == [] and silent == []


def test_command_help_shows_the_description():
    for command in ("verify", "gc", "inspect", "sbom", "export", "commit", "fetch", "push", "pull"):
        out = run(command, "--help")
        assert out.returncode == 0, out.stderr
        usage_end = out.stdout.index("\n\n")
        assert out.stdout[usage_end:].strip().split("\n")[0][:1].isupper(), (command, out.stdout)
    out = run("export", "--help")
    assert "(default oci-archive)" in out.stdout and "-o - writes to stdout" in " ".join(out.stdout.split())
    out = run("gc", "--help")
    assert "--dry-run" in out.stdout
