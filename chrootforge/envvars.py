"""Environment variables: what makes a valid entry, the ones chrootforge reads, and did-you-mean
for names close to those.

An entry NAME=VALUE of an environment (`run --env`, `[config] env` of a spec) needs a NAME
that is not empty and has no '=', blank or control character (runc, podman and the shells split
or drop such an entry), and a VALUE without NUL (no C environment can hold one).

A variable with a typo in its name is silently ignored by whoever reads the environment: every
command therefore warns about a set variable whose name is close to one of these but is none
of them (`CHROOTFORGE_HOOK` for `CHROOTFORGE_HOOKS`), and a `${VAR}` of a spec that is not set
names the set variable closest to it. Imported by cli.py at start-up: no module imports here
unless a name is suspect.
"""

from __future__ import annotations

PREFIX = "CHROOTFORGE_"
# Every variable that chrootforge's code reads (grep for os.environ finds each one's reader).
KNOWN = (
    "CHROOTFORGE_CERTS_D",
    "CHROOTFORGE_DEBUG",
    "CHROOTFORGE_GENTOO_KEYRING",
    "CHROOTFORGE_HOOKS",
    "CHROOTFORGE_QUIET",
    "CHROOTFORGE_REGISTRY_CHUNK_SIZE",
    "CHROOTFORGE_REGISTRY_MIN_RATE",
    "CHROOTFORGE_REGISTRY_RETRIES",
    "CHROOTFORGE_REGISTRY_TIMEOUT",
    "CHROOTFORGE_RETRY_BACKOFF",
    "CHROOTFORGE_VM_ACCEL",
    "CHROOTFORGE_VM_ARTIFACTS",
    "CHROOTFORGE_VM_GUEST",  # set in the QEMU guest's jobs
    "CHROOTFORGE_WKD_URL",
    "GENTOO_MIRRORS",
    "REGISTRY_AUTH_FILE",
    "SOURCE_DATE_EPOCH",
)
_CUTOFF = 0.85  # difflib's ratio: one or two letters off in names of this length


def name_problem(name: str) -> str | None:
    if not name or "=" in name or any(c.isspace() or not c.isprintable() for c in name):
        from chrootforge.errors import shown

        return (
            f"environment variable name '{shown(name)}' must be non-empty, without '=', "
            "blanks or control characters"
        )
    return None


def value_problem(name: str, value: str) -> str | None:
    return f"the value of {name} contains a NUL" if "\0" in value else None


def _closest(name: str, candidates) -> str | None:
    import difflib  # start-up speed: only when a variable looks misspelled

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=_CUTOFF)
    return close[0] if close else None


def _suspect(name: str) -> bool:
    """Cheap pre-filter: could `name` be a misspelling of a known variable?"""
    if name in KNOWN:
        return False
    if name.startswith(PREFIX):
        return True
    return any(name[:4] == known[:4] and abs(len(name) - len(known)) <= 2 for known in KNOWN)


def misspelled(environ) -> list[tuple[str, str]]:
    """(set name, the known one it is close to) for every suspect variable of `environ`."""
    out = []
    for name in sorted(n for n in environ if _suspect(n)):
        known = _closest(name, KNOWN)
        if known is not None and known not in environ:
            out.append((name, known))
    return out


def warn_misspelled(environ) -> None:
    if not any(_suspect(name) for name in environ):
        return
    from chrootforge import log

    for name, known in misspelled(environ):
        log.warn(f"{name} is set, but chrootforge reads no such variable: did you mean {known}?")


def unset_hint(name: str, environ) -> str:
    """The hint for a `${name}` that is not set: the set variable closest to it, if any."""
    close = _closest(name, [n for n in environ if n != name])
    if close is not None:
        return f"did you mean ${{{close}}}? (it is set; {name} is not)"
    return f"export {name}=... or give the path directly"
