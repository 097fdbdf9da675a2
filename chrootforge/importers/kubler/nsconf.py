"""chrootforge.toml from kubler.conf and the default builder (pure); docs/import.md has the table."""

from __future__ import annotations

from collections.abc import Callable

from chrootforge.importers.kubler.outcome import SCRIPT, Entry
from chrootforge.importers.kubler.recorded import Var
from chrootforge.sources.mirrorlayout import MICROARCH
from chrootforge.spec import checks

# kubler's build containers' portage defaults (engine/docker/bob-core/etc/portage/make.conf and the
# FEATURES of kubler's kubler.conf): every kubler image was built with them.
KUBLER_MAKE_CONF = {
    "USE": "bindist threads -X -gnome -gtk -kde -qt4 -cups -alsa -ipv6 -pppd -gdbm -gpm -pam -ncurses",
    "ACCEPT_LICENSE": "*",
    "LINGUAS": "en",
    "FEATURES": "-ipc-sandbox -network-sandbox -pid-sandbox",
}
OMITTED_NS = {
    "BUILD_ENGINE": "chrootforge builds without docker or podman",
    "BUILDER_DOCKER_ARGS_GLOBAL": "there is no docker run: chrootforge's sandbox builds",
}


def namespace_spec(
    ns: str,
    conf: dict[str, Var],
    root: tuple[str, dict[str, Var]] | None,
    repos: list[str],
    default: str | None,
    default_var: Var | None,
    entry: Callable[[str, Var, str], Entry],
    any_unit: str,
) -> tuple[dict, list[Entry]]:
    """`conf`: the variables kubler.conf gives (any unit's build.conf dump); `root`: the unit and
    variables of the builder whose stage3 the namespace takes; `entry(unit, var, outcome)`."""
    spec: dict = {}
    entries: list[Entry] = []
    stage3: dict = {}
    if root is not None:
        root_unit, rconf = root
        base = rconf.get("STAGE3_BASE")
        if base is not None and base.text:
            arch_var = rconf.get("ARCH")
            arch, variant = _stage3_parts(base.text, arch_var.text if arch_var else "")
            if arch and variant:
                stage3["arch"] = arch
                stage3["variant"] = variant
            else:
                entries.append(
                    entry(root_unit, base, "omitted: not a stage3-ARCH-VARIANT name chrootforge can fetch")
                )
        date = rconf.get("STAGE3_DATE")
        if date is not None and date.text:
            if _is_stamp(date.text):
                stage3["date"] = date.text
            else:
                entries.append(
                    entry(
                        root_unit,
                        date,
                        "omitted: chrootforge pins a stage3 by its full release stamp (YYYYMMDDTHHMMSSZ)",
                    )
                )
    mirror = conf.get("MIRROR")
    if mirror is not None and mirror.site is not None:
        stage3["mirror"] = mirror.text.split()
        entries.append(entry(any_unit, mirror, "[stage3] mirror"))
    if stage3:
        spec["stage3"] = stage3
    tree: dict = {"snapshot": "latest"}
    date_var = conf.get("PORTAGE_DATE")
    if date_var is not None and date_var.site is not None:
        if len(date_var.text) == 8 and date_var.text.isdigit():
            tree["snapshot"] = date_var.text
            entries.append(entry(any_unit, date_var, "[tree] snapshot"))
        else:
            entries.append(entry(any_unit, date_var, "[tree] snapshot = latest (not a YYYYMMDD date)"))
    spec["tree"] = tree
    if repos:
        spec["repos"] = {repo_id: f"repos/{repo_id}" for repo_id in sorted(repos)}
    make_conf = dict(KUBLER_MAKE_CONF)
    if root is not None:
        rconf = root[1]
        for name in ("BOB_CHOST", "BOB_CFLAGS", "BOB_CXXFLAGS"):
            if name in rconf and rconf[name].text:
                make_conf[name[4:]] = rconf[name].text
    for name, var in sorted(conf.items()):
        if var.site is None or var.site[0] != "kubler.conf":
            continue
        if name == "BOB_MAKEOPTS":
            make_conf["MAKEOPTS"] = var.text
            entries.append(entry(any_unit, var, "[make_conf] MAKEOPTS"))
        elif name == "BOB_FEATURES":
            make_conf["FEATURES"] = var.text
            entries.append(entry(any_unit, var, "[make_conf] FEATURES"))
        elif name == "AUTHOR":
            entries.append(entry(any_unit, var, "label maintainer (Dockerfile.template's ${MAINTAINER})"))
        elif name == "DEFAULT_BUILDER":
            entries.append(
                entry(
                    any_unit,
                    var,
                    f"the stage3 and make.conf of builder {default}"
                    if default
                    else "a builder outside the namespace: chrootforge's default stage3",
                )
            )
        elif name == "IMAGE_TAG":
            if not checks.tag(var.text):
                spec.setdefault("output", {})["tags"] = [var.text, "latest"]
                entries.append(entry(any_unit, var, "[output] tags (with latest)"))
            else:
                entries.append(entry(any_unit, var, f"omitted: {checks.tag(var.text)}"))
        elif name in ("MIRROR", "PORTAGE_DATE"):
            continue
        elif name in OMITTED_NS:
            entries.append(entry(any_unit, var, f"omitted: {OMITTED_NS[name]}"))
        elif name.startswith("BOB_"):
            entries.append(entry(any_unit, var, f"exported to every image's hooks ({SCRIPT})"))
        else:
            entries.append(entry(any_unit, var, "a variable for the images' build.conf files"))
    if default_var is not None and default is None and default_var.site is None and root is not None:
        entries.append(
            Entry(
                None,
                f"DEFAULT_BUILDER={default_var.text}",
                "kubler's default builder is not in the namespace",
            )
        )
    spec["make_conf"] = make_conf
    entries.append(
        Entry(
            None,
            "kubler's build container",
            "[make_conf] USE, ACCEPT_LICENSE, LINGUAS and FEATURES as kubler's bob-core make.conf "
            "and kubler.conf set them",
        )
    )
    prefix = f"localhost/{ns}"
    output: dict = spec.get("output", {})
    if not checks.prefix(prefix):
        output["prefix"] = prefix
    spec["output"] = output
    spec["build"] = {"network": "host"}
    entries.append(
        Entry(
            None,
            "kubler's build container",
            "[build] network = host: kubler's build containers had the network (emerge and "
            "download_file fetch)",
        )
    )
    return spec, entries


def _is_stamp(text: str) -> bool:
    return len(text) == 16 and text[8] == "T" and text.endswith("Z") and (text[:8] + text[9:15]).isdigit()


def _stage3_parts(base: str, arch: str) -> tuple[str, str]:
    """stage3-amd64-nomultilib-openrc -> ("amd64", "nomultilib-openrc"), with ARCH when set."""
    rest = base.removeprefix("stage3-")
    if rest == base:
        return "", ""
    arch = arch or "amd64"
    micro = MICROARCH.get(arch, arch)
    for prefix in (f"{micro}-", f"{arch}-"):
        if rest.startswith(prefix):
            return arch, rest[len(prefix) :]
    return arch, rest
