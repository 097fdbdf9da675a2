"""The value every fetch returns: a verified (or loudly unverified) file in the source cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class FetchedFile:
    path: Path  # the file inside the cache (never modify it)
    sha512: str
    blake2b: str
    verified_by: str | None  # primary fingerprint of the signer; None only when insecure
    source_url: str  # where it came from (https://, file://)
    kind: str = "stage3"  # "stage3" | "snapshot"
    insecure: bool = False  # True: --insecure-skip-verify was used; builds must label the image

    @property
    def name(self) -> str:
        return self.path.name

    def labels(self, prefix: str = "org.chrootforge") -> dict[str, str]:
        """Image labels naming the input by content: file name, sha512 and signer. Where it came
        from (source_url) stays out: a digest must not change with the mirror or the path."""
        base = f"{prefix}.{self.kind}"
        return {
            f"{base}.name": self.name,
            f"{base}.sha512": self.sha512,
            f"{base}.verified-by": self.verified_by or "UNVERIFIED",
            f"{base}.insecure-skip-verify": "true" if self.insecure else "false",
        }

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_json(cls, data: dict) -> FetchedFile:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["path"] = Path(values["path"])
        return cls(**values)
