"""unpack: apply an image's layers onto a directory (whiteouts, owners, modes, xattrs, hardlinks).

Runs as real root or as root of a user namespace (the owners it sets are the image's ids). Device
nodes cannot be created inside a user namespace: they are skipped with one notice. Paths are
resolved without following symlinks in the tree being built, so no layer can write outside `dest`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from pathlib import Path

from chrootforge import log
from chrootforge.errors import CfError
from chrootforge.oci import layerread
from chrootforge.oci.writer import resolve


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class _Applier:
    def __init__(self, dest: str):
        self.dest = dest
        self.dir_times: dict[str, int] = {}
        self.skipped_devices = 0

    def full(self, rel: str) -> str:
        """dest/rel, after checking no existing parent component is a symlink or non-directory."""
        parts = rel.split("/")
        cur = self.dest
        for part in parts[:-1]:
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                os.mkdir(cur, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise CfError(f"layer entry {rel!r} goes through {cur}, which is not a directory")
        return os.path.join(cur, parts[-1])

    def apply(self, layout: Path, desc: dict) -> None:
        added: set[str] = set()
        for member, tar in layerread.members(layout, desc):
            rel = layerread.clean_path(member.name)
            if not rel:
                continue
            parent, _, name = rel.rpartition("/")
            if name == ".wh..wh..opq":
                target = os.path.join(self.dest, parent) if parent else self.dest
                if os.path.isdir(target) and not os.path.islink(target):
                    for child in os.listdir(target):
                        if (f"{parent}/{child}" if parent else child) not in added:
                            _remove(os.path.join(target, child))
                continue
            if name.startswith(".wh."):
                target_rel = f"{parent}/{name[4:]}" if parent else name[4:]
                if target_rel not in added:
                    _remove(self.full(target_rel))
                continue
            self.entry(member, tar, rel)
            added.add(rel)

    def entry(self, member: tarfile.TarInfo, tar: tarfile.TarFile, rel: str) -> None:
        path = self.full(rel)
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(path)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(path, 0o700)
        elif member.isreg():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            os.link(self.full(layerread.clean_path(member.linkname)), path, follow_symlinks=False)
            return  # a hardlink shares the target's inode and metadata
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            except PermissionError:
                if not self.skipped_devices:
                    log.notice(f"cannot create device node /{rel} here (user namespace?): "
                               "device nodes are skipped")
                self.skipped_devices += 1
                return
        else:
            log.notice(f"skipping /{rel}: unsupported tar entry type {member.type!r}")
            return
        self.metadata(member, path)

    def metadata(self, member: tarfile.TarInfo, path: str) -> None:
        try:
            os.lchown(path, member.uid, member.gid)
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EINVAL):
                raise
            raise CfError(f"cannot give {path} owner {member.uid}:{member.gid}: {err.strerror}",
                          hint="unpack as root or inside the user namespace that maps the image's ids")
        for name, value in layerread.member_xattrs(member):
            try:
                os.setxattr(path, name, value, follow_symlinks=False)
            except OSError as err:
                log.notice(f"cannot set xattr {name} on {path}: {err.strerror}")
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears setuid
        if member.isdir():
            self.dir_times[path] = int(member.mtime)
        else:
            os.utime(path, (int(member.mtime), int(member.mtime)), follow_symlinks=False)

    def finish(self) -> None:
        # Directory mtimes last (deepest first): writing into a directory changes its mtime.
        for path in sorted(self.dir_times, key=len, reverse=True):
            if os.path.isdir(path):
                os.utime(path, (self.dir_times[path], self.dir_times[path]), follow_symlinks=False)


def unpack(layout, tag: str, dest) -> None:
    """Write the full tree of `tag` into `dest` (created if missing; should be empty)."""
    found = resolve(layout, tag)
    dest = os.fspath(dest)
    os.makedirs(dest, exist_ok=True)
    applier = _Applier(dest)
    for desc in found.manifest["layers"]:
        applier.apply(Path(layout), desc)
    applier.finish()
