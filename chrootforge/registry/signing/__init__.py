"""Container signatures that podman and skopeo enforce, made when an image is pushed.

    Signing.prepare(SignOptions) -> Signing | None   # keys found and unlocked, or one clear line
    push_signed(layout, tag, dest, options, signing) -> PushResult

- OpenPGP simple signing (`--sign-by FINGERPRINT`): the signed claim (payload.py) goes to the
  lookaside store registries.d names (registries_d.py, lookaside.py);
- sigstore (`--sign-by-sigstore-private-key PATH`): the claim, ECDSA-signed (keys.py), goes to the
  registry's sha256-<hex>.sig tag (attachments.py);
- the provenance of an image is signed as a DSSE envelope (dsse.py; gentoo/provenance.py).

Everything that can fail without the network (keys, passphrase, the lookaside directory) fails
before the first byte is pushed. Signatures are stored after the image, so a failure there leaves
an unsigned image that no signature-requiring policy accepts.
"""
