"""unpack: apply an image's layers onto a directory (whiteouts, owners, modes, xattrs, hardlinks).

Every path operation goes through chrootforge.rootpath's resolver with `follow=False`: entries,
whiteouts, opaque markers and hardlink targets are reached through directory fds opened with
O_NOFOLLOW, and an entry below a symlink (or a non-directory) is refused, naming the layer and the
entry. So no layer, however hostile, can read or write outside `dest`. Absolute names and `..` are
refused too. Device nodes are never created (a layer from elsewhere could carry a disk's node):
they are skipped with one notice. Every blob is checked against its digest while it is read.

Runs as id 0 of the build's user namespace (owners are the image's ids), or as real root with
`host_ids` mapping the image's ids to the host range the sandbox uses (sandbox/idmap.py). With
`record_owners` (a single-id namespace, whose only id is 0), every file belongs to id 0 and the
image's owners are recorded in the user.rootlesscontainers xattr (chrootforge.ownerxattr).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

from chrootforge import log, ownerxattr
from chrootforge.errors import CfError
from chrootforge.oci import layerread
from chrootforge.oci.resolved import resolve
from chrootforge.rootpath import PathRefused, RootDir, entry_parts

HostIds = Callable[[int, int], tuple[int, int] | None]


def _remove(dirfd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)  # fd-based: never follows a symlink inside
    else:
        os.unlink(name, dir_fd=dirfd)


class _Applier:
    def __init__(self, root: RootDir, host_ids: HostIds | None, record_owners: bool = False):
        self.root = root
        self.host_ids = host_ids
        self.record_owners = record_owners
        self.dir_times: dict[str, int] = {}
        self.skipped_devices = 0
        self.unrecorded: ownerxattr.SymlinkOwners = {}  # record_owners: symlinks not owned by 0:0
        self.own_records: list[str] = []  # record_owners: entries whose layer held the record xattr

    def apply(self, layout: Path, desc: dict) -> None:
        where = f"layer {desc['digest'][:19]}"
        for event in layerread.events(layout, desc):
            try:
                if isinstance(event, layerread.Opaque):
                    self._opaque(event)
                elif isinstance(event, layerread.Whiteout):
                    self._whiteout(event.path)
                else:
                    self._entry(event.member, event.tar, event.path)
            except PathRefused as err:
                raise CfError(
                    f"{where}: {err}", hint="the layer is hostile or damaged; it was not applied any further"
                ) from err

    def _whiteout(self, target: str) -> None:
        try:
            with self.root.locate(target, follow=False, what="whiteout") as loc:
                _remove(loc.dirfd, loc.entry)
        except FileNotFoundError:
            pass  # below a directory that does not exist: nothing to delete

    def _opaque(self, marker: layerread.Opaque) -> None:
        try:
            with self.root.open_dir(marker.dir, what="opaque marker") as fd:
                if fd is None:
                    return  # the directory does not exist: nothing to hide
                for child in os.listdir(fd):
                    if child not in marker.kept:
                        _remove(fd, child)
        except FileNotFoundError:
            pass

    def _entry(self, member: tarfile.TarInfo, tar: tarfile.TarFile, rel: str) -> None:
        if member.ischr() or member.isblk():
            if not self.skipped_devices:
                log.notice(
                    f"not creating device node /{rel} (layers may not make device nodes): "
                    "device nodes are skipped"
                )
            self.skipped_devices += 1
            return
        with self.root.locate(rel, follow=False, make_parents=True, what="layer entry") as loc:
            fd, name = loc.dirfd, loc.entry
            try:
                existing = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
                _remove(fd, name)
                existing = None
            if member.isdir():
                if existing is None:
                    os.mkdir(name, 0o700, dir_fd=fd)
            elif member.isreg():
                out_fd = os.open(
                    name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=fd,
                )
                content = tar.extractfile(member)
                assert content is not None  # a regular member always has a body
                with os.fdopen(out_fd, "wb") as out:
                    shutil.copyfileobj(content, out, 1 << 20)
            elif member.issym():
                os.symlink(member.linkname, name, dir_fd=fd)
            elif member.islnk():
                self._hardlink(member, fd, name)
                return  # a hardlink shares the target's inode and metadata
            elif member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=fd)
            else:
                log.notice(f"skipping /{rel}: unsupported tar entry type {member.type!r}")
                return
            self._metadata(member, fd, name, rel)

    def _hardlink(self, member: tarfile.TarInfo, fd: int, name: str) -> None:
        target = "/".join(entry_parts(member.linkname, "hardlink target"))
        with self.root.locate(target, follow=False, what="hardlink target") as loc:
            if loc.name is None:
                raise PathRefused(f"refusing hardlink {member.name!r} to the root itself")
            try:
                st = os.stat(loc.name, dir_fd=loc.dirfd, follow_symlinks=False)
            except FileNotFoundError as err:
                raise PathRefused(
                    f"refusing hardlink {member.name!r}: its target {target!r} is not in the image"
                ) from err
            if stat.S_ISDIR(st.st_mode):
                raise PathRefused(f"refusing hardlink {member.name!r} to the directory {target!r}")
            os.link(loc.name, name, src_dir_fd=loc.dirfd, dst_dir_fd=fd, follow_symlinks=False)

    def _metadata(self, member: tarfile.TarInfo, fd: int, name: str, rel: str) -> None:
        uid, gid = (0, 0) if self.record_owners else (member.uid, member.gid)
        if self.host_ids is not None:
            mapped = self.host_ids(uid, gid)
            if mapped is None:
                raise CfError(
                    f"layer entry /{rel} has owner {uid}:{gid}, outside the id range",
                    hint="images may use the ids 0..65535",
                )
            uid, gid = mapped
        try:
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
        except OSError as err:
            raise CfError(
                f"cannot give /{rel} owner {member.uid}:{member.gid}: {err.strerror}",
                hint="unpack as root or inside the user namespace that maps the image's ids",
            ) from err
        where = ownerxattr.fd_path(fd, name)  # through our fd of the directory: not followed
        for key, value in layerread.member_xattrs(member):
            if self.record_owners and key == ownerxattr.XATTR:
                self.own_records.append(rel)  # the record below says who owns it instead
                continue
            try:
                os.setxattr(where, key, value, follow_symlinks=False)
            except OSError as err:
                log.notice(f"cannot set xattr {key} on /{rel}: {err.strerror}")
        if self.record_owners:
            self.unrecorded.pop(rel, None)
            if not ownerxattr.record(where, member.uid, member.gid):
                if not member.issym():
                    raise CfError(
                        f"cannot record the owner {member.uid}:{member.gid} of /{rel}: its file "
                        "system has no user xattrs",
                        hint="single-id mode keeps owners in xattrs: use a file system with user "
                        "xattrs (ext4, xfs, btrfs, tmpfs on Linux 6.6+) for the cache",
                    )
                self.unrecorded[rel] = (member.uid, member.gid, member.linkname)
        if not member.issym():
            os.chmod(name, member.mode & 0o7777, dir_fd=fd)  # after chown, which clears setuid
        if member.isdir():
            self.dir_times[rel] = int(member.mtime)
        else:
            os.utime(name, (int(member.mtime), int(member.mtime)), dir_fd=fd, follow_symlinks=False)

    def finish(self) -> None:
        for rel, (_uid, _gid, link) in list(self.unrecorded.items()):  # a later layer may drop it
            try:
                with self.root.locate(rel, follow=False, what="symlink") as loc:
                    if os.readlink(loc.entry, dir_fd=loc.dirfd) == link:
                        continue
            except (OSError, PathRefused):
                pass
            del self.unrecorded[rel]
        # Directory mtimes last (deepest first): writing into a directory changes its mtime.
        for rel in sorted(self.dir_times, key=len, reverse=True):
            with contextlib.suppress(OSError, PathRefused), self.root.open_dir(rel) as fd:
                if fd is not None:
                    os.utime(fd, (self.dir_times[rel], self.dir_times[rel]))


def unpack(
    layout, tag: str, dest, host_ids: HostIds | None = None, record_owners: bool = False
) -> ownerxattr.SymlinkOwners:
    """Write the full tree of `tag` into `dest` (created if missing; should be empty).

    record_owners: files belong to id 0 and keep the image's owners as records. Returns the
    owners that could not be recorded (symlinks not owned by 0:0, with their targets); else {}."""
    found = resolve(layout, tag)
    dest = os.fspath(dest)
    os.makedirs(dest, exist_ok=True)
    with RootDir(dest) as root:
        applier = _Applier(root, host_ids, record_owners)
        for desc in found.manifest["layers"]:
            applier.apply(Path(layout), desc)
        applier.finish()
    if applier.own_records:
        log.warn(
            f"single-id: {len(applier.own_records)} files of {tag} carry a {ownerxattr.XATTR} xattr "
            "of their own, which this mode uses for their owners: it is not kept ("
            + ", ".join(f"/{rel}" for rel in applier.own_records[:5])
            + (" ..." if len(applier.own_records) > 5 else "")
            + ")"
        )
    return applier.unrecorded
