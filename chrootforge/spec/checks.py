"""Validation of single spec values: each check returns None, or what is wrong in one sentence.

Every value here ends up in a file or a command line that another program reads (portage's
/etc/portage files and make.conf, emerge's arguments, s6 run scripts, the OCI config that podman,
docker and runc read), so each check admits only what that reader takes as meant. Patterns are
matched whole (`fullmatch`): with `match` and `$`, a trailing newline would pass.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from chrootforge.atoms import REPO_NAME, USE_FLAG, atom_cp, check_atom, ends_like_version, split_cpv
from chrootforge.envvars import name_problem
from chrootforge.errors import UsageError, shown
from chrootforge.imageref import parse_ref
from chrootforge.sources.mirrors import url_problem

# A name (namespace, image, service) is one component of an image's repository path (what
# docker, podman and the OCI distribution spec take), and at most 128 characters.
_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
MAX_NAME = 128
MAX_REPOSITORY = 255  # PREFIX/IMAGE, as registries and docker limit a repository's name
_USE_RE = re.compile(rf"-?{USE_FLAG}")
_KEYWORD_RE = re.compile(r"-?~?[A-Za-z0-9_][A-Za-z0-9_-]*|\*\*|~\*|-?\*")
_PORT_RE = re.compile(r"([1-9][0-9]{0,4})(?:/(tcp|udp|sctp))?")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_MAKE_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEEP_RE = re.compile(r"[A-Za-z0-9/._+@%,:=*?\[\]!-]+")
_SONAME_RE = re.compile(r"[A-Za-z0-9_+.-]+\.so(\.[0-9]+)*")
_PREFIX_RE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
)
_REPO_RE = re.compile(REPO_NAME)
_PROFILE_RE = re.compile(r"[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*")
_LOCALE_RE = re.compile(r"[A-Za-z0-9_.@-]+")
_HOOK_RE = re.compile(r"[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*")
# A user or group: a name (as shadow's useradd takes it, dots allowed) or a number.
_USER_PART = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10}"
_USER_RE = re.compile(rf"(?:{_USER_PART})(?::(?:{_USER_PART}))?")
MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel
SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGWINCH")
MANAGED_MAKE_VARS = ("ROOT", "PORTAGE_CONFIGROOT", "PKGDIR", "DISTDIR", "PORTAGE_TMPDIR")
RESERVED_LABELS = "org.chrootforge."  # the build's own labels: a spec may not set or fake them


# Besides C0 and DEL: C1 (0x9b is a terminal's CSI), Unicode's line and paragraph separators
# (Python's splitlines() and str.split() break there) and the bidirectional embeddings, overrides
# and isolates (they make a value display as something else).
_CONTROL = {
    *range(32),
    127,
    *range(0x80, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
}


def control_characters(value: str, lines: bool = False) -> str | None:
    """What is wrong with control characters in `value`: none may be there but a tab (and, with
    `lines`, newlines); NUL never (no C string, environment entry or argv word can hold it)."""
    allowed = "\t\n" if lines else "\t"
    bad = [c for c in value if ord(c) in _CONTROL and c not in allowed]
    if not bad:
        return None
    what = "a NUL" if "\0" in bad else f"the control character {shown(bad[0])}"
    return f"'{shown(value)}' contains {what}" + ("" if lines else " (it must be one line)")


def name(what: str):
    def check(value: str) -> str | None:
        if not _NAME_RE.fullmatch(value):
            return (
                f"{what} name '{shown(value)}' must be lower case letters and digits, "
                "separated by one . or _, two _, or dashes"
            )
        if len(value) > MAX_NAME:
            return f"{what} name '{value[:24]}...' has {len(value)} characters, more than {MAX_NAME}"
        return None

    return check


def repository(prefix: str, image: str) -> str | None:
    """The image's repository name PREFIX/IMAGE must fit the limit registries set."""
    full = f"{prefix}/{image}"
    if len(full) > MAX_REPOSITORY:
        return f"the image's name {full[:40]}... has {len(full)} characters, more than {MAX_REPOSITORY}"
    return None


def atom(value: str) -> str | None:
    return check_atom(value)


def cp(value: str) -> str | None:
    """category/name, no version or operator."""
    problem = check_atom(value)
    if problem:
        return problem
    if atom_cp(value) != value:
        return f"'{shown(value)}' must be a category/name without version or operator"
    return None


def provided_entry(value: str) -> str | None:
    """category/name or category/name-VERSION: what package.provided can hold."""
    if value[:1] in "<>=~!":
        return f"'{shown(value)}' must be category/name or category/name-VERSION, without an operator"
    try:
        split_cpv(value)
    except ValueError:
        return cp(value)
    if check_atom(f"={value}"):
        return f"'{shown(value)}' is not category/name or category/name-VERSION"
    return None


def use_flag(value: str) -> str | None:
    return None if _USE_RE.fullmatch(value) else f"'{shown(value)}' is not a USE flag"


def keyword(value: str) -> str | None:
    """An ACCEPT_KEYWORDS entry: arch, ~arch, -arch, **, ~*, * or -*."""
    return None if _KEYWORD_RE.fullmatch(value) else f"'{shown(value)}' is not a keyword (e.g. ~amd64)"


