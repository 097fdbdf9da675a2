"""BuildOptions: what `chrootforge build` is asked to do besides its targets, in one shape.

The same value comes from the command line (from_args), is what build.build() and the VM build
take, gives back the flags that mean it (to_argv: the guest's command line) and crosses JSON
(to_json/from_json). What only the host's terminal or network can do (--shell, --push, ...) is
not here: the guest has neither (build.cli passes those separately).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from chrootforge.errors import UsageError


@dataclass(frozen=True)
class BuildOptions:
    force: bool = False  # rebuild the named images even if up to date
    force_all: bool = False  # ... and their ancestors
    no_deps: bool = False  # do not build the parents (they must be built)
    layout: str | None = None  # overrides [output] layout
    network: str | None = None  # overrides [build] network
    single_id: bool = False  # no subuid range: portage runs without userpriv
    stage3: str | None = None  # a local stage3 instead of [stage3]
    jobs: int = 1  # images built at the same time

    @classmethod
    def from_args(cls, args) -> BuildOptions:
        """From `chrootforge build`'s parsed arguments (build.cli.register declares the flags)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def to_argv(self) -> list[str]:
        """The `chrootforge build` flags that give these options back (only those not default)."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            flag = "--" + f.name.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
        return argv

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc, where: str = "build options") -> BuildOptions:
        if not isinstance(doc, dict):
            raise UsageError(f"{where}: not an object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(doc) - set(known))
        if unknown:
            raise UsageError(f"{where}: unknown option {unknown[0]!r}")
        for name, value in doc.items():
            default = known[name].default
            ok = (
                isinstance(value, type(default))
                if default is not None
                else value is None or isinstance(value, str)
            )
            if isinstance(default, int) and not isinstance(default, bool):
                ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok:
                raise UsageError(f"{where}: {name} = {value!r} is not a valid value")
        return cls(**doc)
