"""The OCI image config (the `config` object and labels) for an image (pure)."""

from __future__ import annotations

from chrootforge.gentoo.s6 import SVSCAN_CMD
from chrootforge.spec.model import Image

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def oci_config(image: Image, chain: list[Image], has_services: bool) -> dict:
    """`chain` is the image's ancestors, nearest first: unset fields inherit from them."""

    def inherited(attr):
        for img in [image, *chain]:
            value = getattr(img.config, attr)
            if value not in (None, ()):
                return value
        return None

    env = {"PATH": DEFAULT_PATH}
    for img in reversed([image, *chain]):
        env.update(dict(img.config.env))
    config: dict = {"Env": [f"{k}={v}" for k, v in env.items()]}
    # The nearest image (itself first) that sets a command or declares services decides: services
    # make s6-svscan PID 1 unless that image also sets its own entrypoint/cmd.
    entrypoint = cmd = None
    for img in [image, *chain]:
        if img.config.entrypoint is not None or img.config.cmd is not None:
            entrypoint, cmd = img.config.entrypoint, img.config.cmd
            break
        if img.services:
            cmd = SVSCAN_CMD
            break
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        config["Cmd"] = list(cmd)
    for attr, key in (("user", "User"), ("workdir", "WorkingDir"), ("stop_signal", "StopSignal")):
        value = inherited(attr)
        if value:
            config[key] = value
    if has_services and "StopSignal" not in config:
        config["StopSignal"] = "SIGTERM"
    ports = [p for img in [image, *chain] for p in img.config.ports]
    if ports:
        config["ExposedPorts"] = {(p if "/" in p else f"{p}/tcp"): {} for p in sorted(set(ports))}
    volumes = [v for img in [image, *chain] for v in img.config.volumes]
    if volumes:
        config["Volumes"] = {v: {} for v in sorted(set(volumes))}
    labels = {}
    for img in reversed([image, *chain]):
        labels.update(dict(img.config.labels))
    if labels:
        config["Labels"] = labels
    return config