def port(value: str) -> str | None:
    """N or N/tcp|udp|sctp, N in 1..65535 (what docker and podman take for ExposedPorts)."""
    match = _PORT_RE.fullmatch(value)
    if match is None or int(match.group(1)) > 65535:
        return f"'{shown(value)}' is not a port: N or N/tcp, N/udp, N/sctp with N from 1 to 65535"
    return None


def tag(value: str) -> str | None:
    return None if _TAG_RE.fullmatch(value) else f"'{shown(value)}' is not a valid tag"


def fingerprint(value: str) -> str | None:
    """An OpenPGP key by its fingerprint (40 or 64 hex digits) or long key id (16)."""
    text = value.removeprefix("0x").replace(" ", "")
    if len(text) in (16, 40, 64) and all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return f"{value!r} is not an OpenPGP fingerprint"


def prefix(value: str) -> str | None:
    return None if _PREFIX_RE.fullmatch(value) else f"'{shown(value)}' is not an image name prefix"


def repo_name(value: str) -> str | None:
    """A repository name (PMS 3.1.5): it names a repos.conf section and /var/db/repos/NAME."""
    if not _REPO_RE.fullmatch(value) or ends_like_version(value):
        return f"repository name '{shown(value)}' must be letters, digits, _ and - (not first)"
    return None


def profile(value: str) -> str | None:
    """A profile path relative to the tree's profiles/ (the make.profile symlink's target)."""
    parts = value.split("/")
    if not _PROFILE_RE.fullmatch(value) or ".." in parts or "." in parts:
        return f"profile '{shown(value)}' must be a path inside profiles/ (e.g. default/linux/amd64/23.0)"
    return None


def locale(value: str) -> str | None:
    if _LOCALE_RE.fullmatch(value):
        return None
    return f"'{shown(value)}' is not a locale name (e.g. en_US, de_DE.UTF-8, sr_RS@latin)"


def hook_ref(value: str) -> str | None:
    """A hook: a script of the namespace (a path relative to the image folder; `..` may reach a
    sibling folder, and the loader checks it stays inside the namespace) or a stock hook's name."""
    if not _HOOK_RE.fullmatch(value):
        return (
            f"hook '{shown(value)}' must be a relative path inside the namespace, or a stock "
            "hook's name (letters, digits, / . _ + -)"
        )
    return None


def user(value: str) -> str | None:
    """USER of the OCI config: name, uid, name:group or uid:gid (ids below 2^32-1)."""
    match = _USER_RE.fullmatch(value)
    if match is None or any(p.isdigit() and int(p) > MAX_ID for p in value.split(":")):
        return f"user '{shown(value)}' must be NAME, UID, NAME:GROUP or UID:GID"
    return None


def env_name(value: str) -> str | None:
    """The name of an environment variable (envvars.name_problem)."""
    return name_problem(value)


def label_key(value: str) -> str | None:
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        return f"label '{shown(value)}' must be non-empty, without blanks or control characters"
    if value.startswith(RESERVED_LABELS):
        return f"label '{value}' is the build's own ({RESERVED_LABELS}*): a spec cannot set it"
    return None


def make_value(value: str) -> str | None:
    """A make.conf or package.env value: one line (it is written inside double quotes)."""
    return control_characters(value)


def registry_base(value: str) -> str | None:
    """docker://HOST[:PORT][/NAMESPACE]: what `build --push` puts IMAGE:TAG under."""
    if not value.startswith("docker://"):
        return f"registry '{value}' must start with docker://"
    try:
        parse_ref(f"{value.rstrip('/')}/image:tag")
    except UsageError:
        return f"'{value}' is not docker://HOST[:PORT]/NAMESPACE (without a tag)"
    return None


def binhost(value: str) -> str | None:
    """An http(s):// or file:// URL: the directory holding binpkgs caches (gentoo/binhost.py)."""
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


def mirror(value: str) -> str | None:
    """A Gentoo mirror: an http(s):// or file:// base URL, or a directory (sources/mirrors.py)."""
    return url_problem(value)


def _hide_password(value: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", value)


def absolute(value: str) -> str | None:
    return None if value.startswith("/") else f"'{shown(value)}' must be an absolute path"


def keep_pattern(value: str) -> str | None:
    """An absolute path or shell glob inside the image, without .. components (and without the
    characters a shell would treat specially besides the glob ones: the strip script globs it)."""
    if not value.startswith("/"):
        return f"keep pattern '{value}' must be an absolute path (a glob is allowed)"
    if ".." in value.split("/"):
        return f"keep pattern '{value}' must not contain '..'"
    if not _KEEP_RE.fullmatch(value):
        return (
            f"keep pattern '{shown(value)}' may hold letters, digits, / . _ - + @ % , : = "
            "and the globs * ? [ ] !"
        )
    if value.rstrip("/") == "":
        return "keep pattern '/' would keep everything; name the paths to keep"
    return None


def soname(value: str) -> str | None:
    if not _SONAME_RE.fullmatch(value):
        return f"'{shown(value)}' is not a shared library file name (e.g. libgcc_s.so.1)"
    return None


def make_var(value: str) -> str | None:
    if not _MAKE_VAR.fullmatch(value):
        return f"'{shown(value)}' is not a make.conf variable name"
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
    return f"unknown stop_signal '{shown(value)}'"


def not_empty(what: str):
    def check(value) -> str | None:
        return None if value else f"{what} must not be empty"

    return check
