"""One billing document: the bill's files, its evidence packs and its manifest, as bytes.

Kept apart from where the bytes go (``close``) so that a re-run can produce a document in
memory and compare it with the one on disk before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerpool.billing import evidence
from peerpool.billing.close import MANIFEST, manifest_bytes, sha256_bytes, sha256_file
from peerpool.billing.compute import MonthResult
from peerpool.billing.render import bill_files


@dataclass(frozen=True)
class Inputs:
    """The two input files of a bill, by name and checksum (never by absolute path: it changes)."""

    serving: Path
    config: Path

    def generated_from(self, policy: dict[str, Any]) -> dict[str, Any]:
        return {
            "serving_file": self.serving.name,
            "serving_sha256": sha256_file(self.serving),
            "config_file": self.config.name,
            "config_sha256": sha256_file(self.config),
            "policy": policy,
        }


class Document:
    """Renders a month's result into files for any status (preview, final, correction-NN)."""

    def __init__(self, result: MonthResult, generated_from: dict[str, Any], share_totals: bool) -> None:
        self.result = result
        self.generated_from = generated_from
        self.share_totals = share_totals

    def files(self, status: str, extra_header: dict[str, Any] | None = None) -> dict[str, bytes]:
        result = self.result
        files: dict[str, bytes] = {}
        pool_sha: str | None = None
        if result.pool.contracts:
            pool = evidence.pool_pack(result, status)
            files["evidence/pool.zip"] = pool
            pool_sha = sha256_bytes(pool)
        packs: dict[str, dict[str, str]] = {}
        for member in result.bill.members:
            pack = evidence.member_pack(result, member, status, pool_sha, self.share_totals)
            path = f"evidence/{member.member_id}.zip"
            files[path] = pack
            packs[member.member_id] = {"file": path, "sha256": sha256_bytes(pack)}
        bill = result.bill
        if not self.share_totals:
            bill = _without_pool(bill)
        files.update(bill_files(bill, status, self.generated_from, packs, extra_header))
        return files

    def manifest(self, files: dict[str, bytes], status: str) -> bytes:
        body = {k: v for k, v in files.items() if k != MANIFEST}
        document = {"type": "peerpool member bills", "status": status, "month": self.result.bill.month}
        return manifest_bytes(body, document, self.generated_from)

    def complete(self, status: str, extra_header: dict[str, Any] | None = None) -> dict[str, bytes]:
        files = self.files(status, extra_header)
        files[MANIFEST] = self.manifest(files, status)
        return files


def _without_pool(bill: Any) -> Any:
    """member_visibility = none: the documents carry no cooperative-wide figures."""
    from dataclasses import replace

    return replace(bill, pool={"note": "cooperative-wide figures are not shown (member_visibility = none)"})
