import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "chrootforge", *args], capture_output=True, text=True)


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
