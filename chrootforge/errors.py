"""The error types every module raises; the CLI maps them to exit codes and one clear message."""


def shown(value: str) -> str:
    """`value` as a message quotes it: control characters escaped, so the message stays one line."""
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


class CfError(Exception):
    """A failure the user must see as one clear message, without a traceback (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def render(self) -> str:
        text = f"chrootforge: error: {self}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(CfError):
    """Bad command-line input or a bad spec file (exit 2)."""

    exit_code = 2


class VerificationError(CfError):
    """A signature, digest or layout check failed (exit 1)."""
