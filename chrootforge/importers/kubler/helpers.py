"""kubler's helper functions, and what `chrootforge import kubler` makes of a call of each.

The names are those kubler's build container defines for build.sh (its build-root.sh) plus the
sed-or-die script it installs. The probe replaces each with a recording stand-in. A call the probe
finds static (see analysis.py) becomes what `effect` says:

- "key": a spec key (`key` names it; `translate.py` converts the arguments, and keeps the call as hook
  code when they do not fit the key);
- "drop": nothing: chrootforge does it itself, or it only wrote kubler's PACKAGES.md (the SBOM
  lists the packages instead); the compatibility library makes it a no-op when a hook calls it;
- "hook": always kept in the hook, where the compatibility library (hooks/kubler-compat.sh)
  performs it at build time.

docs/import.md has the same table (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Helper:
    name: str
    effect: str  # "key" | "drop" | "hook"
    key: str  # the spec key (effect "key"), or what replaces it (effect "drop")
    compat: str  # what the compatibility library does when a hook calls it


PORTAGE_SETTINGS = ("update_use", "update_keywords", "mask_package", "unmask_package")
DOCS = "documentation only (kubler's PACKAGES.md); the image's SBOM lists the packages"

HELPERS = (
    Helper(
        "update_use",
        "key",
        '`[package."ATOM"] use` (and `keywords` for keyword tokens)',
        "writes package.use / package.accept_keywords entries (flaggie's +flag -flag syntax)",
    ),
    Helper(
        "update_keywords",
        "key",
        '`[package."ATOM"] keywords` (and `use` for flag tokens)',
        "as update_use",
    ),
    Helper("mask_package", "key", "`mask`", "appends to package.mask"),
    Helper("unmask_package", "key", "`unmask`", "appends to package.unmask"),
    Helper("provide_package", "key", "`provided`", "adds the best visible version to package.provided"),
    Helper("unprovide_package", "key", "`unprovided`", "removes the package from package.provided"),
    Helper(
        "uninstall_package",
        "key",
        "`uninstall` (with `force_uninstall = true`: kubler's emerge -C checks no dependencies)",
        "emerge --unmerge with ROOT=/emerge-root",
    ),
    Helper(
        "copy_gcc_libs",
        "key",
        '`runtime_libs = ["libgcc_s.so.1", "libgomp.so.1", "libstdc++.so.6"]`',
        "copies the three libraries from the builder's gcc into the image's library directory",
    ),
    Helper(
        "copy_gfortran_libs",
        "key",
        '`runtime_libs = ["libgfortran.so.5", "libquadmath.so.0"]`',
        "copies the two libraries from the builder into the image's library directory",
    ),
    Helper(
        "add_overlay",
        "key",
        '`[repos] ID = "repos/ID"` in chrootforge.toml (a checkout of the URL goes there)',
        "succeeds when the repository is bound ([repos]); else eselect repository, when the builder has it",
    ),
    Helper("unmask_use", "hook", "", "appends to profile/package.use.mask"),
    Helper("add_patch", "hook", "", "downloads the patch into /etc/portage/patches/ATOM/"),
    Helper("download_file", "hook", "", "downloads into the distfiles cache, unless the file is there"),
    Helper("download_from_oracle", "hook", "", "download_file with Oracle's license cookie"),
    Helper("handle_download_error", "hook", "", "removes the partial file and fails"),
    Helper("is_installed_overlay", "hook", "", "whether portage knows the repository"),
    Helper("install_oci_deps", "hook", "", "fails: it built rkt tools from the network"),
    Helper("get_package_version", "hook", "", "portageq best_version, into __get_package_version"),
    Helper("get_file_mod_stamp", "hook", "", "the file's mtime, into __get_file_mod_stamp"),
    Helper("copy_from_builder_if_changed", "hook", "", "copies a builder file into the image root if newer"),
    Helper("extract_build_dependencies", "hook", "", "nothing (chrootforge keeps no parent headers)"),
    Helper("die", "hook", "", "prints the message and exits"),
    Helper("sed-or-die", "hook", "", "sed that fails when nothing matches (also /usr/local/bin/sed-or-die)"),
    Helper(
        "fix_portage_profile_symlink",
        "drop",
        "chrootforge sets the profile (`[tree] profile`)",
        "nothing",
    ),
    Helper(
        "install_git_postsync_hooks",
        "drop",
        "chrootforge binds the tree read-only (no git sync in the builder)",
        "nothing",
    ),
    Helper("init_docs", "drop", DOCS, "nothing"),
    Helper("generate_doc_package_installed", "drop", DOCS, "nothing"),
    Helper("generate_package_installed", "drop", DOCS, "nothing"),
    Helper("generate_documentation", "drop", DOCS, "nothing"),
    Helper("generate_documentation_footer", "drop", DOCS, "nothing"),
    Helper("write_checkbox_line", "drop", DOCS, "nothing"),
    Helper("log_as_installed", "drop", DOCS, "nothing"),
)

BY_NAME = {h.name: h for h in HELPERS}
NAMES = [h.name for h in HELPERS]

# What copy_gcc_libs and copy_gfortran_libs copy (kubler's build-root.sh).
RUNTIME_LIBS = {
    "copy_gcc_libs": ("libgcc_s.so.1", "libgomp.so.1", "libstdc++.so.6"),
    "copy_gfortran_libs": ("libgfortran.so.5", "libquadmath.so.0"),
}
