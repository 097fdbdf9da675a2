"""The image config document: validated user fields, created time, history, diff_ids."""

from __future__ import annotations

import datetime
import json
import re

from chrootforge.errors import UsageError

FIELDS = ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal")


def timestamp(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_CREATED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_created(value) -> int | None:
    """A config's RFC 3339 `created` as whole seconds since the epoch (fractions dropped, as the
    mtime clamp keeps whole seconds), or None when missing, malformed or before 1970."""
    match = _CREATED.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return None
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    try:
        seconds = int(datetime.datetime.fromisoformat(match.group(1) + zone).timestamp())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


# -- the user-facing fields, validated where they enter (commit --config, --label, build) --------
# The formats are the image-spec's (config.md, "Properties"); each check returns what is wrong in
# one sentence, or None. Consumers refuse (runc: a NUL in Env, a relative cwd) or misread the rest.
_PORT = re.compile(r"([0-9]{1,5})(?:/(tcp|udp|sctp))?")
_USER_PART = re.compile(r"[^:\x00-\x20\x7f]+")
_RT_SIGNAL = re.compile(r"SIGRT(MIN\+|MAX-)([0-9]{1,2})")


def _no_control(text: str, what: str) -> str | None:
    if "\x00" in text:
        return f"{what} {text!r} holds a NUL character"
    return None


def port_problem(key: str) -> str | None:
    """ExposedPorts keys: PORT, PORT/tcp, PORT/udp or PORT/sctp, PORT in 1..65535."""
    match = _PORT.fullmatch(key)
    if not match or not 1 <= int(match.group(1)) <= 65535:
        return f"ExposedPorts key {key!r} is not PORT[/tcp|/udp|/sctp] with PORT 1-65535"
    return None


def user_problem(user: str) -> str | None:
    """User: user, uid, user:group, uid:gid (names or ids), or empty (the image's default)."""
    if user and not all(_USER_PART.fullmatch(part) for part in user.split(":", 1)):
        return (
            f"User {user!r} is not USER or USER:GROUP (names or numeric ids, no spaces or control characters)"
        )
    return None


def signal_problem(name: str) -> str | None:
    """StopSignal: a signal name (SIGTERM, SIGRTMIN+3) or number of this platform's."""
    import signal

    if name.isdigit() and 1 <= int(name) <= signal.SIGRTMAX:
        return None
    known = {n for n in signal.Signals.__members__ if n.startswith("SIG") and not n.startswith("SIG_")}
    rt = _RT_SIGNAL.fullmatch(name)
    if name in known or (rt and int(rt.group(2)) <= signal.SIGRTMAX - signal.SIGRTMIN):
        return None
    return f"StopSignal {name!r} is not a signal name such as SIGTERM or SIGRTMIN+3"


def env_problem(entry: str) -> str | None:
    """Env entries: NAME=VALUE, NAME without '=', NUL, whitespace or control characters."""
    name, sep, _ = entry.partition("=")
    if not sep or not name:
        return f"Env entry {entry!r} is not NAME=VALUE"
    if any(ord(c) <= 32 or ord(c) == 127 for c in name):
        return f"Env name {name!r} holds a space or a control character"
    return _no_control(entry, "Env entry")


def path_problem(path: str, what: str) -> str | None:
    """WorkingDir and Volumes: absolute paths (runc refuses a relative cwd)."""
    return _no_control(path, what) or (
        None if path.startswith("/") else f"{what} {path!r} is not an absolute path"
    )


def labels_problem(labels) -> str | None:
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return "Labels must be an object of strings"
    for key in labels:
        if not key:
            return "a label key is empty"
        if problem := _no_control(key, "label key"):
            return problem
    return None


def _argv(key: str, value) -> list[str]:
    if isinstance(value, str):
        raise ValueError(
            f"{key} must be a list of strings, not a string: "
            f'["/bin/prog", "arg"], or ["/bin/sh", "-c", {json.dumps(value)}] for a shell line'
        )
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    for arg in value:
        if problem := _no_control(arg, f"{key} argument"):
            raise ValueError(problem)
    return value


def _set(key: str, value, check) -> dict:
    """ExposedPorts and Volumes: the spec's object of empty objects (a list of keys is accepted)."""
    if isinstance(value, dict):
        if not all(v == {} for v in value.values()):
            raise ValueError(f"{key} must map each entry to {{}} (an empty object)")
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be an object of {{}} or a list of strings")
    for item in value:
        if problem := check(item):
            raise ValueError(problem)
    return {v: {} for v in value}


def _text(key: str, value, check) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    if problem := check(value):
        raise ValueError(problem)
    return value


def _env(value) -> list[str]:
    if isinstance(value, dict):
        if not all(isinstance(v, str) for v in value.values()):
            raise ValueError("Env must be a list of NAME=VALUE strings or an object of strings")
        value = [f"{k}={v}" for k, v in value.items()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("Env must be a list of NAME=VALUE strings")
    for entry in value:
        if problem := env_problem(entry):
            raise ValueError(problem)
    return value


def _labels(value) -> dict:
    if problem := labels_problem(value):
        raise ValueError(problem)
    return dict(value)


_FIELD_CHECKS = {
    "Env": _env,
    "Entrypoint": lambda v: _argv("Entrypoint", v),
    "Cmd": lambda v: _argv("Cmd", v),
    "WorkingDir": lambda v: _text("WorkingDir", v, lambda p: p and path_problem(p, "WorkingDir")),
    "User": lambda v: _text("User", v, user_problem),
    "StopSignal": lambda v: _text("StopSignal", v, signal_problem),
    "ExposedPorts": lambda v: _set("ExposedPorts", v, port_problem),
    "Volumes": lambda v: _set("Volumes", v, lambda p: path_problem(p, "Volumes entry")),
    "Labels": _labels,
}


def normalise(config: dict | None, where: str = "image config") -> dict:
    """Validate the user-facing config fields (Env and Labels may be objects, ExposedPorts and
    Volumes lists): UsageError `where: FIELD ...`, one line naming the field and the value."""
    out: dict = {}
    for key, value in (config or {}).items():
        if key not in _FIELD_CHECKS:
            raise UsageError(
                f"{where}: unknown image config field {key!r}", hint="known: " + ", ".join(FIELDS)
            )
        try:
            out[key] = _FIELD_CHECKS[key](value)
        except ValueError as err:
            raise UsageError(
                f"{where}: {err}", hint="the image-spec's config properties: see docs/layout.md"
            ) from err
    return out


# Labels that name or date the image they were written for, never its content: a child does not
# inherit them from its parent (it would carry the parent's name, title and build key).
IDENTITY_LABELS = frozenset(
    {
        "org.opencontainers.image.ref.name",
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.version",
        "org.opencontainers.image.created",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.base.name",
        "org.opencontainers.image.base.digest",
        "io.containerd.image.name",
        "org.chrootforge.build.engine-key",
        "org.chrootforge.namespace",
        "org.chrootforge.version",
        "org.label-schema.name",
        "org.label-schema.description",
        "org.label-schema.version",
        "org.label-schema.build-date",
        "org.label-schema.vcs-ref",
    }
)


def merge(base: dict, override: dict, labels: dict | None) -> dict:
    """A child's runtime config: the parent's, overridden field by field; labels merged, except
    the parent's IDENTITY_LABELS."""
    out = dict(base)
    if "Labels" in out:
        inherited = {k: v for k, v in (out["Labels"] or {}).items() if k not in IDENTITY_LABELS}
        if inherited:
            out["Labels"] = inherited
        else:
            del out["Labels"]
    for key, value in override.items():
        if key == "Env":
            env = {e.split("=", 1)[0]: e for e in out.get("Env", [])}
            env.update({e.split("=", 1)[0]: e for e in value})
            out["Env"] = list(env.values())
        elif key == "Labels":
            out["Labels"] = {**out.get("Labels", {}), **value}
        else:
            out[key] = value
    if labels:
        out["Labels"] = {**out.get("Labels", {}), **labels}
    return out


def image_config(runtime: dict, diff_ids: list[str], history: list[dict], epoch: int, platform=None) -> dict:
    """The config document; `platform` (chrootforge.platforms.Platform) gives its architecture,
    os and variant (default: this machine's)."""
    from chrootforge.platforms import host_platform

    return {
        "created": timestamp(epoch),
        **(platform or host_platform()).oci(),
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def new_history(history: list[dict] | None, epoch: int) -> list[dict]:
    """History entries for one new layer: the last one describes it, the rest are empty_layer."""
    if not history:
        return [{"created": timestamp(epoch), "created_by": "chrootforge commit"}]
    out = []
    for i, item in enumerate(history):
        item = dict(item)
        item.setdefault("created", timestamp(epoch))
        if i < len(history) - 1:
            item["empty_layer"] = True
        else:
            item.pop("empty_layer", None)
        out.append(item)
    return out
