"""The image config document: validated user fields, created time, history, diff_ids."""

from __future__ import annotations

import datetime
import platform
import re

from chrootforge.errors import UsageError

FIELDS = ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal")
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


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


def _str_list(key: str, value) -> list[str]:
    if isinstance(value, str):
        value = [value] if key != "Cmd" and key != "Entrypoint" else ["/bin/sh", "-c", value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"config {key} must be a list of strings")
    return value


def _set(key: str, value) -> dict:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    if isinstance(value, dict):
        return {str(k): {} for k in value}
    raise UsageError(f"config {key} must be a list of strings or an object")


def normalise(config: dict | None) -> dict:
    """Validate the user-facing config fields (also accepts Env/Labels as objects)."""
    out: dict = {}
    for key, value in (config or {}).items():
        if key not in FIELDS:
            raise UsageError(f"unknown image config field {key!r}", hint="known: " + ", ".join(FIELDS))
        if key == "Env":
            if isinstance(value, dict):
                value = [f"{k}={v}" for k, v in value.items()]
            out[key] = _str_list(key, value)
            for entry in out[key]:
                name, sep, _ = entry.partition("=")
                if not sep or not name:
                    raise UsageError(f"config Env entry {entry!r} is not NAME=VALUE")
        elif key in ("Entrypoint", "Cmd"):
            out[key] = _str_list(key, value)
        elif key in ("WorkingDir", "User", "StopSignal"):
            if not isinstance(value, str):
                raise UsageError(f"config {key} must be a string")
            out[key] = value
        elif key in ("ExposedPorts", "Volumes"):
            out[key] = _set(key, value)
        elif key == "Labels":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise UsageError("config Labels must be an object of strings")
            out[key] = {str(k): v for k, v in value.items()}
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
        "org.chrootforge.build-key",
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


def image_config(runtime: dict, diff_ids: list[str], history: list[dict], epoch: int) -> dict:
    return {
        "created": timestamp(epoch),
        "architecture": host_arch(),
        "os": "linux",
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
