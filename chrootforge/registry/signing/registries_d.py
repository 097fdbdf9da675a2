"""registries.d(5): where simple signatures live (lookaside) and whether sigstore attachments are
used, per registry, namespace or repository, as containers/image reads it.

- The directory: --registries.d DIR, else `$HOME/.config/containers/registries.d` when it exists,
  else `/etc/containers/registries.d`. Every `*.yaml` file in it is read and merged; a scope (or
  `default-docker`) defined in two files is an error, as for podman.
- For an image, only the most specific `docker:` scope that says something applies (HOST/REPO:TAG,
  HOST/REPO, its parent namespaces, HOST[:PORT], *.DOMAIN), then `default-docker`.
- `lookaside` is read (pull) and written (push) unless `lookaside-staging` is given, which is then
  written instead. (`sigstore` and `sigstore-staging` are their old names.) Without either, the
  built-in default: file:///var/lib/containers/sigstore for root, else
  file://$HOME/.local/share/containers/sigstore.
- A signature of HOST/REPO with manifest digest sha256:HEX is BASE/REPO@sha256=HEX/signature-N
  (N = 1, 2, ...).
- `use-sigstore-attachments: true` makes pulls read the sha256-HEX.sig tag (podman and skopeo also
  need it to read and write them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chrootforge import log
from chrootforge.errors import UsageError
from chrootforge.registry import dockerref
from chrootforge.registry.signing.yamlsubset import YamlError, loads

SYSTEM_DIR = Path("/etc/containers/registries.d")
_SECTION_KEYS = {"lookaside", "lookaside-staging", "sigstore", "sigstore-staging", "use-sigstore-attachments"}
MAX_FILE = 1 << 20


@dataclass(frozen=True)
class Section:
    lookaside: str | None = None
    lookaside_staging: str | None = None
    attachments: bool | None = None
    where: str = ""

    def url(self, write: bool) -> str | None:
        return (self.lookaside_staging if write else None) or self.lookaside


@dataclass(frozen=True)
class Config:
    default: Section | None
    docker: dict[str, Section]
    directory: str

    def _sections(self, ref: dockerref.DockerRef):
        for scope in dockerref.scopes(ref):
            if scope in self.docker:
                yield self.docker[scope]
        if self.default is not None:
            yield self.default

    def lookaside(self, ref: dockerref.DockerRef, write: bool) -> str:
        """The lookaside base URL for `ref` (with its repository path appended)."""
        base = next((s.url(write) for s in self._sections(ref) if s.url(write)), None)
        base = (base or builtin_lookaside()).rstrip("/")
        return f"{base}/{ref.path}"

    def use_attachments(self, ref: dockerref.DockerRef) -> bool:
        return next((s.attachments for s in self._sections(ref) if s.attachments is not None), False)


def builtin_lookaside() -> str:
    if os.geteuid() == 0:
        return "file:///var/lib/containers/sigstore"
    return f"file://{Path.home()}/.local/share/containers/sigstore"


def default_dir() -> Path:
    user = Path.home() / ".config" / "containers" / "registries.d"
    return user if user.exists() else SYSTEM_DIR


def signature_url(base: str, digest: str, index: int) -> str:
    """The N-th (0-based index) signature of manifest `digest` under a lookaside base."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{base}@{algorithm}={hexdigest}/signature-{index + 1}"


def _bool(value, where: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise UsageError(f"{where}: use-sigstore-attachments must be true or false, not {str(value)[:40]!r}")


def _section(value, where: str) -> Section:
    if value is None:
        return Section(where=where)
    if not isinstance(value, dict):
        raise UsageError(f"{where}: a configuration section must be a mapping")
    for key in sorted(set(value) - _SECTION_KEYS):
        log.notice(f"{where}: ignoring the unknown key {key!r} (known: {', '.join(sorted(_SECTION_KEYS))})")
    for key in _SECTION_KEYS - {"use-sigstore-attachments"}:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise UsageError(f"{where}: {key} must be a URL")
    attachments = value.get("use-sigstore-attachments")
    return Section(
        lookaside=value.get("lookaside") or value.get("sigstore"),
        lookaside_staging=value.get("lookaside-staging") or value.get("sigstore-staging"),
        attachments=None if attachments is None else _bool(attachments, where),
        where=where,
    )


def load(directory: str | os.PathLike | None = None) -> Config:
    """The merged configuration of a registries.d directory (default: default_dir())."""
    from chrootforge.fsutil import read_regular

    path = Path(directory) if directory is not None else default_dir()
    if directory is not None and not path.is_dir():
        raise UsageError(f"--registries.d {path} is not a directory")
    default: Section | None = None
    docker: dict[str, Section] = {}
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".yaml"))
    except FileNotFoundError:
        return Config(None, {}, str(path))
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    for name in names:
        file = path / name
        try:
            doc = loads(read_regular(file, MAX_FILE).decode("utf-8"), str(file))
        except FileNotFoundError:
            continue  # removed meanwhile, as podman tolerates
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read {file}: {getattr(err, 'strerror', None) or err}") from err
        except YamlError as err:
            raise UsageError(str(err), hint="registries.d(5) files are YAML mappings") from err
        if "default-docker" in doc:
            if default is not None:
                raise UsageError(f"{file}: default-docker is defined both in {default.where} and here")
            default = _section(doc["default-docker"], f"{file}: default-docker")
        scopes = doc.get("docker") or {}
        if not isinstance(scopes, dict):
            raise UsageError(f"{file}: docker must be a mapping of scopes")
        for scope, value in scopes.items():
            if scope in docker:
                raise UsageError(
                    f"{file}: docker scope {scope!r} is defined both in {docker[scope].where} and here"
                )
            docker[scope] = _section(value, f"{file}: docker {scope}")
    return Config(default, docker, str(path))
