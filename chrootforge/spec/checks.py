"""Validation of single spec values: each check returns None, or what is wrong in one sentence."""

from __future__ import annotations

import re

from chrootforge.atoms import atom_cp, check_atom, split_cpv

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_USE_RE = re.compile(r"^-?[A-Za-z0-9][A-Za-z0-9+_@-]*$")
_PORT_RE = re.compile(r"^\d{1,5}(/(tcp|udp|sctp))?$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_MAKE_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEEP_RE = re.compile(r"^[A-Za-z0-9/._+@%,:=*?\[\]!-]+$")
_SONAME_RE = re.compile(r"^[A-Za-z0-9_+.-]+\.so(\.[0-9]+)*$")
_PREFIX_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$"
)
SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGWINCH")
MANAGED_MAKE_VARS = ("ROOT", "PORTAGE_CONFIGROOT", "PKGDIR", "DISTDIR", "PORTAGE_TMPDIR")


def name(what: str):
    def check(value: str) -> str | None:
        if not _NAME_RE.match(value):
            return f"{what} name '{value}' must be lower case letters, digits, . _ -"
        return None

    return check


def atom(value: str) -> str | None:
    return check_atom(value)


def cp(value: str) -> str | None:
    """category/name, no version or operator."""
    problem = check_atom(value)
    if problem:
        return problem
    if atom_cp(value) != value:
        return f"'{value}' must be a category/name without version or operator"
    return None


def provided_entry(value: str) -> str | None:
    """category/name or category/name-VERSION: what package.provided can hold."""
    if value[:1] in "<>=~!":
        return f"'{value}' must be category/name or category/name-VERSION, without an operator"
    try:
        split_cpv(value)
        return None
    except ValueError:
        return cp(value)


def use_flag(value: str) -> str | None:
    return None if _USE_RE.match(value) else f"'{value}' is not a USE flag"


def port(value: str) -> str | None:
    return None if _PORT_RE.match(value) else f"'{value}' is not a port (e.g. 8080 or 8080/tcp)"


def tag(value: str) -> str | None:
    return None if _TAG_RE.match(value) else f"'{value}' is not a valid tag"


def fingerprint(value: str) -> str | None:
    """An OpenPGP key by its fingerprint (40 or 64 hex digits) or long key id (16)."""
    text = value.removeprefix("0x").replace(" ", "")
    if len(text) in (16, 40, 64) and all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return f"{value!r} is not an OpenPGP fingerprint"


def prefix(value: str) -> str | None:
    return None if _PREFIX_RE.match(value) else f"'{value}' is not an image name prefix"


def registry_base(value: str) -> str | None:
    """docker://HOST[:PORT][/NAMESPACE]: what `build --push` puts IMAGE:TAG under."""
    from chrootforge.errors import UsageError
    from chrootforge.registry.reference import parse_ref

    if not value.startswith("docker://"):
        return f"registry '{value}' must start with docker://"
    try:
        parse_ref(f"{value.rstrip('/')}/image:tag")
    except UsageError:
        return f"'{value}' is not docker://HOST[:PORT]/NAMESPACE (without a tag)"
    return None


def binhost(value: str) -> str | None:
    """An http(s):// or file:// URL: the directory holding binpkgs caches (gentoo/binhost.py)."""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"binhost '{value}' is not a URL"
    if url.scheme not in ("http", "https", "file"):
        return f"binhost '{value}' must be an http://, https:// or file:// URL"
    if url.scheme != "file" and not url.hostname:
        return f"binhost '{value}' names no host"
    if url.scheme == "file" and (url.netloc or not url.path.startswith("/")):
        return f"binhost '{value}' must be file:///ABSOLUTE/PATH"
    if url.username or url.password:
        return f"binhost '{_hide_password(value)}' holds credentials; put them in ~/.netrc"
    if url.query or url.fragment or any(ord(c) <= 32 or c in "\"'" for c in value):
        return f"binhost '{value}' must be a plain URL (no query, fragment, spaces or quotes)"
    return None


def _hide_password(value: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", value)


def absolute(value: str) -> str | None:
    return None if value.startswith("/") else f"'{value}' must be an absolute path"


def keep_pattern(value: str) -> str | None:
    """An absolute path or shell glob inside the image, without .. components (and without the
    characters a shell would treat specially besides the glob ones: the strip script globs it)."""
    if not value.startswith("/"):
        return f"keep pattern '{value}' must be an absolute path (a glob is allowed)"
    if ".." in value.split("/"):
        return f"keep pattern '{value}' must not contain '..'"
    if not _KEEP_RE.match(value):
        return f"keep pattern '{value}' may hold letters, digits, / . _ - + @ % , : = and the globs * ? [ ] !"
    if value.rstrip("/") == "":
        return "keep pattern '/' would keep everything; name the paths to keep"
    return None


def soname(value: str) -> str | None:
    if not _SONAME_RE.match(value):
        return f"'{value}' is not a shared library file name (e.g. libgcc_s.so.1)"
    return None


def make_var(value: str) -> str | None:
    if not _MAKE_VAR.match(value):
        return f"'{value}' is not a make.conf variable name"
    if value in MANAGED_MAKE_VARS:
        return f"make_conf.{value} is managed by chrootforge"
    return None


def at_least(minimum: int):
    def check(value) -> str | None:
        return None if value is None or value >= minimum else f"must be at least {minimum}"

    return check


def signal(value) -> str | None:
    if value is None or value in SIGNALS:
        return None
    return f"unknown stop_signal '{value}'"


def not_empty(what: str):
    def check(value) -> str | None:
        return None if value else f"{what} must not be empty"

    return check
