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
from chrootforge.errors import CfError
from chrootforge.gentoo import emerge, image_io, provided, records, runtimelibs, s6, slim, uninstall
from chrootforge.gentoo.plan import ImagePlan
from chrootforge.sandbox import owned_dir
from chrootforge.spec.model import PHASES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from chrootforge.gentoo.binhost_fetch import Mirror

CF_MOUNT = emerge.CF_MOUNT


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
    idmap: object
    tree: Path
    repos: dict[str, Path]
    distfiles: Path
    binpkgs: Path
    network: str
    compression: str
    jobs: int
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
            digest = t.run("commit", self._commit, commit_request)
            return digest, own
        finally:
            if keep:
                log.notice(
                    f"kept the work dir of {self.plan.name}: {self.work} (remove it with "
                    f"`chrootforge cache prune` or the next build of the image)"
                )
            else:
                self._discard_work()

    def _fresh_work(self) -> None:
        from chrootforge.sandbox import remove_tree

        if self.work.exists():
            remove_tree(self.work, self.ctx.idmap)
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        self.work.mkdir(parents=True)

    def _discard_work(self) -> None:
        from chrootforge.sandbox import remove_tree

        try:
            remove_tree(self.work, self.ctx.idmap)
        except CfError as err:
            log.warn(f"could not clean {self.work}: {err}")

    def interactive_shell(self, failure: str) -> int:
        """A login shell in the build sandbox as the steps see it: the generated /etc/portage, the
        read-only tree, distfiles and binpkgs, /var/tmp/portage on tmpfs, /emerge-root with the
        parent's tree (its packages provided)."""
        from chrootforge.sandbox import run_sandboxed

        emerge_line = (
            " ".join(f"{k}={v}" for k, v in emerge.emerge_env().items())
            + " "
            + " ".join(self.plan.emerge_argv or ("emerge", "(no packages)"))
        )
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
        from chrootforge.sources.stage_cache import fresh_builder

        owned_dir(self.rootfs, self.ctx.idmap)
        portage_dir = self.cf / "portage"
        for rel, content in self.plan.portage.files.items():
            path = portage_dir / "files" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        make_conf = self.plan.portage.make_conf_append
        if getattr(self.ctx.idmap, "single_id", False):
            # Degraded single-id mode: nobody but root exists, so portage cannot drop to 250.
            make_conf += (
                "# single-id mode (announced): no userpriv\n"
                'FEATURES="${FEATURES} -userpriv -usersandbox"\n'
                'PORTAGE_USERNAME="root"\nPORTAGE_GRPNAME="root"\n'
            )
        (portage_dir / "make.conf.append").write_text(make_conf)
        (portage_dir / "package.provided").write_text(self.plan.portage.provided_append)
        hooks_dir = self.cf / "hooks"
        hooks_dir.mkdir(parents=True)
        for phase in PHASES:
            for i, (name, path) in enumerate(self.plan.hooks[phase]):
                shutil.copyfile(path, hooks_dir / f"{phase}-{i:02d}-{Path(name).name}")
        (self.cf / "status").mkdir()
        os.chmod(self.cf / "status", 0o777)
        if self.plan.binhost and self.plan.emerge_argv:
            from chrootforge.gentoo.binhost_fetch import Mirror

            self.binhost = Mirror(self.plan.binhost, self.binpkgs.name)
            self.binhost_view.mkdir(mode=0o755)
        if self.parent_ref:
            image_io.unpack(self.ctx.idmap, self.ctx.layout, self.parent_ref, self.rootfs)
        self.builder = fresh_builder(self.ctx.pristine, self.work / "builder", self.ctx.idmap)

    def _commit(self, request: image_io.CommitRequest) -> str:
        return image_io.commit(
            self.ctx.idmap,
            self.rootfs,
            self.ctx.layout,
            request,
            parent=self.parent_ref,
            compression=self.ctx.compression,
            platform=self.ctx.platform,
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
        install = self.plan.portage.install_script(f"{CF_MOUNT}/portage")
        install += self.plan.provided.resolve_script(f"{CF_MOUNT}/status")
        return install + "\n".join(self._hook_lines("configure_builder")) + "\n"

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
        lines = ["set -u", *self._hook_lines("finish_rootfs"), self.plan.slim.shell(emerge.EMERGE_ROOT)]
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
        from chrootforge.gentoo.binhost_fetch import prepare

        logfile = self.logs / "binhost.log"

        def pretend(pretend_argv):
            code = self._run(pretend_argv, emerge.emerge_env(), logfile)
            return code, logfile.read_text(errors="replace") if logfile.exists() else ""

        return prepare(mirror, self.binhost_view, argv, pretend, self.plan.name)

    def _emerge(self, argv: list[str]) -> None:
        logfile = self.logs / "emerge.log"
        code = self._run(argv, emerge.emerge_env(), logfile)
        if code != 0:
            tail = _tail(logfile, 25)
            raise CfError(
                f"image {self.plan.name}: emerge failed (exit status {code}); log: {logfile}\n"
                + "".join(f"    | {line}\n" for line in tail).rstrip(),
                hint=f"read the full log: {logfile}",
            )

    def _sandbox(self, phase: str, script: str, env: dict) -> None:
        path = self.cf / f"{phase}.sh"
        path.write_text(script)
        logfile = self.logs / f"{phase}.log"
        code = self._run(["/bin/sh", f"{CF_MOUNT}/{phase}.sh"], env, logfile)
        if code != 0:
            failed = self.cf / "status" / "failed-hook"
            if failed.exists():
                name, _, status = failed.read_text().strip().rpartition(" ")
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
            "LC_ALL": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CF_IMAGE": self.plan.name,
            "CF_NAMESPACE": self.ctx.namespace,
            "CF_ROOT": emerge.EMERGE_ROOT,
            **env,
        }

    def _run(self, argv: list[str], env: dict, logfile: Path) -> int:
        from chrootforge.sandbox import run_sandboxed

        config = self._sandbox_config(
            argv,
            self._env(env),
            log_file=logfile,
            binhost=self.binhost_view if self.binhost is not None else None,
        )
        return run_sandboxed(config)

    def _sandbox_config(self, argv: list[str], env: dict, **extra):
        """The image's build sandbox (builder root, tree, repos, /emerge-root, /cf, distfiles,
        binpkgs) running argv: one place for the steps and the build shell."""
        from chrootforge.gentoo.mountview import sandbox_config

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
    try:
        return path.read_text(errors="replace").splitlines(keepends=True)[-n:]
    except OSError:
        return []


def _last(path: Path) -> str:
    lines = [line.strip() for line in _tail(path, 5) if line.strip()]
    return (lines[-1] if lines else "no output") + f" (full log: {path})"
