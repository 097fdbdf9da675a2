/* chrootforge's owner shim for single-id builds (preloaded into the build sandbox's processes).
 *
 * A single-id user namespace maps only id 0, so chown to any other id fails with EINVAL. This
 * library makes such a chown succeed by recording the owner in the user.rootlesscontainers xattr
 * (the rootless containers convention: protobuf Resource { uint32 uid = 1; uint32 gid = 2; },
 * absent for 0:0), and makes the stat family report the recorded owner. So emerge, fowners,
 * install -o, tar and cp -p keep the owners a package means: portage merges an image file into
 * ROOT with the owner stat reports, and packs binary packages with it. chrootforge reads the
 * records back when it commits the image (chrootforge/ownerxattr.py).
 *
 * A program that locks itself down with seccomp (scanelf, file) may be killed for a syscall it did
 * not expect: once it installs a filter, the shim stands aside and makes no more calls of its own.
 *
 * What it cannot do: record the owner of a symlink (the kernel allows no user.* xattr there; such
 * a chown succeeds, is logged to $CF_OWNER_LOG and reported by the build), or see statically
 * linked programs and calls inside the C library itself. Built by the builder's own compiler.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR "user.rootlesscontainers"
#define NOOP 0xFFFFFFFFu

/* Set once the process installs a seccomp filter: from then on no xattr call of ours. */
static volatile int stand_aside;

/* How to reach one file for the *xattr calls, which have no dir_fd form. */
struct target {
    int fd;           /* >= 0: the file itself (fchown, fstat, AT_EMPTY_PATH) */
    const char *path; /* otherwise a path, followed or not */
    int follow;
    char buf[PATH_MAX + 32];
};

static void target_at(struct target *t, int dirfd, const char *path, int flags) {
    t->fd = -1;
    t->follow = !(flags & AT_SYMLINK_NOFOLLOW);
    if ((flags & AT_EMPTY_PATH) && path && !*path) {
        if (dirfd == AT_FDCWD) {
            t->path = ".";
        } else {
            t->fd = dirfd;
            t->path = NULL;
        }
    } else if (path[0] == '/' || dirfd == AT_FDCWD) {
        t->path = path;
    } else {
        snprintf(t->buf, sizeof t->buf, "/proc/self/fd/%d/%s", dirfd, path);
        t->path = t->buf;
    }
}

static ssize_t t_get(struct target *t, void *value, size_t size) {
    if (t->fd >= 0) {
        ssize_t n = fgetxattr(t->fd, XATTR, value, size);
        if (n >= 0 || errno != EBADF)
            return n;
        snprintf(t->buf, sizeof t->buf, "/proc/self/fd/%d", t->fd); /* an O_PATH fd */
        return getxattr(t->buf, XATTR, value, size);
    }
    return t->follow ? getxattr(t->path, XATTR, value, size) : lgetxattr(t->path, XATTR, value, size);
}

static int t_set(struct target *t, const void *value, size_t size) {
    if (t->fd >= 0) {
        if (fsetxattr(t->fd, XATTR, value, size, 0) == 0) return 0;
        if (errno != EBADF) return -1;
        snprintf(t->buf, sizeof t->buf, "/proc/self/fd/%d", t->fd);
        return setxattr(t->buf, XATTR, value, size, 0);
    }
    return t->follow ? setxattr(t->path, XATTR, value, size, 0) : lsetxattr(t->path, XATTR, value, size, 0);
}

static int t_remove(struct target *t, const char *name) {
    if (t->fd >= 0) {
        if (fremovexattr(t->fd, name) == 0) return 0;
        if (errno != EBADF) return -1;
        snprintf(t->buf, sizeof t->buf, "/proc/self/fd/%d", t->fd);
        return removexattr(t->buf, name);
    }
    return t->follow ? removexattr(t->path, name) : lremovexattr(t->path, name);
}

