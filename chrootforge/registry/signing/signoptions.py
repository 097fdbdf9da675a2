"""SignOptions: what `push --sign-by*` and build's [output] signing choose. Light on purpose: the
CLI modules import it while building the parser."""

from __future__ import annotations

import argparse
import dataclasses


@dataclasses.dataclass(frozen=True)
class SignOptions:
    sign_by: str | None = None  # an OpenPGP key (fingerprint) of the user's GnuPG keyring
    sigstore_key: str | None = None  # a sigstore private key file (PEM or cosign's format)
    passphrase_file: str | None = None  # the passphrase of either, first line of the file
    registries_d: str | None = None  # where the lookaside store is configured

    @property
    def enabled(self) -> bool:
        return bool(self.sign_by or self.sigstore_key)


def add_registries_d_option(group) -> None:
    group.add_argument(
        "--registries.d",
        dest="registries_d",
        metavar="DIR",
        help="registries.d directory: lookaside stores and use-sigstore-attachments (default: "
        "~/.config/containers/registries.d if it exists, else /etc/containers/registries.d)",
    )


def add_sign_options(parser: argparse.ArgumentParser) -> None:
    """--sign-by, --sign-by-sigstore-private-key, --sign-passphrase-file, --registries.d (podman's
    and skopeo's spelling)."""
    g = parser.add_argument_group("signing (docs/registry.md, Signatures)")
    g.add_argument(
        "--sign-by",
        metavar="FINGERPRINT",
        help="sign with this OpenPGP key of your GnuPG keyring; the signature goes to the lookaside "
        "store registries.d names",
    )
    g.add_argument(
        "--sign-by-sigstore-private-key",
        dest="sign_by_sigstore_private_key",
        metavar="PATH",
        help="sign with this sigstore key (ECDSA P-256 PEM, or cosign's encrypted key); the "
        "signature goes to the registry's sha256-<digest>.sig tag",
    )
    g.add_argument(
        "--sign-passphrase-file",
        metavar="PATH",
        help="the passphrase of the signing key, on the first line of PATH",
    )
    add_registries_d_option(g)


def sign_options_from_args(args: argparse.Namespace) -> SignOptions:
    return SignOptions(
        sign_by=getattr(args, "sign_by", None),
        sigstore_key=getattr(args, "sign_by_sigstore_private_key", None),
        passphrase_file=getattr(args, "sign_passphrase_file", None),
        registries_d=getattr(args, "registries_d", None),
    )
