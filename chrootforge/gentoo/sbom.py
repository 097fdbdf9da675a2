"""The SBOM of an image: SPDX 2.3 JSON listing every Gentoo package in it (pure).

Packages come from the image's records (what /var/db/pkg said after each emerge: provided entries
are not packages of the image). Their Gentoo LICENSE becomes licenseDeclared (gentoo/licenses.py).
Files copied from the builder (`runtime_libs`) are listed as files of the builder package whose
CONTENTS hold them, with that package's version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from chrootforge.gentoo.licenses import SpdxLicense, ref_id, to_spdx
from chrootforge.gentoo.records import InstalledPackage
from chrootforge.gentoo.runtimelibs import BuilderFile

MEDIA_TYPE = "application/spdx+json"


def _spdx_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text)


def purl(pkg: InstalledPackage) -> str:
    return purl_of(pkg.cp, pkg.version, pkg.repository)


def purl_of(cp: str, version: str, repository: str = "") -> str:
    category, name = cp.split("/", 1)
    base = f"pkg:ebuild/{quote(category)}/{quote(name)}@{quote(version)}"
    return base + (f"?repository={quote(repository)}" if repository else "")


def spdx_license(license_: str, use=()) -> SpdxLicense:
    """The declared license; a LICENSE the parser cannot read is NOASSERTION, not a failed build."""
    try:
        return to_spdx(license_, use)
    except ValueError:
        return SpdxLicense("NOASSERTION")


def _builder_packages(files: list[BuilderFile], refs: set[str]) -> tuple[list[dict], list[dict], list[dict]]:
    """(packages, files, relationships) for the files copied from the builder, by owning package."""
    packages, entries, relationships = [], [], []
    by_package: dict[str, list[BuilderFile]] = {}
    for f in files:
        by_package.setdefault(f.package, []).append(f)
    for cpv, group in sorted(by_package.items()):
        ident = f"SPDXRef-BuilderPackage-{_spdx_id(cpv)}"
        lic = spdx_license(group[0].license)
        refs.update(lic.refs)
        sha1s = sorted(f.sha1 for f in group)
        file_ids = []
        for f in sorted(group, key=lambda f: f.path):
            file_id = f"SPDXRef-File-{_spdx_id(f.path.lstrip('/'))}"
            file_ids.append(file_id)
            entries.append(
                {
                    "SPDXID": file_id,
                    "fileName": "." + f.path,
                    "checksums": [
                        {"algorithm": "SHA1", "checksumValue": f.sha1},
                        {"algorithm": "SHA256", "checksumValue": f.sha256},
                    ],
                    "licenseConcluded": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                    "comment": f"copied from the builder's {f.source} (runtime_libs of image {f.image})",
                }
            )
            relationships.append(
                {"spdxElementId": ident, "relationshipType": "CONTAINS", "relatedSpdxElement": file_id}
            )
        packages.append(
            {
                "SPDXID": ident,
                "name": group[0].cp,
                "versionInfo": group[0].version,
                "supplier": "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": True,
                "hasFiles": file_ids,
                "packageVerificationCode": {
                    "packageVerificationCodeValue": hashlib.sha1("".join(sha1s).encode()).hexdigest()
                },
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": lic.expression,
                "licenseInfoFromFiles": ["NOASSERTION"],
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": purl_of(group[0].cp, group[0].version),
                    }
                ],
                "comment": "only the files listed are in the image: copied from the builder, where this "
                "package is installed (runtime_libs); Gentoo LICENSE: " + (group[0].license or "unknown"),
            }
        )
    return packages, entries, relationships


def spdx_document(
    image_ref: str,
    records: list[InstalledPackage],
    *,
    created_epoch: int,
    namespace_uri: str,
    tool_version: str,
    image_digest: str | None = None,
    builder_files: Sequence[BuilderFile] = (),
) -> dict:
    created = datetime.fromtimestamp(created_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    image_id = "SPDXRef-Image"
    image_pkg = {
        "SPDXID": image_id,
        "name": image_ref,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    }
    if image_digest:
        image_pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": image_digest.split(":")[-1]}]
    packages = [image_pkg]
    relationships: list[dict] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    refs: set[str] = set()
    for pkg in sorted(records, key=lambda p: (p.cp, p.version)):
        ident = f"SPDXRef-Package-{_spdx_id(pkg.cpv)}"
        lic = spdx_license(pkg.license, pkg.use)
        refs.update(lic.refs)
        entry = {
            "SPDXID": ident,
            "name": pkg.cp,
            "versionInfo": pkg.version,
            "supplier": "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": lic.expression,
            "primaryPackagePurpose": "LIBRARY" if "lib" in pkg.name else "APPLICATION",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl(pkg),
                }
            ],
        }
        if pkg.homepage:
            entry["homepage"] = pkg.homepage.split()[0]
        if pkg.description:
            entry["summary"] = pkg.description
        notes = []
        if pkg.license:
            notes.append(f"Gentoo LICENSE: {pkg.license}")  # as the ebuild wrote it
        if pkg.use:
            notes.append(f"USE: {' '.join(pkg.use)}")
        if pkg.image:
            notes.append(f"layer of image: {pkg.image}")
        if notes:
            entry["comment"] = "; ".join(notes)
        packages.append(entry)
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ident}
        )
    extra_packages, files, file_relationships = _builder_packages(list(builder_files), refs)
    packages += extra_packages
    for entry in extra_packages:
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": entry["SPDXID"]}
        )
    relationships += file_relationships
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image_ref,
        "documentNamespace": namespace_uri,
        "creationInfo": {"created": created, "creators": [f"Tool: chrootforge-{tool_version}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if files:
        doc["files"] = files
    if refs:
        doc["hasExtractedLicensingInfos"] = [
            {
                "licenseId": ref_id(name),
                "name": name,
                "extractedText": f"The license named {name} in the Gentoo repository (its licenses/{name} "
                "file); it has no SPDX license list id.",
            }
            for name in sorted(refs)
        ]
    return doc
