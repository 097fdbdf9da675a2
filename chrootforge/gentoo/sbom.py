"""The SBOM of an image: SPDX 2.3 JSON listing every Gentoo package in it (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from chrootforge.gentoo.records import InstalledPackage

MEDIA_TYPE = "application/spdx+json"


def _spdx_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text)


def purl(pkg: InstalledPackage) -> str:
    base = f"pkg:ebuild/{quote(pkg.category)}/{quote(pkg.name)}@{quote(pkg.version)}"
    return base + (f"?repository={quote(pkg.repository)}" if pkg.repository else "")


def spdx_document(image_ref: str, records: list[InstalledPackage], *, created_epoch: int,
                  namespace_uri: str, tool_version: str, image_digest: str | None = None) -> dict:
    created = datetime.fromtimestamp(created_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    image_id = "SPDXRef-Image"
    image_pkg = {
        "SPDXID": image_id, "name": image_ref, "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    }
    if image_digest:
        image_pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": image_digest.split(":")[-1]}]
    packages = [image_pkg]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image_id}]
    for pkg in sorted(records, key=lambda p: (p.cp, p.version)):
        ident = f"SPDXRef-Package-{_spdx_id(pkg.cpv)}"
        entry = {
            "SPDXID": ident, "name": pkg.cp, "versionInfo": pkg.version,
            "supplier": "NOASSERTION", "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY" if "lib" in pkg.name else "APPLICATION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl(pkg)}],
        }
        if pkg.homepage:
            entry["homepage"] = pkg.homepage.split()[0]
        if pkg.description:
            entry["summary"] = pkg.description
        notes = []
        if pkg.license:
            notes.append(f"Gentoo LICENSE: {pkg.license}")  # Gentoo names, not SPDX ids
        if pkg.use:
            notes.append(f"USE: {' '.join(pkg.use)}")
        if pkg.image:
            notes.append(f"layer of image: {pkg.image}")
        if notes:
            entry["comment"] = "; ".join(notes)
        packages.append(entry)
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ident})
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image_ref,
        "documentNamespace": namespace_uri,
        "creationInfo": {"created": created, "creators": [f"Tool: chrootforge-{tool_version}"]},
        "packages": packages,
        "relationships": relationships,
    }