/* -- the record: two optional varint fields ---------------------------------------------- */
static int decode(const unsigned char *p, ssize_t n, uint32_t *uid, uint32_t *gid) {
    uint64_t fields[3] = {0, 0, 0};
    ssize_t i = 0;
    while (i < n) {
        uint64_t key = 0, value = 0;
        int shift = 0;
        do {
            if (i >= n || shift > 63) return -1;
            key |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } while (p[i++] & 0x80);
        if ((key & 7) != 0) return -1; /* only varints are expected */
        shift = 0;
        do {
            if (i >= n || shift > 63) return -1;
            value |= (uint64_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } while (p[i++] & 0x80);
        if ((key >> 3) == 1 || (key >> 3) == 2) fields[key >> 3] = value & 0xffffffffu;
    }
    *uid = (uint32_t)fields[1];
    *gid = (uint32_t)fields[2];
    return 0;
}

static size_t put_varint(unsigned char *out, uint32_t value) {
    size_t n = 0;
    do {
        unsigned char byte = value & 0x7f;
        value >>= 7;
        out[n++] = byte | (value ? 0x80 : 0);
    } while (value);
    return n;
}

/* The recorded owner, or -1 (no record, or none possible). */
static int read_record(struct target *t, uint32_t *uid, uint32_t *gid) {
    unsigned char buf[32];
    if (stand_aside) return -1;
    int saved = errno;
    ssize_t n = t_get(t, buf, sizeof buf);
    errno = saved;
    if (n < 0 || decode(buf, n, uid, gid) != 0) return -1;
    return 0;
}

static int write_record(struct target *t, uint32_t uid, uint32_t gid) {
    unsigned char buf[16];
    size_t n = 0;
    if (uid == 0 && gid == 0) {
        if (t_remove(t, XATTR) == 0 || errno == ENODATA || errno == ENOTSUP) return 0;
        return -1;
    }
    if (uid) { buf[n++] = 0x08; n += put_varint(buf + n, uid); }
    if (gid) { buf[n++] = 0x10; n += put_varint(buf + n, gid); }
    return t_set(t, buf, n);
}

/* -- the real functions -------------------------------------------------------------------- */
#define REAL(name) static __typeof__(name) *real_##name; \
    static __typeof__(name) *get_##name(void) { \
        if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name); \
        return real_##name; }
REAL(fchownat)
REAL(syscall)
REAL(prctl)
REAL(fstatat)
REAL(stat)
REAL(lstat)
REAL(fstat)
#ifdef __GLIBC__ /* musl has no separate *64 functions */
REAL(fstatat64)
REAL(stat64)
REAL(lstat64)
REAL(fstat64)
#endif
#ifdef STATX_TYPE
REAL(statx)
#endif

static void log_unrecorded(struct target *t, uid_t uid, gid_t gid, const char *why) {
    const char *path = getenv("CF_OWNER_LOG");
    char line[PATH_MAX + 128], where[PATH_MAX];
    int fd, saved = errno;
    if (!path) return;
    if (t->fd >= 0) {
        snprintf(line, sizeof line, "/proc/self/fd/%d", t->fd);
        ssize_t n = readlink(line, where, sizeof where - 1);
        where[n > 0 ? n : 0] = 0;
    } else {
        ssize_t n = -1;
        if (t->path[0] != '/') {
            /* a relative name: say where it is */
            char dir[PATH_MAX];
            if (strncmp(t->path, "/proc/self/fd/", 14) != 0 && getcwd(dir, sizeof dir))
                n = snprintf(where, sizeof where, "%s/%s", dir, t->path);
        }
        if (n < 0) snprintf(where, sizeof where, "%s", t->path);
    }
    int len = snprintf(line, sizeof line, "%s\t%u:%u\t%s\n", why, (unsigned)uid, (unsigned)gid, where);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, len) < 0) { /* nothing more to do */ }
        close(fd);
    }
    errno = saved;
}

/* chown as the kernel would do it for ids this namespace does not have. */
static int emulate(struct target *t, uid_t uid, gid_t gid, int real_errno) {
    struct stat st;
    uint32_t ruid, rgid;
    int rc = t->fd >= 0 ? get_fstat()(t->fd, &st)
             : t->follow ? get_stat()(t->path, &st) : get_lstat()(t->path, &st);
    if (rc != 0) return -1;
    if (read_record(t, &ruid, &rgid) != 0) {
        ruid = st.st_uid;
        rgid = st.st_gid;
    }
    if (uid != (uid_t)-1) ruid = uid;
    if (gid != (gid_t)-1) rgid = gid;
    if (S_ISLNK(st.st_mode)) {
        log_unrecorded(t, ruid, rgid, "symlink");
        return 0;
    }
    if (write_record(t, ruid, rgid) != 0) {
        log_unrecorded(t, ruid, rgid, "failed");
        errno = real_errno;
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        /* chown(2) drops set-user-ID, set-group-ID (when group-executable) and capabilities */
        mode_t mode = st.st_mode & 07777, keep = mode & ~S_ISUID;
        if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) keep &= ~S_ISGID;
        if (keep != mode) {
            if (t->fd >= 0) fchmod(t->fd, keep);
            else chmod(t->path, keep); /* not a symlink: following it is the same file */
        }
        int saved = errno;
        t_remove(t, "security.capability");
        errno = saved;
    }
    return 0;
}

