"""`chrootforge import kubler DIR NS`: read, probe, map, write (the effects around translate.py).

Bad input is one line and writes nothing: the namespace is assembled in a temporary folder beside
NS, loaded back with chrootforge's own spec loader, planned (`build --plan`), and only then renamed
into place.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chrootforge import __version__
from chrootforge.build import engine as build
from chrootforge.errors import UsageError
from chrootforge.importers.kubler import hookscript, probe, report, tomlout
from chrootforge.importers.kubler import translate as mapping
from chrootforge.importers.kubler.helpers import NAMES
from chrootforge.importers.kubler.outcome import FileEntry, Folder, NamespaceResult
from chrootforge.spec import checks
from chrootforge.spec.graph import load_project
from chrootforge.spec.model import Image, Namespace

# What kubler itself writes into an image folder (not the user's files).
# (and README.md: documentation, which no hook reads)
GENERATED = (
    "Dockerfile",
    "rootfs.tar",
    "PACKAGES.md",
    "README.md",
    ".kubler-build-test.error",
    ".kubler-healthcheck.error",
)
GENERATED_DIRS = ("log",)


@dataclass(frozen=True)
class Summary:
    target: Path
    images: int
    builders: int
    hooks: int  # images with kubler hooks
    result: NamespaceResult


def import_kubler(source: Path, target: Path, kubler_name: str | None = None, command: str = "") -> Summary:
    shown = str(source)
    source = source.resolve() if source.exists() else source
    _check_source(source, shown)
    target = Path(os.path.abspath(target))
    if target.exists() or target.is_symlink():
        raise UsageError(
            f"{target} exists", hint="import into a new folder; chrootforge never overwrites one"
        )
    problem = checks.name("namespace")(target.name)
    if problem:
        raise UsageError(f"{target}: {problem}", hint="the folder's name is the namespace's name")
    name = kubler_name or source.name
    units = _units(source, shown)
    folders = {unit: _folder(source, unit, shown) for unit in units}
    data = probe.run_probe(source, units, name, NAMES)
    problems, probes = probe.parse(data)
    if problems:
        raise _syntax_error(shown, problems[0])
    for unit in units:
        _check_probed(shown, unit, probes.get(unit))
    result = mapping.map_namespace(name, shown, probes, folders)

    text = report.render(result, command or f"chrootforge import kubler {shown} {target}", __version__)
    _publish(result, text, target)
    hooks = sum(1 for image in result.images.values() if image.hooks)
    return Summary(target, len(result.images), len(result.builders), hooks, result)


def _check_source(source: Path, shown: str) -> None:
    if not source.is_dir():
        raise UsageError(f"{shown}: no such folder", hint="give the folder of a kubler namespace")
    if not (source / "kubler.conf").is_file():
        raise UsageError(
            f"{shown}/kubler.conf: no such file",
            hint="a kubler namespace has kubler.conf at its top, images/ and builder/ below",
        )


def _units(source: Path, shown: str) -> list[str]:
    units = []
    for kind in ("builder", "images"):
        folder = source / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_dir():
                continue
            unit = f"{kind}/{path.name}"
            if not (path / "build.conf").is_file():
                raise UsageError(
                    f"{shown}/{unit}/build.conf: no such file", hint="kubler needs one per image"
                )
            if kind == "images":
                if not (path / "Dockerfile.template").is_file():
                    raise UsageError(
                        f"{shown}/{unit}/Dockerfile.template: no such file", hint="kubler needs one per image"
                    )
                problem = checks.name("image")(path.name)
                if problem or path.name == mapping.BUILDERS_DIR:
                    raise UsageError(
                        f"{shown}/{unit}: {problem or 'this name is where the builders go'}",
                        hint="rename the image folder",
                    )
            units.append(unit)
    if not any(u.startswith("images/") for u in units):
        raise UsageError(
            f"{shown}/images: no images", hint="a kubler namespace has its images in images/NAME/"
        )
    return units


def _folder(source: Path, unit: str, shown: str) -> Folder:
    """The image folder's files, as kubler's build container saw them at /config."""
    root = source / unit
    entries: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in GENERATED_DIRS]
        dirnames.sort()
        for filename in sorted(filenames + [d for d in dirnames if (here / d).is_symlink()]):
            path = here / filename
            rel = str(rel_dir / filename) if rel_dir != Path(".") else filename
            if rel in GENERATED:
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                entries.append(FileEntry(rel, 0o777, b"", os.readlink(path)))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                entries.append(FileEntry(rel, mode, path.read_bytes()))
    template = root / "Dockerfile.template"
    text = template.read_text(errors="replace") if template.is_file() else None
    return Folder(unit, tuple(entries), text)


def _syntax_error(shown: str, problem) -> UsageError:
    message = problem.message.strip().splitlines()[0] if problem.message.strip() else "syntax error"
    # bash says "/kubler/FILE: line N: what"; the file:line is ours to say
    where = f"{shown}/{problem.file}"
    head, sep, rest = message.partition(": line ")
    if sep:
        line, _, what = rest.partition(": ")
        if line.isdigit():
            return UsageError(f"{where}:{line}: {what}", hint="kubler's bash would refuse it too (bash -n)")
    return UsageError(f"{where}: {message}", hint="kubler's bash would refuse it too (bash -n)")


def _check_probed(shown: str, unit: str, unit_probe) -> None:
    if unit_probe is None or set(unit_probe.vars_end) != {"A", "B"}:
        raise UsageError(f"{shown}/{unit}: the probe did not run (bash failed to start in the sandbox?)")
    for run, (how, status, line) in unit_probe.vars_end.items():
        if how != "done":
            where = f"{shown}/{line}" if line else f"{shown}/{unit}/build.sh"  # FILE:LINE when known
            raise UsageError(
                f"{where}: sourcing build.conf and build.sh did not finish ({how} {status})",
                hint="build.sh is sourced before every hook; it must not exit. "
                + unit_probe.stderr.get(run, "").strip()[:200],
            )


# -- writing ------------------------------------------------------------------------------------
def _publish(result: NamespaceResult, import_md: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.import-", dir=target.parent))
    try:
        work = tmp / target.name
        work.mkdir()
        _write_tree(result, import_md, work)
        _validate(work)
        _sync_tree(work)
        if target.exists() or target.is_symlink():
            raise UsageError(
                f"{target} exists", hint="import into a new folder; chrootforge never overwrites one"
            )
        try:
            os.rename(work, target)
        except OSError as err:  # made meanwhile (rename never replaces a non-empty folder)
            raise UsageError(f"{target} exists ({err.strerror})", hint="import into a new folder") from err
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_tree(result: NamespaceResult, import_md: str, work: Path) -> None:
    header = [
        f"Written by `chrootforge import kubler` from the kubler namespace {result.kubler_name}",
        f"({result.source}). IMPORT.md says where each value comes from.",
    ]
    (work / "chrootforge.toml").write_text(tomlout.render(result.spec, header, Namespace))
    (work / "IMPORT.md").write_text(import_md)
    for name, image in result.images.items():
        folder = work / name
        folder.mkdir()
        head = [
            f"The kubler image {result.kubler_name}/{name} ({image.unit}), written by `chrootforge import",
            "kubler`. ../IMPORT.md says where each value comes from.",
        ]
        (folder / "image.toml").write_text(tomlout.render(image.spec, head, Image))
        if image.script is not None:
            path = folder / mapping.SCRIPT
            path.write_text(hookscript.render(image.script, result.source))
            path.chmod(0o755)
    for name, builder in result.builders.items():
        if builder.script is None:
            continue
        folder = work / mapping.BUILDERS_DIR / name
        folder.mkdir(parents=True)
        path = folder / mapping.SCRIPT
        path.write_text(hookscript.render(builder.script, result.source))
        path.chmod(0o755)


def _validate(work: Path) -> None:
    """Load the namespace and every image with chrootforge's spec loader, and plan them all."""
    try:
        load_project(work)
        build.plan([str(work)])
    except UsageError as err:
        raise UsageError(
            f"internal error: the imported namespace does not load: {err}",
            hint="please report it, with the kubler namespace; nothing was written",
        ) from err


def _sync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
