"""The image config document: validated user fields, created time, history, diff_ids."""

from __future__ import annotations

import datetime

from chrootforge.errors import UsageError

FIELDS = ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal")


def timestamp(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def merge(base: dict, override: dict, labels: dict | None) -> dict:
    """A child's runtime config: the parent's, overridden field by field; labels merged."""
    out = dict(base)
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
