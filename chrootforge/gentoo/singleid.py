"""What single-id mode (`build --single-id`) changes in an image's build sandbox (pure text).

Only id 0 exists in the namespace (sandbox/idmap.py), so:
- portage cannot drop to its own user: FEATURES="-userpriv -usersandbox", PORTAGE_USERNAME and
  PORTAGE_GRPNAME root; every phase runs as root, as emerge does without userpriv;
- chown to another id fails with EINVAL, so fowners, `insopts -o`, binary package extraction and the
  merge itself would fail or lose owners. The owner shim (ownershim.c), built by the builder's own C
  compiler and preloaded into the steps, records such owners in the user.rootlesscontainers xattr
  and makes stat report them: portage merges and packs files with the owners the package means,
  and the commit reads them back (oci/tree.py). A probe checks that both the image root and
  /var/tmp/portage can hold the records before anything runs.
- what cannot be recorded (a symlink's owner) is logged by the shim to LOG and reported by the build.
"""

from __future__ import annotations

from pathlib import Path

from chrootforge.gentoo.emerge import CF_MOUNT, EMERGE_ROOT
from chrootforge.gentoo.status import read_status

SOURCE = Path(__file__).with_name("ownershim.c")
SHIM_DIR = "shim"  # below the build's /cf, given to the namespace's root: the builder writes the shim
SHIM = f"{CF_MOUNT}/{SHIM_DIR}/ownershim.so"
LOG_NAME = "owners.log"  # in the build's status directory
LOG = f"{CF_MOUNT}/status/{LOG_NAME}"
FAILED = f"{CF_MOUNT}/status/failed-check"

MAKE_CONF = (
    "# chrootforge single-id mode: only root exists, so portage cannot drop to its own user\n"
    'FEATURES="${FEATURES} -userpriv -usersandbox"\n'
    'PORTAGE_USERNAME="root"\nPORTAGE_GRPNAME="root"\n'
)

NOTICE = (
    "single-id build: portage runs every phase as root (FEATURES=-userpriv -usersandbox, "
    "PORTAGE_USERNAME=root); chown to ids other than 0 is recorded by a preloaded shim (built "
    "with the stage's C compiler) in the user.rootlesscontainers xattr, and the images get the "
    "recorded owners; not recorded: the owners of symlinks and the chowns of statically linked "
    "programs (reported when they happen)"
)


def env() -> dict[str, str]:
    """The environment of every step once the shim is built."""
    return {"LD_PRELOAD": SHIM, "CF_OWNER_LOG": LOG}


def build_script() -> str:
    """Shell run first in the builder: build the shim from SOURCE (copied to SHIM_DIR), then prove that
    the image root and portage's build directory hold records. Exits 3 naming what is missing."""
    probe = " ".join(f"{d}/.cf-owner-probe" for d in (EMERGE_ROOT, "/var/tmp/portage"))
    return f"""\
cf_cc=
for cc in cc gcc clang; do command -v "$cc" >/dev/null 2>&1 && {{ cf_cc=$cc; break; }}; done
if [ -z "$cf_cc" ]; then
    echo "single-id mode needs a C compiler in the stage (it builds the owner shim):" \
        "found no cc, gcc or clang" >&2
    echo no-compiler > {FAILED}; exit 3
fi
"$cf_cc" -shared -fPIC -O2 -o {SHIM} {CF_MOUNT}/{SHIM_DIR}/ownershim.c -ldl || {{
    echo "single-id mode: $cf_cc could not build the owner shim ({CF_MOUNT}/{SHIM_DIR}/ownershim.c)" >&2
    echo shim-build > {FAILED}; exit 3; }}
for probe in {probe}; do
    : > "$probe" && LD_PRELOAD={SHIM} chown 1:1 "$probe" 2>/dev/null \\
        && [ "$(LD_PRELOAD={SHIM} stat -c %u:%g "$probe")" = 1:1 ] || {{
        rm -f "$probe"
        echo "single-id mode: cannot record owners in ${{probe%/*}}: its file system has no" \
            "user xattrs (tmpfs has them from Linux 6.6)" >&2
        echo no-user-xattr > {FAILED}; exit 3; }}
    rm -f "$probe"
done
export LD_PRELOAD={SHIM} CF_OWNER_LOG={LOG}
"""


def unrecorded(status_dir: Path) -> list[str]:
    """What the shim could not record: "symlink|failed\\tUID:GID\\tPATH" lines, as "PATH (UID:GID)"."""
    text = read_status(status_dir, LOG_NAME)
    if text is None:
        return []
    out = []
    for line in text.splitlines():
        why, _, rest = line.partition("\t")
        ids, _, path = rest.partition("\t")
        if path:
            out.append(f"{path} ({ids}{', a symlink' if why == 'symlink' else ''})")
    return out
