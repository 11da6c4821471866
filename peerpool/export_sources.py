"""peerpool's own exports as sources of the models: the member bills and the tender report.

``peerpool bill`` shares the pooled transit bill in Python (exact ``Decimal``, Shapley and the
other methods, largest remainder to the grosz) and ``peerpool tender run`` plans the scenarios.
A dashboard must show exactly what those documents say, so the models never recompute them:
``peerpool build`` reads the documents that currently stand from the exports folder into lake
tables (``LAKE/exports/<table>.parquet``, the dbt source ``exports``):

* ``bill_transit_shares``: for every month folder ``EXPORTS/YYYY-MM/``, the document in force:
  the highest ``correction-NN``, else ``final``, else ``preview``; one row per member with a
  transit share line. Every file of the document is checked against its ``MANIFEST.json``
  (sha256); the lines CSV, the bill JSON and each member's evidence pack must agree on every
  amount, and the shares must add up to the pool's total where the document states it.
* ``tender_scenarios``, ``tender_scenario_providers``, ``tender_commits``: the newest
  ``EXPORTS/tender/<run id>/report.json`` (by modification time), its scenario and commit tables.

Ordering: the billing and tender DAGs read the serving file that ``peerpool build`` publishes,
so the tables hold the documents of the runs *before* this build (the nightly bill preview of
the previous night); docs/models.md says so. A document that fails its manifest is refused with
an error naming the file: a bill changed after it was written must not reach a dashboard.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from peerpool.errors import InputError
from peerpool.reference import MONEY, write_atomic

MANIFEST = "MANIFEST.json"
_MONTH_DIR = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CORRECTION_DIR = re.compile(r"^correction-(\d{2,})$")
_FOUR_PLACES = Decimal("0.0001")
# a preview is replaced (renamed) by every preview run: a read that races one is tried again
PREVIEW_ATTEMPTS = 3

SCHEMAS: dict[str, pa.Schema] = {
    "bill_transit_shares": pa.schema(
        [
            ("month", pa.string()),
            ("document_status", pa.string()),
            ("document", pa.string()),
            ("manifest_sha256", pa.string()),
            ("bill_serving_sha256", pa.string()),
            ("member_id", pa.string()),
            ("currency", pa.string()),
            ("allocation_method", pa.string()),
            ("transit_share", MONEY),
            ("own_transit_p95_mbps", MONEY),
            ("allocation_weight", pa.string()),
            ("allocation_weight_unit", pa.string()),
            ("got_left_over_grosz", pa.bool_()),
            ("pool_total", MONEY),
            ("total_allocation_weight", pa.string()),
            ("members_sharing", pa.int64()),
        ]
    ),
    "tender_scenarios": pa.schema(
        [
            ("run_id", pa.string()),
            ("report_sha256", pa.string()),
            ("currency", pa.string()),
            ("reference_offer", pa.string()),
            ("start_month", pa.string()),
            ("horizon_months", pa.int64()),
            ("scenario_rank", pa.int64()),
            ("scenario", pa.string()),
            ("provider_count", pa.int64()),
            ("commits", pa.string()),
            ("expected_monthly_cost", MONEY),
            ("expected_total_cost", MONEY),
            ("cost_p95_total", MONEY),
            ("effective_price_per_mbps", MONEY),
            ("site_loads", pa.string()),
            ("notes", pa.string()),
        ]
    ),
    "tender_scenario_providers": pa.schema(
        [
            ("run_id", pa.string()),
            ("scenario_rank", pa.int64()),
            ("scenario", pa.string()),
            ("provider", pa.string()),
            ("share_percent", pa.int64()),
            ("commit_mbps", MONEY),
        ]
    ),
    "tender_commits": pa.schema(
        [
            ("run_id", pa.string()),
            ("offer_rank", pa.int64()),
            ("provider", pa.string()),
            ("commit_mbps", MONEY),
            ("tier_price_per_mbps", MONEY),
            ("burst_price_per_mbps", MONEY),
            ("months", pa.int64()),
            ("expected_monthly_cost", MONEY),
            ("expected_total_cost", MONEY),
            ("cost_p95_total", MONEY),
            ("overage_probability", pa.float64()),
            ("worst_month_overage_probability", pa.float64()),
            ("expected_overage_cost", MONEY),
            ("effective_price_per_mbps", MONEY),
        ]
    ),
}

_REFUSED = (
    "the document was changed after peerpool wrote it; restore it from a backup, or write it "
    "again with `peerpool bill` (a closed month: `peerpool bill correct`)"
)


class DocumentChanged(InputError):
    """A file differs from its manifest (or vanished): changed by hand, or replaced while read."""


@dataclass(frozen=True)
class ExportCounts:
    months: int
    share_rows: int
    tender_run: str | None
    scenarios: int

    def describe(self) -> str:
        tender = (
            f"tender report {self.tender_run} ({self.scenarios} scenarios)"
            if self.tender_run
            else ("no tender report")
        )
        return f"bills of {self.months} month(s), {self.share_rows} transit shares; {tender}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decimal(text: object, what: str) -> Decimal:
    """An exact amount (string in the documents) with at most 4 decimals, as DECIMAL(18,4) holds it."""
    try:
        value = Decimal(str(text))
    except InvalidOperation as exc:
        raise InputError(f"{what}: {text!r} is not a number") from exc
    if not value.is_finite() or value.quantize(_FOUR_PLACES) != value or abs(value) >= Decimal(10) ** 14:
        raise InputError(f"{what}: {text!r} does not fit DECIMAL(18,4) exactly")
    return value.quantize(_FOUR_PLACES)


# ---- bills -----------------------------------------------------------------------------------------


def standing_documents(exports: Path) -> list[Path]:
    """The document in force of every month folder: the highest correction, else final, else preview."""
    found = []
    for month_dir in sorted(p for p in exports.iterdir() if p.is_dir() and _MONTH_DIR.match(p.name)):
        corrections = sorted(
            (int(m.group(1)), p)
            for p in month_dir.iterdir()
            if p.is_dir() and (m := _CORRECTION_DIR.match(p.name))
        )
        if corrections:
            found.append(corrections[-1][1])
        elif (month_dir / "final").is_dir():
            found.append(month_dir / "final")
        elif (month_dir / "preview").is_dir():
            found.append(month_dir / "preview")
    return found


class _Document:
    """One bill document's files, each read once and checked against MANIFEST.json."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.month = directory.parent.name
        self.status = directory.name
        self.label = f"{self.month}/{self.status}"
        manifest_path = directory / MANIFEST
        try:
            self.manifest_bytes = manifest_path.read_bytes()
        except FileNotFoundError as exc:
            raise DocumentChanged(f"{manifest_path}: missing; {_REFUSED}") from exc
        try:
            manifest = json.loads(self.manifest_bytes)
            self.hashes = {str(f["path"]): str(f["sha256"]) for f in manifest["files"]}
            document = manifest["document"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest_path}: not a peerpool bill manifest ({exc}); {_REFUSED}") from exc
        if document.get("status") != self.status or document.get("month") != self.month:
            raise InputError(
                f"{manifest_path}: says {document.get('month')}/{document.get('status')} but lies in "
                f"{self.label}; move it back where `peerpool bill` wrote it"
            )

    def verify_all(self) -> None:
        """Every file the manifest lists is there with its sha256 (the whole document, not only the
        files read: a document is taken as it was written or not at all)."""
        for relative, expected in self.hashes.items():
            path = self.directory / relative
            digest = hashlib.sha256()
            try:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except FileNotFoundError as exc:
                raise DocumentChanged(f"{path}: listed in its {MANIFEST} but missing; {_REFUSED}") from exc
            if digest.hexdigest() != expected:
                raise DocumentChanged(f"{path}: sha256 differs from {self.label}/{MANIFEST}; {_REFUSED}")

    def read(self, relative: str) -> bytes:
        path = self.directory / relative
        expected = self.hashes.get(relative)
        if expected is None:
            raise InputError(f"{path}: not listed in {self.label}/{MANIFEST}; {_REFUSED}")
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise DocumentChanged(f"{path}: listed in its {MANIFEST} but missing; {_REFUSED}") from exc
        if sha256_bytes(data) != expected:
            raise DocumentChanged(f"{path}: sha256 differs from {self.label}/{MANIFEST}; {_REFUSED}")
        return data


