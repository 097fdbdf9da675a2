"""Tags: validation and the names consumers see.

A tag is stored verbatim as `org.opencontainers.image.ref.name`, so `oci:DIR:TAG` finds it. Either a
plain NAME (meaning NAME:latest for other tools) or NAME:TAG, where NAME is a lowercase
Docker-style repository path. `io.containerd.image.name` is the fully qualified form:
`localhost/NAME:TAG`, unless NAME already starts with a registry host (has a '.' or ':' in its first
component, or is `localhost/...`).
"""

from __future__ import annotations

import re

from chrootforge.errors import UsageError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
_NAME_RE = re.compile(rf"^{_HOST}{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def split_tag(tag: str) -> tuple[str, str | None]:
    """'a/b:1' -> ('a/b', '1'); 'a/b' -> ('a/b', None). A ':' before the last '/' is a port."""
    slash = tag.rfind("/")
    colon = tag.rfind(":")
    if colon > slash:
        return tag[:colon], tag[colon + 1 :]
    return tag, None


def check_tag(tag: str) -> str:
    """Return `tag` if valid, else raise UsageError naming what is wrong."""
    name, version = split_tag(tag)
    if not tag or not _NAME_RE.match(name) or (version is not None and not _TAG_RE.match(version)):
        raise UsageError(
            f"invalid tag {tag!r}",
            hint="use NAME or NAME:TAG, NAME lowercase [a-z0-9._-] components separated by '/', "
            "TAG up to 128 of [A-Za-z0-9_.-]",
        )
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


def match_tag(wanted: str, tags) -> str | None:
    """The stored tag that `wanted` names: itself, or else the only tag whose repository is NAME or
    ends with /NAME and whose version matches (`latest` by default). So `hello` finds
    `localhost/chrootforge/hello:latest`. None when nothing matches; UsageError when several do."""
    tags = list(tags)
    if wanted in tags:
        return wanted
    name, version = split_tag(wanted)
    version = version or "latest"
    found = sorted(
        t
        for t in tags
        if (split_tag(t)[1] or "latest") == version
        and (split_tag(t)[0] == name or split_tag(t)[0].endswith("/" + name))
    )
    if len(found) > 1:
        raise UsageError(
            f"tag {wanted!r} is ambiguous: it matches {', '.join(found)}", hint="give the full tag"
        )
    return found[0] if found else None


def split_layout_ref(text: str) -> tuple[str, str | None]:
    """'LAYOUT:TAG' -> (LAYOUT, TAG); a path with no ':' -> (path, None). Splits at the first ':'
    after the last '/' of the layout part so that tags like 'a:1' survive."""
    if ":" not in text:
        return text, None
    layout, _, tag = text.partition(":")
    return layout, tag or None
