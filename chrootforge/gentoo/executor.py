"""Build one image: the thin executor of an ImagePlan (sandbox runs, record, strip, commit).

Users and groups: acct-user/acct-group ebuilds (and baselayout) write their entries into
${ROOT}/etc/passwd and ${ROOT}/etc/group themselves, as Gentoo's current eclasses do; the image root
is seeded with the parent's tree, so the child appends to the parent's databases. The finish step
checks that a configured `user` exists there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError, shown
from chrootforge.gentoo import (
    emerge,
    image_io,
    ldcache,
    packagelogs,
    provided,
    records,
    repro,
    runtimelibs,
    s6,
    singleid,
    slim,
    uninstall,
)
from chrootforge.gentoo.binhost_fetch import prepare
from chrootforge.gentoo.mountview import sandbox_config
from chrootforge.gentoo.plan import ImagePlan
from chrootforge.gentoo.status import read_status
from chrootforge.sandbox import owned_dir, remove_tree, run_sandboxed
from chrootforge.sources.stage_cache import fresh_builder
from chrootforge.spec.model import PHASES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.gentoo.binhost_fetch import Mirror
    from chrootforge.sandbox.idmap import IdMap

CF_MOUNT = emerge.CF_MOUNT
AR_PROBE = "ar-not-deterministic"  # written by repro.deterministic_ar_probe in the status dir
CHECK_BINARIES = "check-binaries.sh"  # the stock check, copied into the build's hooks dir
EMERGE_FAILED = "failed-emerge"  # in the status dir: a step's emerge failed


@dataclass(frozen=True)
class ShellRequest:
    """`build --shell` (now) / `--shell-on-failure` (on_failure), and `--keep`."""

    now: bool = False
    on_failure: bool = False
    keep: bool = False


@dataclass
class StepTimer:
    steps: list[tuple[str, float]] = field(default_factory=list)

    def run(self, name: str, func, *args, **kwargs):
        start = time.monotonic()
        try:
            return func(*args, **kwargs)
        finally:
            elapsed = time.monotonic() - start
            self.steps.append((name, elapsed))
            log.info(f"    {name:<18} {elapsed:6.2f}s")


@dataclass
class BuildContext:
    """What every image build of one run shares."""

    namespace: str
    layout: Path
    workdir: Path  # <layout>.build/work
    logdir: Path  # <layout>.build/logs
    pristine: Path
    idmap: IdMap
    tree: Path
    repos: dict[str, Path]
    distfiles: Path
    binpkgs: Path
    network: str
    compression: str
    epoch: int  # the build's one timestamp: SOURCE_DATE_EPOCH of every step (gentoo/repro.py)
    platform: object = None  # the images' (chrootforge.platforms.Platform): a foreign one is emulated


class ImageBuilder:
    def __init__(
        self, ctx: BuildContext, plan: ImagePlan, parent_ref: str | None, binpkgs: Path | None = None
    ):
        self.ctx, self.plan, self.parent_ref = ctx, plan, parent_ref
        self.binpkgs = binpkgs or ctx.binpkgs
        self.work = ctx.workdir / plan.name
        self.logs = ctx.logdir / plan.name
        self.rootfs = self.work / "rootfs"
        self.cf = self.work / "cf"
        self.builder = None
        self.timer = StepTimer()
        self.resolved_provided: tuple[str, ...] = ()  # `provided` entries versioned in the builder
        self.builder_files: list[runtimelibs.BuilderFile] = []  # what runtime_libs copied
        self.binhost: Mirror | None = None  # its mirror, when the plan has a binhost
        self.binhost_view = self.work / "binhost"  # this build's binrepo (gentoo/binhost.py)
        self.single_id = bool(getattr(ctx.idmap, "single_id", False))
        self.shim_ready = False  # single-id: the owner shim is built (gentoo/singleid.py)
        self.package_logs_seen: dict[str, int] = {}  # name -> size kept (packagelogs.py)
        self.parent_symlinks: dict = {}  # single-id: owners of the parent's symlinks (oci/mapped_io.py)

    # -- the whole build ------------------------------------------------------------------------
    def build(
        self, commit_request: image_io.CommitRequest, shell: ShellRequest | None = None
    ) -> tuple[str, list[records.InstalledPackage]] | None:
        """Returns (manifest digest, the records this image's own layer installed).

        shell: open an interactive shell in the image's build sandbox, instead of building
        (shell.now; returns None) or when emerge or a hook fails (shell.on_failure; the failure
        stands). Leaving the shell discards the work dir, unless shell.keep.
        """
        self._fresh_work()
        keep = False
        try:
            t = self.timer
            t.run("prepare", self._prepare)
            t.run("configure_builder", self._sandbox, "configure_builder", self._configure_script(), {})
            self.shim_ready = self.single_id
            self._warn_nondeterministic_ar()
            t.run(
                "builder_deps",
                self._sandbox,
                "builder_deps",
                self._builder_deps_script(),
                emerge.emerge_env("/"),
                log="emerge",
            )
            self.resolved_provided = provided.read_resolved(self.cf / "status")
            if shell is not None and shell.now:
                keep = shell.keep
                self.interactive_shell("")
                return None
            try:
                t.run(
                    "configure_rootfs",
                    self._sandbox,
                    "configure_rootfs",
                    self._hooks_script("configure_rootfs"),
                    emerge.emerge_env(),
                )
                if self.plan.emerge_argv:
                    argv = list(self.plan.emerge_argv)
                    if self.binhost is not None:
                        argv = t.run("binhost", self._binhost, self.binhost, argv)
                    t.run("emerge", self._emerge, argv)
                t.run(
                    "post_emerge",
                    self._sandbox,
                    "post_emerge",
                    self._post_emerge_script(),
                    emerge.emerge_env(),
                )
                self._authors_steps(t)
                own = t.run("record", records.read_vdb, self.rootfs, self.plan.name)
                t.run(
                    "finish_rootfs",
                    self._sandbox,
                    "finish_rootfs",
                    self._finish_script(),
                    emerge.emerge_env(),
                )
            except CfError as err:
                if shell is not None and shell.on_failure:
                    keep = shell.keep
                    self.interactive_shell(str(err).splitlines()[0])
                raise
            slim.warn_unmatched(self.cf / "status", self.plan.name)
            self._warn_unrecorded()
            digest = t.run("commit", self._commit, commit_request)
            return digest, own
        finally:
            if keep:
                log.notice(
                    f"kept the work dir of {self.plan.name}: {self.work} (the next build of the "
                    "image replaces it, and `chrootforge cache prune --kind work --older-than 0` removes it)"
                )
            else:
                self._discard_work()

    def _fresh_work(self) -> None:
        if self.work.exists():
            remove_tree(self.work, self.ctx.idmap)
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        self.work.mkdir(parents=True)

    def _discard_work(self) -> None:
        try:
            remove_tree(self.work, self.ctx.idmap)
        except CfError as err:
            log.warn(f"could not clean {self.work}: {err}")

    def interactive_shell(self, failure: str) -> int:
        """A login shell in the build sandbox as the steps see it: the generated /etc/portage, the
        read-only tree, distfiles and binpkgs, /var/tmp/portage on tmpfs, /emerge-root with the
        parent's tree (its packages provided)."""
        emerge_line = emerge.command_line(self.plan.emerge_argv or ("emerge", "(no packages)"))
        where = f"image {self.ctx.namespace}/{self.plan.name} (parent: {self.plan.parent or 'scratch'})"
        banner = [f"chrootforge build shell: {where}"]
        if failure:
            banner.append(f"the build failed: {failure}")
        banner += [f"emerge line: {emerge_line}", f"logs: {self.logs}", "leave with `exit`"]
        sys.stderr.write("".join(f"chrootforge: {line}\n" for line in banner))
        sys.stderr.flush()
        env = {
            **self._env(emerge.emerge_env()),
            "PS1": f"(cf {self.plan.name}) \\w \\$ ",
            "debian_chroot": f"cf {self.plan.name}",
            "TERM": os.environ.get("TERM", "dumb"),
        }
        shell_path = "/bin/bash" if (self.ctx.pristine / "bin" / "bash").exists() else "/bin/sh"
        config = self._sandbox_config([shell_path, "-l"], env)
        config.interactive = True
        config.cwd = "/root"
        return run_sandboxed(config)

    # -- steps ----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        owned_dir(self.rootfs, self.ctx.idmap)
        portage_dir = self.cf / "portage"
        for rel, content in self.plan.portage.files.items():
            path = portage_dir / "files" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        make_conf = self.plan.portage.make_conf_append
        if self.single_id:
            make_conf += singleid.MAKE_CONF
            owned_dir(self.cf / singleid.SHIM_DIR, self.ctx.idmap)
            shutil.copyfile(singleid.SOURCE, self.cf / singleid.SHIM_DIR / "ownershim.c")
        (portage_dir / "make.conf.append").write_text(make_conf)
        (portage_dir / "package.provided").write_text(self.plan.portage.provided_append)
        hooks_dir = self.cf / "hooks"
        hooks_dir.mkdir(parents=True)
        for phase in PHASES:
            for i, (name, path) in enumerate(self.plan.hooks[phase]):
                shutil.copyfile(path, hooks_dir / f"{phase}-{i:02d}-{Path(name).name}")
        if self.plan.check_binaries:
            shutil.copyfile(self.plan.check_binaries, hooks_dir / CHECK_BINARIES)
        # Written from inside by the sandbox's root, which is not the owner of /cf (a subordinate
        # id, for a root build too): open to every id, as /tmp is.
        for name in ("status", emerge.PACKAGE_LOGS):
            (self.cf / name).mkdir()
            os.chmod(self.cf / name, 0o777)
        if self.plan.binhost and self.plan.emerge_argv:
            from chrootforge.gentoo.binhost_fetch import Mirror

            self.binhost = Mirror(self.plan.binhost, self.binpkgs.name)
            self.binhost_view.mkdir(mode=0o755)
        if self.parent_ref:
            from chrootforge.oci.mapped_io import unpack_as

            self.parent_symlinks = unpack_as(self.ctx.idmap, self.ctx.layout, self.parent_ref, self.rootfs)
        self.builder = fresh_builder(self.ctx.pristine, self.work / "builder", self.ctx.idmap)

    def _commit(self, request: image_io.CommitRequest) -> str:
        return image_io.commit(
            self.ctx.idmap,
            self.rootfs,
            self.ctx.layout,
            request,
            parent=self.parent_ref,
            compression=self.ctx.compression,
            symlinks=self.parent_symlinks,
            platform=self.ctx.platform,
        )

    def _warn_unrecorded(self) -> None:
        """Single-id: say loudly which owners the shim could not record (the image differs there
        from a build with the full id range)."""
        lost = singleid.unrecorded(self.cf / "status") if self.single_id else []
        if lost:
            log.warn(
                f"{self.plan.name}: single-id mode could not record {len(lost)} owners; they are 0:0 "
                "in the image, unlike a build with a full id map: "
                + "; ".join(lost[:5])
                + (" ..." if len(lost) > 5 else "")
            )

    def _hook_lines(self, phase: str) -> list[str]:
        lines = []
        for i, (name, _path) in enumerate(self.plan.hooks[phase]):
            script = f"{CF_MOUNT}/hooks/{phase}-{i:02d}-{Path(name).name}"
            lines.append(f'echo ">>> hook {phase}: {name}"')
            lines.append(
                f"CF_PHASE={phase} sh {shlex.quote(script)} || "
                f"{{ rc=$?; echo {shlex.quote(name)} $rc > {CF_MOUNT}/status/failed-hook; exit $rc; }}"
            )
        return lines

    def _hooks_script(self, phase: str) -> str:
        return "\n".join(["set -u", *self._hook_lines(phase)]) + "\n"

    def _configure_script(self) -> str:
        install = singleid.build_script() if self.single_id else ""
        install += self.plan.portage.install_script(f"{CF_MOUNT}/portage")
        install += repro.deterministic_ar_probe(f"{CF_MOUNT}/status/{AR_PROBE}")
        return install + "\n".join(self._hook_lines("configure_builder")) + "\n"

    def _builder_deps_script(self) -> str:
        """The packages' build dependencies into the builder (ROOT=/), then package.provided:
        what the image root has, which must not hide what the builder lacks. Its output goes to
        emerge.log, before the image's own emerge: a package that does not resolve fails here."""
        lines = ["set -eu"]
        if self.plan.builder_deps_argv:
            # the log says what ran, as for the image's own emerge (_emerge)
            shown = emerge.command_line(self.plan.builder_deps_argv, emerge.emerge_env("/"))
            lines.append(f"printf '%s\\n' {shlex.quote('$ ' + shown)}")
            lines.append(
                f"{shlex.join(self.plan.builder_deps_argv)} || "
                f"{{ rc=$?; touch {CF_MOUNT}/status/{EMERGE_FAILED}; exit $rc; }}"
            )
        script = "\n".join(lines) + "\n" + self.plan.portage.provided_script(f"{CF_MOUNT}/portage")
        return script + self.plan.provided.resolve_script(f"{CF_MOUNT}/status")

    def _warn_nondeterministic_ar(self) -> None:
        archiver = read_status(self.cf / "status", AR_PROBE)
        if archiver is not None:
            log.warn(
                f"image {self.plan.name}: the builder's {shown(archiver.strip()[:200])} is not deterministic "
                "(binutils without --enable-deterministic-archives): static libraries it builds embed "
                "timestamps, so binary packages (and images that keep *.a files) differ between builds"
            )

    def _authors_steps(self, t: StepTimer) -> None:
        """uninstall, then runtime_libs (gentoo/uninstall.py, gentoo/runtimelibs.py): after post_emerge,
        before the records are read and finish_rootfs (check-binaries sees the copied libraries)."""
        if self.plan.uninstall.packages:
            t.run(
                "uninstall",
                uninstall.run,
                self.plan.uninstall,
                self.rootfs,
                self.plan.provided.lines + self.resolved_provided,
                self._sandbox,
                self.plan.name,
            )
        if self.plan.runtime_libs.names:
            self.builder_files = t.run(
                "runtime_libs",
                runtimelibs.run,
                self.plan.runtime_libs,
                self.rootfs,
                self.cf,
                CF_MOUNT,
                self._sandbox,
                self.plan.name,
            )

    def _post_emerge_script(self) -> str:
        text = s6.install_script(list(self.plan.services), emerge.EMERGE_ROOT) if self.plan.services else ""
        return text + "set -u\n" + "\n".join(self._hook_lines("post_emerge")) + "\n"

    def _finish_script(self) -> str:
        """The loader cache (after every merge of the image: emerge, uninstall, runtime_libs), the
        finish_rootfs hooks, the strip, and the check that every dynamically linked file can start."""
        lines = [
            "set -eu",
            ldcache.script(emerge.EMERGE_ROOT),
            "set +e",
            *self._hook_lines("finish_rootfs"),
            self.plan.slim.shell(emerge.EMERGE_ROOT),
        ]
        if self.plan.check_binaries:
            lines += [
                'echo ">>> check-binaries (check_binaries = false in image.toml turns it off)"',
                f"sh {CF_MOUNT}/hooks/{CHECK_BINARIES} || "
                f"{{ rc=$?; echo check-binaries $rc > {CF_MOUNT}/status/failed-hook; exit $rc; }}",
            ]
        user = self.plan.config.get("User")
        if user and not user.split(":")[0].isdigit():
            name = shlex.quote(user.split(":")[0])
            lines.append(
                f"grep -q '^'{name}: {emerge.EMERGE_ROOT}/etc/passwd || "
                f'{{ echo "config user {user} is not in the image\'s /etc/passwd" >&2; '
                f"echo user-missing > {CF_MOUNT}/status/failed-check; exit 3; }}"
            )
        return "\n".join(lines) + "\n"

    def _binhost(self, mirror: Mirror, argv: list[str]) -> list[str]:
        """Fetch what emerge will take from the binhost (gentoo/binhost.py); the emerge argv."""
        logfile = self.logs / "binhost.log"

        def pretend(pretend_argv):
            code = self._run(pretend_argv, emerge.emerge_env(), logfile)
            return code, logfile.read_text(errors="replace") if logfile.exists() else ""

        return prepare(mirror, self.binhost_view, argv, pretend, self.plan.name)

    def _emerge(self, argv: list[str]) -> None:
        logfile = self.logs / "emerge.log"
        with open(logfile, "a") as handle:  # the log says what ran: the line --plan showed
            handle.write(f"$ {emerge.command_line(argv)}\n")
        code = self._run(argv, emerge.emerge_env(), logfile)
        if code != 0:
            raise self._emerge_failed(code, logfile)

    def _emerge_failed(self, code: int, logfile: Path) -> CfError:
        message = f"image {self.plan.name}: emerge failed (exit status {code}); log: {logfile}\n"
        message += tail_block(logfile, 25)
        # With --jobs above 1, the compiler's error is only in the failed package's own log,
        # which emerge names ("Failed to emerge cat/pkg-1, Log file: '/cf/package-logs/...'").
        named = packagelogs.named_in("\n".join(_tail(logfile, 200)))
        package_log = self.logs / "packages" / named if named else None
        if package_log is not None and package_log.is_file():
            message += f"\n  the failed package's build log: {package_log}"
            shown_lines = set(_tail(logfile, 25))
            if not set(_tail(package_log, 5)) <= shown_lines:  # (a lone job's output is in both)
                message += "\n" + tail_block(package_log, 25)
        return CfError(message, hint=f"read the full log: {package_log or logfile}")

    def _keep_package_logs(self) -> None:
        """Copy the packages' new or grown build logs into logs/<image>/packages (packagelogs.py)."""
        names = packagelogs.pending(self.cf, self.package_logs_seen)
        if not names:
            return
        if os.getuid() == 0:
            got = packagelogs.read(str(self.cf), names)
        else:  # written by portage's sub-ids, which only the sandbox's root may read
            from chrootforge.sandbox import call_mapped

            got = call_mapped(self.ctx.idmap, packagelogs.read, str(self.cf), names)
            got = call_mapped(self.ctx.idmap, packagelogs.read, str(self.cf), names)
        kept = self.logs / "packages"
        kept.mkdir(exist_ok=True)
        for name, data in got:
            if isinstance(data, str):
                log.warn(f"image {self.plan.name}: not kept: {data}")
                continue
            (kept / name).write_bytes(data)
            self.package_logs_seen[name] = len(data)

    def _sandbox(self, phase: str, script: str, env: dict, log: str | None = None) -> None:
        """Run a step's script; its output goes to logs/<log or phase>.log. A hook or an emerge of
        the script that fails (they leave a note in the status dir) is named as such."""
        path = self.cf / f"{phase}.sh"
        path.write_text(script)
        logfile = self.logs / f"{log or phase}.log"
        code = self._run(["/bin/sh", f"{CF_MOUNT}/{phase}.sh"], env, logfile)
        if code != 0:
            if (self.cf / "status" / EMERGE_FAILED).exists():
                raise self._emerge_failed(code, logfile)
            failed = read_status(self.cf / "status", "failed-hook")
            if failed is not None:
                name, _, status = shown(failed.strip()[:500]).rpartition(" ")
                raise CfError(
                    f"image {self.plan.name}: hook '{name}' ({phase}) failed with exit status "
                    f"{status}; log: {logfile}",
                    hint=_last(logfile),
                )
            raise CfError(
                f"image {self.plan.name}: step {phase} failed (exit status {code}); log: {logfile}",
                hint=_last(logfile),
            )

    def _env(self, env: dict) -> dict:
        return {
            "HOME": "/root",
            "TERM": "dumb",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CF_IMAGE": self.plan.name,
            "CF_NAMESPACE": self.ctx.namespace,
            "CF_ROOT": emerge.EMERGE_ROOT,
            **(singleid.env() if self.shim_ready else {}),
            **repro.step_env(self.ctx.epoch),
            **env,
        }

    def _run(self, argv: list[str], env: dict, logfile: Path) -> int:
        config = self._sandbox_config(
            argv,
            self._env(env),
            log_file=logfile,
            binhost=self.binhost_view if self.binhost is not None else None,
        )
        try:
            return run_sandboxed(config)
        finally:
            try:
                self._keep_package_logs()
            except (CfError, OSError) as err:  # a log not kept must not hide how the step ended
                log.warn(f"image {self.plan.name}: the packages' build logs were not kept: {err}")

    def _sandbox_config(self, argv: list[str], env: dict, **extra):
        """The image's build sandbox (builder root, tree, repos, /emerge-root, /cf, distfiles,
        binpkgs) running argv: one place for the steps and the build shell."""
        return sandbox_config(
            root=self.builder,
            network=self.ctx.network,
            tree=self.ctx.tree,
            repos=self.ctx.repos,
            rootfs=self.rootfs,
            cf=self.cf,
            distfiles=self.ctx.distfiles,
            binpkgs=self.binpkgs,
            idmap=self.ctx.idmap,
            argv=argv,
            env=env,
            platform=self.ctx.platform,
            **extra,
        )


def _tail(path: Path, n: int) -> list[str]:
    """The last `n` lines of a log, without their line ends (a line that a program rewrote with
    carriage returns shows as it ended up)."""
    try:
        text = path.read_bytes().decode(errors="replace")  # read_text would turn each \r into \n
    except OSError:
        return []
    lines = text.split("\n")  # not splitlines(), which also splits at each \r
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in lines][-n:]


def tail_block(path: Path, n: int) -> str:
    """The last `n` lines of a log for an error message: each on one line of its own, indented."""
    return "\n".join(f"    | {line}" for line in _tail(path, n))


def _last(path: Path) -> str:
    lines = [line.strip() for line in _tail(path, 5) if line.strip()]
    return (lines[-1] if lines else "no output") + f" (full log: {path})"
