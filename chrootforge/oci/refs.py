"""Tags: validation and the names consumers see.

A tag is stored verbatim as `org.opencontainers.image.ref.name`, so `oci:DIR:TAG` finds it. Either a
plain NAME (meaning NAME:latest for other tools) or NAME:TAG, where NAME is a lowercase
Docker-style repository path. `io.containerd.image.name` is the fully qualified form:
`localhost/NAME:TAG`, unless NAME already starts with a registry host (has a '.' or ':' in its first
component, or is `localhost/...`).
"""

from __future__ import annotations

import re

from chrootforge.errors import CfError, UsageError

# The distribution reference grammar (distribution/reference, "grammar"): path components of
# lowercase alphanumerics joined by separators, an optional host[:port] first, a tag of at most
# 128 characters, and a name (host included) of at most 255 characters.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?"
_NAME_RE = re.compile(rf"^{_HOST}{_COMPONENT}(?:/{_COMPONENT})*\Z")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
NAME_MAX = 255
TAG_MAX = 128
TAG_HINT = (
    "use NAME or NAME:TAG: NAME is lowercase [a-z0-9] words joined by . _ - and '/', "
    "TAG up to 128 of [A-Za-z0-9_.-], not starting with . or -"
)


def split_tag(tag: str) -> tuple[str, str | None]:
    """'a/b:1' -> ('a/b', '1'); 'a/b' -> ('a/b', None). A ':' before the last '/' is a port."""
    slash = tag.rfind("/")
    colon = tag.rfind(":")
    if colon > slash:
        return tag[:colon], tag[colon + 1 :]
    return tag, None


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def tag_problem(tag: str) -> str | None:
    """What makes `tag` unusable as a stored tag, in one sentence, or None. Checked are the
    grammar and the lengths consumers enforce on the names they see (io.containerd.image.name,
    podman's localhost/NAME, a registry's repository)."""
    name, version = split_tag(tag)
    why = None
    if not tag:
        why = "it is empty"
    elif any(ord(c) < 33 or ord(c) == 127 for c in tag):
        why = "it holds a space or a control character"
    elif version == "":
        why = "nothing follows its ':'"
    elif version is not None and len(version) > TAG_MAX:
        why = f"its TAG has {len(version)} characters, more than {TAG_MAX}"
    elif version is not None and not _TAG_RE.fullmatch(version):
        why = f"TAG {_shown(version)} may hold only A-Z a-z 0-9 _ . - and not start with . or -"
    elif not _NAME_RE.fullmatch(name):
        lower = name.split("/", 1)[-1] if "/" in name else name
        why = f"NAME {_shown(name)} " + (
            "must be lower case" if lower != lower.lower() else "is not lowercase words joined by . _ - and /"
        )
    elif len(full := full_name(tag).rpartition(":")[0]) > NAME_MAX:
        why = f"its full name {_shown(full)} has {len(full)} characters, more than {NAME_MAX}"
    return f"invalid tag {_shown(tag)}: {why}" if why else None


def check_tag(tag: str) -> str:
    """Return `tag` if valid, else raise UsageError naming what is wrong."""
    problem = tag_problem(tag)
    if problem:
        raise UsageError(problem, hint=TAG_HINT)
    return tag


def full_name(tag: str) -> str:
    """The fully qualified reference for `io.containerd.image.name`."""
    name, version = split_tag(tag)
    first = name.split("/", 1)[0]
    qualified = "/" in name and ("." in first or ":" in first or first == "localhost")
    return f"{name if qualified else 'localhost/' + name}:{version or 'latest'}"


def docker_tag(tag: str) -> str:
    """The RepoTags entry of a docker-archive: NAME:TAG (Docker names short names itself)."""
    name, version = split_tag(tag)
    return f"{name}:{version or 'latest'}"


def _repository_matches(stored_name: str, name: str) -> bool:
    return stored_name == name or stored_name.endswith("/" + name)


def match_tag(wanted: str, tags) -> str | None:
    """The stored tag that `wanted` names: itself, or else the only tag whose repository is NAME or
    ends with /NAME and whose version matches (`latest` by default). So `hello` finds
    `localhost/chrootforge/hello:latest`. None when nothing matches; UsageError, listing the
    candidates, when several do."""
    tags = list(tags)
    if wanted in tags:
        return wanted
    name, version = split_tag(wanted)
    version = version or "latest"
    found = sorted(
        t
        for t in tags
        if (split_tag(t)[1] or "latest") == version and _repository_matches(split_tag(t)[0], name)
    )
    if len(found) > 1:
        raise UsageError(
            f"tag {wanted!r} is ambiguous: it matches {', '.join(found)}", hint="give one of them in full"
        )
    return found[0] if found else None


def missing_tag(wanted: str, tags, where: str) -> CfError:
    """The error for a tag that match_tag does not find in `where`: the same repository under other
    versions first (a short name without :TAG means :latest), then the closest tag (did you mean),
    else every tag of the layout."""
    tags = sorted(tags)
    name, version = split_tag(wanted)
    message = f"tag {wanted!r} is not in {where}"
    same_repo = [t for t in tags if _repository_matches(split_tag(t)[0], name)]
    if version is None and len(same_repo) > 1:
        candidates = ", ".join(same_repo)
        return UsageError(
            f"tag {wanted!r} is ambiguous: there is no {name}:latest, and it could mean {candidates}",
            hint="give one of them in full",
        )
    if same_repo:
        hint = (
            f"did you mean {same_repo[0]!r}?" if len(same_repo) == 1 else f"its tags: {', '.join(same_repo)}"
        )
        if version is None:
            message += f" (NAME alone means {name}:latest)"
        return CfError(message, hint=hint)
    close = _closest(wanted, tags)
    if close:
        return CfError(message, hint=f"did you mean {close!r}?")
    return CfError(message, hint=f"tags in the layout: {', '.join(tags) or 'none'}")


def _closest(wanted: str, tags: list[str]) -> str | None:
    """The stored tag closest to `wanted` (the project's did-you-mean, spec/source.suggest), by its
    full text or by the short forms match_tag accepts (last path component, with or without TAG)."""
    from chrootforge.spec.source import suggest

    forms: dict[str, str] = {}
    for tag in tags:
        name, version = split_tag(tag)
        short = name.rsplit("/", 1)[-1]
        for form in (tag, name, f"{short}:{version or 'latest'}", short):
            forms.setdefault(form, tag)
    best = suggest(wanted, forms)
    return forms[best] if best else None


def split_layout_ref(text: str) -> tuple[str, str | None]:
    """'LAYOUT:TAG' -> (LAYOUT, TAG); a path with no ':' -> (path, None). Splits at the first ':'
    after the last '/' of the layout part so that tags like 'a:1' survive."""
    if ":" not in text:
        return text, None
    layout, _, tag = text.partition(":")
    return layout, tag or None
