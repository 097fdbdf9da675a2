"""Dockerfile.template as `[config]` keys and finish_rootfs steps (pure); docs/import.md has the table."""

from __future__ import annotations

from pathlib import PurePosixPath

from chrootforge.errors import UsageError
from chrootforge.importers.kubler import dockerfile
from chrootforge.importers.kubler.outcome import SCRIPT, Entry, Site, Step, where
from chrootforge.spec import checks

HEALTHCHECK_LABEL = "kubler.healthcheck"
CONFIG_ORDER = ("entrypoint", "cmd", "env", "user", "workdir", "ports", "volumes", "labels", "stop_signal")


def map_template(
    source: str,
    unit: str,
    text: str,
    values: dict[str, str],
    parent: str,
    env: dict[str, str],
    inherited_entrypoint: list[str] | None,
    entries: list[Entry],
) -> tuple[tuple[Step, ...], dict]:
    """The steps and config of an image's template. `values`: kubler's substitutions; `env` and
    `inherited_entrypoint`: what the parents' config gives (Docker substitutes from the env)."""

    def error(site: Site | None, message: str, hint: str | None = None) -> UsageError:
        return UsageError(f"{where(source, site)}: {message}", hint=hint)

    rel = f"{unit}/Dockerfile.template"
    rendered = dockerfile.render(text, values)
    instructions = dockerfile.parse(rendered, f"{source}/{rel}")
    env = dict(env)
    config: dict = {}
    own_env: dict[str, str] = {}
    labels: dict[str, str] = {}
    ports: list[str] = []
    volumes: list[str] = []
    steps: list[Step] = []
    user = workdir = ""
    froms = 0
    cmd_site: tuple[Site | None, str] = (None, "CMD")
    for ins in instructions:
        site = (rel, ins.line)

        def add(outcome: str, ins=ins, site=site) -> None:
            entries.append(Entry(site, ins.source, outcome))

        try:
            kw, args = ins.keyword, ins.args
            if kw == "FROM":
                froms += 1
                words = dockerfile.words(args, {})
                expected = values["IMAGE_PARENT"]
                if froms > 1 or len(words) != 1:
                    raise error(site, "a multi-stage Dockerfile.template is not supported")
                if words[0] != expected:
                    raise error(
                        site,
                        f"FROM {words[0]} differs from IMAGE_PARENT {expected}",
                        hint="use FROM ${IMAGE_PARENT}",
                    )
                add(f'the parent ("{parent}"), from build.conf')
            elif kw in ("ENV", "LABEL"):
                items = dockerfile.pairs(args, env)
                if kw == "ENV":
                    for key, value in items:
                        own_env[key] = value
                    env.update(dict(items))
                    add("[config] env")
                else:
                    for key, value in items:
                        if key == "maintainer" and not value:
                            continue
                        labels[key] = value
                    add("[config] labels")
            elif kw == "EXPOSE":
                ports += [p for p in dockerfile.ports(dockerfile.words(args, env)) if p not in ports]
                add("[config] ports")
            elif kw == "VOLUME":
                paths = dockerfile.exec_form(args) or dockerfile.words(args, env)
                volumes += [v for v in paths if v not in volumes]
                add("[config] volumes")
            elif kw == "USER":
                user = " ".join(dockerfile.words(args, env))
                config["user"] = user
                add("[config] user")
            elif kw == "WORKDIR":
                path = " ".join(dockerfile.words(args, env))
                workdir = str(PurePosixPath(workdir or "/") / path)
                config["workdir"] = workdir
                steps.append(Step(site, "workdir", dest=workdir))
                add(f"[config] workdir; the finish_rootfs hook ({SCRIPT}) creates it, as docker build did")
            elif kw in ("CMD", "ENTRYPOINT"):
                if kw == "CMD":
                    cmd_site = (site, ins.source)
                form = dockerfile.exec_form(args)
                config[kw.lower()] = form if form is not None else ["/bin/sh", "-c", args]
                add(f"[config] {kw.lower()}")
            elif kw == "STOPSIGNAL":
                sig = " ".join(dockerfile.words(args, env))
                if checks.signal(sig):
                    labels["org.chrootforge.stopsignal"] = sig
                    add(f"label org.chrootforge.stopsignal: {checks.signal(sig)}")
                else:
                    config["stop_signal"] = sig
                    add("[config] stop_signal")
            elif kw == "HEALTHCHECK":
                labels[HEALTHCHECK_LABEL] = args
                add(f"label {HEALTHCHECK_LABEL}: the OCI image config has no health check (docs/import.md)")
            elif kw == "RUN":
                form = dockerfile.exec_form(args)
                steps.append(
                    Step(
                        site,
                        "run",
                        shell="" if form is not None else args,
                        argv=tuple(form or ()),
                        env=tuple(env.items()),
                        user=user,
                        workdir=workdir,
                    )
                )
                add(f"kept in the finish_rootfs hook ({SCRIPT}): runs chrooted in the image root")
            elif kw in ("COPY", "ADD"):
                opts, rest = dockerfile.flags(args)
                paths = dockerfile.exec_form(rest) or dockerfile.words(rest, env)
                if "from" in opts:
                    raise error(site, f"{kw} --from (multi-stage) is not supported")
                if len(paths) < 2:
                    raise error(site, f"{kw} needs a source and a destination")
                srcs, dest = paths[:-1], paths[-1]
                if kw == "ADD" and srcs == ["rootfs.tar"] and dest in ("/", "/."):
                    add("the image's root: what emerge and the hooks put in /emerge-root")
                    continue
                steps.append(Step(site, kw.lower(), argv=tuple(srcs), dest=dest, chown=opts.get("chown", "")))
                add(f"kept in the finish_rootfs hook ({SCRIPT}): copies from the image folder")
            else:
                add(f"omitted: chrootforge has no {kw} (docs/import.md)")
        except ValueError as err:
            raise error(site, f"{ins.keyword}: {err}") from err
    if froms == 0:
        raise error((rel, 1), "Dockerfile.template has no FROM", hint="start it with FROM ${IMAGE_PARENT}")
    if own_env:
        config["env"] = own_env
    if labels:
        config["labels"] = labels
    if ports:
        config["ports"] = ports
    if volumes:
        config["volumes"] = volumes
    if "cmd" in config and "entrypoint" not in config and inherited_entrypoint:
        config["entrypoint"] = list(inherited_entrypoint)
        cmd_at, cmd_source = cmd_site
        entries.append(
            Entry(
                cmd_at, cmd_source, "[config] entrypoint repeats the parent's: docker keeps it with a new CMD"
            )
        )
    return tuple(steps), {k: config[k] for k in CONFIG_ORDER if k in config}