def _csv_rows(data: bytes, path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    needed = {"status", "month", "member_id", "kind", "quantity", "unit", "amount_net", "currency"}
    if rows and not needed <= set(rows[0]):
        raise InputError(f"{path}: lacks columns {sorted(needed - set(rows[0]))}; not a peerpool bill")
    return rows


def _share_line(lines: list[dict[str, Any]], where: str) -> dict[str, Any]:
    shares = [line for line in lines if line.get("kind") == "transit_share"]
    if len(shares) != 1:
        raise InputError(f"{where}: {len(shares)} transit share lines, expected 1; {_REFUSED}")
    return shares[0]


def read_bill_document(directory: Path) -> list[dict[str, Any]]:
    """One row per member transit share of the bill document in ``directory`` (checked, see module)."""
    doc = _Document(directory)
    doc.verify_all()
    month = doc.month
    bill_path = directory / f"bill-{month}.json"
    try:
        bill = json.loads(doc.read(f"bill-{month}.json"))
        policy = bill["generated_from"]["policy"]
        method = str(policy["transit_allocation"])
        currency = str(bill["document"]["currency"])
        pool = bill.get("pool") or {}
        members = {str(m["member_id"]): m for m in bill["members"]}
        serving_sha = str(bill["generated_from"]["serving_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{bill_path}: not a peerpool bill document ({exc!r}); {_REFUSED}") from exc
    if bill["document"].get("status") != doc.status:
        raise InputError(f"{bill_path}: status {bill['document'].get('status')!r} in folder {doc.label}")
    lines_path = directory / f"bill-{month}-lines.csv"
    lines = _csv_rows(doc.read(f"bill-{month}-lines.csv"), lines_path)
    pool_total = _decimal(pool["total"], f"{bill_path} pool total") if "total" in pool else None
    allocation = pool.get("allocation") or {}
    rows: list[dict[str, Any]] = []
    for line in (r for r in lines if r["kind"] == "transit_share"):
        member = line["member_id"]
        where = f"{lines_path} member {member}"
        if (line["status"], line["month"], line["currency"]) != (doc.status, month, currency):
            raise InputError(f"{where}: line says {line['status']} {line['month']} {line['currency']}")
        amount = _decimal(line["amount_net"], where)
        if member not in members:
            raise InputError(f"{where}: the member is not in {bill_path.name}; {_REFUSED}")
        in_json = _share_line(members[member]["lines"], f"{bill_path} member {member}")
        if _decimal(in_json["amount_net"], f"{bill_path} member {member}") != amount:
            raise InputError(f"{where}: amount differs from {bill_path.name}; {_REFUSED}")
        evidence = members[member].get("evidence") or {}
        pack = str(evidence.get("file", f"evidence/{member}.zip"))
        pack_bytes = doc.read(pack)
        if evidence.get("sha256") not in (None, sha256_bytes(pack_bytes)):
            raise InputError(f"{directory / pack}: sha256 differs from {bill_path.name}; {_REFUSED}")
        try:
            with zipfile.ZipFile(io.BytesIO(pack_bytes)) as archive:
                summary = json.loads(archive.read("summary.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InputError(f"{directory / pack}: no readable summary.json ({exc}); {_REFUSED}") from exc
        in_pack = _share_line(summary.get("lines", []), f"{directory / pack}")
        if _decimal(in_pack["amount_net"], f"{directory / pack}") != amount:
            raise InputError(f"{directory / pack}: transit share differs from the bill; {_REFUSED}")
        detail = in_pack.get("detail") or {}
        rows.append(
            {
                "month": month,
                "document_status": doc.status,
                "document": doc.label,
                "manifest_sha256": sha256_bytes(doc.manifest_bytes),
                "bill_serving_sha256": serving_sha,
                "member_id": member,
                "currency": currency,
                "allocation_method": method,
                "transit_share": amount,
                "own_transit_p95_mbps": _decimal(line["quantity"], f"{where} quantity"),
                "allocation_weight": _text(detail.get("weight")),
                "allocation_weight_unit": _text(detail.get("weight_unit")),
                "got_left_over_grosz": detail.get("got_left_over_grosz"),
                "pool_total": pool_total,
                "total_allocation_weight": _text(allocation.get("total_weight")),
                "members_sharing": allocation.get("members_sharing"),
            }
        )
    if pool_total is not None and rows:
        shared = sum((row["transit_share"] for row in rows), Decimal(0))
        if shared != pool_total:
            raise InputError(
                f"{lines_path}: transit shares add up to {shared}, the pool's total is {pool_total}; "
                + _REFUSED
            )
    return rows


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _read_with_retries(directory: Path) -> list[dict[str, Any]]:
    """A final or corrected document is immutable; a preview may be swapped while read: try again."""
    preview = directory.name == "preview"
    for attempt in range(PREVIEW_ATTEMPTS if preview else 1):
        try:
            return read_bill_document(directory)
        except DocumentChanged:
            if not preview or attempt == PREVIEW_ATTEMPTS - 1:
                raise
            time.sleep(0.5)  # a preview run is renaming its new document into place
    raise AssertionError("unreachable")


def bill_rows(exports: Path) -> tuple[int, list[dict[str, Any]]]:
    """(months read, share rows) over every month folder of ``exports``."""
    rows: list[dict[str, Any]] = []
    documents = standing_documents(exports)
    for directory in documents:
        rows += _read_with_retries(directory)
    return len(documents), rows


# ---- the tender report -------------------------------------------------------------------------------


def newest_tender_report(exports: Path) -> Path | None:
    reports = [p for p in (exports / "tender").glob("*/report.json") if p.is_file()]
    if not reports:
        return None
    return max(reports, key=lambda p: (p.stat().st_mtime_ns, p.parent.name))


def _table(report: dict[str, Any], name: str, columns: list[str], path: Path) -> list[list[Any]]:
    try:
        table = report["tables"][name]
        found, rows = list(table["columns"]), list(table["rows"])
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: no table {name!r}; write the report again with `peerpool tender run`"
        ) from exc
    if found != columns:
        raise InputError(
            f"{path}: table {name!r} has columns {found}, expected {columns}; write the report again with "
            "this version's `peerpool tender run`"
        )
    return rows


def _split_pairs(text: str, separator: str, where: str) -> list[tuple[str, str]]:
    """'A 60% + B 40%' or 'A 3000; B 2000' -> [(A, 60%), (B, 40%)]: provider names may hold spaces."""
    pairs = []
    for part in text.split(separator):
        name, _, value = part.strip().rpartition(" ")
        if not name or not value:
            raise InputError(f"{where}: cannot read {part!r} as '<provider> <value>'")
        pairs.append((name, value))
    return pairs


def tender_rows(report_path: Path) -> dict[str, list[dict[str, Any]]]:
    """The scenario, scenario-provider and commit rows of one ``report.json``."""
    data = report_path.read_bytes()
    try:
        report = json.loads(data)
        currency = str(report["currency"])
        run = {"run_id": report_path.parent.name}
        meta = {
            "report_sha256": sha256_bytes(data),
            "currency": currency,
            "reference_offer": str(report["reference_offer"]),
            "start_month": str(report["start_month"]),
            "horizon_months": int(report["horizon_months"]),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{report_path}: not a peerpool tender report ({exc!r})") from exc
    cur = currency.lower()
    scenario_columns = ["scenario", "providers", "commits_mbps", f"expected_monthly_{cur}",
                        f"expected_total_{cur}", f"cost_p95_total_{cur}", "effective_per_mbps",
                        "site_loads", "notes"]  # fmt: skip
    commit_columns = ["provider", "commit_mbps", "tier_price_per_mbps", "burst_price_per_mbps", "months",
                      f"expected_monthly_{cur}", f"expected_total_{cur}", f"cost_p95_total_{cur}",
                      "overage_probability", "worst_month_overage_probability", f"expected_overage_{cur}",
                      "effective_per_mbps"]  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {"tender_scenarios": [], "tender_scenario_providers": [],
                                            "tender_commits": []}  # fmt: skip
    for rank, row in enumerate(_table(report, "scenarios", scenario_columns, report_path), start=1):
        where = f"{report_path} scenario #{rank}"
        name, count, commits = str(row[0]), int(row[1]), str(row[2])
        shares = _split_pairs(name, " + ", where)
        committed = _split_pairs(commits, "; ", where)
        if len(shares) != count or [p for p, _ in shares] != [p for p, _ in committed]:
            raise InputError(f"{where}: providers of {name!r} and of {commits!r} do not match")
        out["tender_scenarios"].append(
            {
                **run,
                **meta,
                "scenario_rank": rank,
                "scenario": name,
                "provider_count": count,
                "commits": commits,
                "expected_monthly_cost": _decimal(row[3], where),
                "expected_total_cost": _decimal(row[4], where),
                "cost_p95_total": _decimal(row[5], where),
                "effective_price_per_mbps": _decimal(row[6], where),
                "site_loads": str(row[7]),
                "notes": str(row[8]),
            }
        )
        for (provider, percent), (_, commit) in zip(shares, committed, strict=True):
            if not re.fullmatch(r"\d{1,3}%", percent):
                raise InputError(f"{where}: share {percent!r} of {provider} is not a whole percent")
            out["tender_scenario_providers"].append(
                {**run, "scenario_rank": rank, "scenario": name, "provider": provider,
                 "share_percent": int(percent[:-1]), "commit_mbps": _decimal(commit, where)}
            )  # fmt: skip
    for rank, row in enumerate(_table(report, "commits", commit_columns, report_path), start=1):
        where = f"{report_path} commit #{rank}"
        out["tender_commits"].append(
            {
                **run,
                "offer_rank": rank,
                "provider": str(row[0]),
                "commit_mbps": _decimal(row[1], where),
                "tier_price_per_mbps": _decimal(row[2], where),
                "burst_price_per_mbps": _decimal(row[3], where),
                "months": int(row[4]),
                "expected_monthly_cost": _decimal(row[5], where),
                "expected_total_cost": _decimal(row[6], where),
                "cost_p95_total": None if row[7] is None else _decimal(row[7], where),
                "overage_probability": float(row[8]),
                "worst_month_overage_probability": float(row[9]),
                "expected_overage_cost": _decimal(row[10], where),
                "effective_price_per_mbps": _decimal(row[11], where),
            }
        )
    return out


# ---- the lake tables -----------------------------------------------------------------------------------


def export(exports: Path, lake: Path) -> ExportCounts:
    """Read the standing bills and the newest tender report of ``exports`` into ``LAKE/exports/``.

    Everything is read and checked before anything is written; each table is replaced atomically.
    A missing exports folder is an empty one (nothing billed yet).
    """
    months, shares = bill_rows(exports) if exports.is_dir() else (0, [])
    report = newest_tender_report(exports) if exports.is_dir() else None
    tender: dict[str, list[dict[str, Any]]] = tender_rows(report) if report else {}
    rows = {
        "bill_transit_shares": shares,
        **{name: tender.get(name, []) for name in SCHEMAS if name != "bill_transit_shares"},
    }
    tables = {name: pa.Table.from_pylist(rows[name], schema=schema) for name, schema in SCHEMAS.items()}
    for name, table in tables.items():
        write_atomic(table, lake / "exports" / f"{name}.parquet")
    return ExportCounts(months, len(shares), report.parent.name if report else None,
                        len(tender.get("tender_scenarios", [])))  # fmt: skip
