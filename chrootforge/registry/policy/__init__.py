"""containers-policy.json(5) on import: which images `pull` (and build's remote cache) accept.

    load(path=None) -> Policy | None      # --policy FILE, else ~/.config/containers/policy.json,
                                          # else /etc/containers/policy.json, else None (no policy)
    admit(ref, options, policy, registries_dir=None) -> RemoteRef
        The reference to pull: `ref` itself when the policy accepts anything for it, else `ref`
        pinned to the manifest digest whose signatures satisfied every requirement; a refusal is a
        PolicyRefusal (one line), raised before any blob is downloaded.

config.py parses the file as strictly as containers/image (unknown or duplicate keys refuse the
whole file), identity.py is `signedIdentity`, evaluate.py gathers and checks the signatures.
"""

from chrootforge.registry.policy.evaluate import PolicyRefusal, admit  # noqa: E402
from chrootforge.registry.policy.policyfile import Policy, PolicyError, load  # noqa: E402

__all__ = ["Policy", "PolicyError", "PolicyRefusal", "admit", "load"]
