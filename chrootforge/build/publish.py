"""`build --push`: publish every image of the build to `[output] registry` (docker://HOST[:PORT]/NS).

Each tag TAG of image IMAGE goes to `<registry>/IMAGE:TAG`, with the image's referrers (the SBOM
and its build state). Publication happens once the whole build succeeded, parents first (so a
child's parent layers are already there, or mounted from the parent's repository), and only
then: a failed build publishes nothing, so a registry never holds half of a new hierarchy.
"""

from __future__ import annotations

from chrootforge import log
from chrootforge.errors import CfError, UsageError
from chrootforge.gentoo.plan import image_ref
from chrootforge.registry import parse_ref
from chrootforge.registry.signing.sign import push_signed

PUBLISHED = ("built", "up-to-date", "pulled")


def destination(registry: str, image: str, tag: str):
    """The RemoteRef of IMAGE:TAG under the registry base (checked)."""
    return parse_ref(f"{registry.rstrip('/')}/{image}:{tag}")


def check_registry(registry: str | None, where: str) -> str:
    """The `[output] registry` value, or a usage error saying how to set it."""
    if not registry:
        raise UsageError(
            "--push needs a registry to push to",
            hint=f'set [output] registry = "docker://HOST[:PORT]/NAMESPACE" in {where}',
        )
    return registry


def push_all(report, project, registry: str, options, signing=None) -> None:
    """Push the report's images (parents first, as the report lists them), signed when `signing`
    (registry.signing.sign.Signing) is set; record each push on its result (`pushed`), or the first
    failure on the report."""
    if not report.ok:
        log.notice("nothing pushed: the build failed")
        return
    for result in report.images:
        if result.status not in PUBLISHED:
            continue
        for tag in project.images[result.image].tags:
            dest = destination(registry, result.image, tag)
            try:
                ref = image_ref(project.namespace, result.image, tag)
                pushed = push_signed(report.layout, ref, dest, options, signing)
            except CfError as err:
                result.error = err.render()
                report.ok = False
                log.notice("the remaining images were not pushed")
                return
            result.pushed.append(
                {
                    "reference": str(dest),
                    "digest": pushed.digest,
                    "uploaded_bytes": pushed.uploaded_bytes,
                    "referrers": len(pushed.referrers),
                    "signed": signing is not None,
                }
            )
            log.info(f"{result.image}: pushed {dest} ({pushed.uploaded_bytes / 1e6:.1f} MB uploaded)")