static int shim_chown(struct target *t, int rc, uid_t uid, gid_t gid) {
    uint32_t ruid, rgid;
    if (stand_aside) return rc;
    if (rc == 0) {
        /* a real chown to mapped ids: a record it changes must follow */
        if (read_record(t, &ruid, &rgid) == 0) {
            if (uid != (uid_t)-1) ruid = uid;
            if (gid != (gid_t)-1) rgid = gid;
            int saved = errno;
            write_record(t, ruid, rgid);
            errno = saved;
        }
        return 0;
    }
    if (errno != EINVAL || ((uid == (uid_t)-1 || uid == 0) && (gid == (gid_t)-1 || gid == 0)))
        return rc;
    return emulate(t, uid, gid, EINVAL);
}

int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) {
    struct target t;
    int rc = get_fchownat()(dirfd, path, uid, gid, flags);
    if (rc != 0 && (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))) return rc;
    target_at(&t, dirfd, path, flags);
    return shim_chown(&t, rc, uid, gid);
}

int chown(const char *path, uid_t uid, gid_t gid) {
    return fchownat(AT_FDCWD, path, uid, gid, 0);
}

int lchown(const char *path, uid_t uid, gid_t gid) {
    return fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

int fchown(int fd, uid_t uid, gid_t gid) {
    return fchownat(fd, "", uid, gid, AT_EMPTY_PATH);
}

/* -- stat: the recorded owner ------------------------------------------------------------- */
#define FIX(st, t) do { uint32_t u, g; \
        if (!S_ISLNK((st)->st_mode) && read_record((t), &u, &g) == 0) { \
            if (u != NOOP) (st)->st_uid = u; \
            if (g != NOOP) (st)->st_gid = g; } } while (0)

int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    struct target t;
    int rc = get_fstatat()(dirfd, path, st, flags);
    if (rc == 0) { target_at(&t, dirfd, path, flags); FIX(st, &t); }
    return rc;
}


#define PATH_STAT(name, type, flags) \
    int name(const char *path, struct type *st) { \
        struct target t; \
        int rc = get_##name()(path, st); \
        if (rc == 0) { target_at(&t, AT_FDCWD, path, flags); FIX(st, &t); } \
        return rc; }
PATH_STAT(stat, stat, 0)
PATH_STAT(lstat, stat, AT_SYMLINK_NOFOLLOW)

#define FD_STAT(name, type) \
    int name(int fd, struct type *st) { \
        struct target t; \
        int rc = get_##name()(fd, st); \
        if (rc == 0) { target_at(&t, fd, "", AT_EMPTY_PATH); FIX(st, &t); } \
        return rc; }
FD_STAT(fstat, stat)

#ifdef __GLIBC__
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
    struct target t;
    int rc = get_fstatat64()(dirfd, path, st, flags);
    if (rc == 0) { target_at(&t, dirfd, path, flags); FIX(st, &t); }
    return rc;
}
PATH_STAT(stat64, stat64, 0)
PATH_STAT(lstat64, stat64, AT_SYMLINK_NOFOLLOW)
FD_STAT(fstat64, stat64)
#endif

#ifdef STATX_TYPE
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx) {
    struct target t;
    uint32_t u, g;
    int rc = get_statx()(dirfd, path, flags, mask, stx);
    if (rc == 0 && (stx->stx_mask & STATX_TYPE) && !S_ISLNK(stx->stx_mode)) {
        target_at(&t, dirfd, path, flags);
        if (read_record(&t, &u, &g) == 0) {
            if (u != NOOP && (stx->stx_mask & STATX_UID)) stx->stx_uid = u;
            if (g != NOOP && (stx->stx_mask & STATX_GID)) stx->stx_gid = g;
        }
    }
    return rc;
}
#endif

/* -- seccomp: stand aside before a filter is installed ------------------------------------- */
long syscall(long number, ...) {
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
#ifdef SYS_seccomp
    if (number == SYS_seccomp) stand_aside = 1;
#endif
    return get_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int prctl(int option, ...) {
    va_list ap;
    unsigned long a[4];
    va_start(ap, option);
    for (int i = 0; i < 4; i++) a[i] = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_SECCOMP) stand_aside = 1;
    return get_prctl()(option, a[0], a[1], a[2], a[3]);
}
