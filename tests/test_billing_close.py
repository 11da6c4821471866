"""The month close: written once and read-only, re-runs verified byte for byte, overwrites refused,
corrections numbered and chained to the original by the sha256 of its manifest.

Checksums are computed here with ``hashlib`` over the files on disk; expected differences are the
hand-computed figures of ``tests/test_billing.py`` (Gamma's 3-minute oper-down on et-0/0/3 is one
started day, 900.00 / 30 = 30.00, when oper-down is credited).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import stat
from pathlib import Path

import duckdb
from click.testing import CliRunner, Result

from peerpool.billing.cli import bill
from peerpool.errors import BillingError
from tests.test_billing_support import write_fixture


def invoke(*args: str) -> Result:
    return CliRunner().invoke(bill, list(args), catch_exceptions=True)


class Month:
    """The fixture month with its inputs and an exports folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.serving, self.config = write_fixture(tmp)
        self.out = tmp / "exports"
        self.dir = self.out / "2026-02"

    def common(self, serving: Path | None = None) -> list[str]:
        return ["--month", "2026-02", "--out", str(self.out), "--serving", str(serving or self.serving),
                "--config", str(self.config)]  # fmt: skip

    def close(self, *extra: str, serving: Path | None = None) -> Result:
        return invoke(*self.common(serving), "--final", *extra)

    def correct(self, reason: str, *extra: str) -> Result:
        return invoke("correct", *self.common(), "--reason", reason, *extra)


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, mode and mtime of every file and folder under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[path.relative_to(root).as_posix()] = (digest, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return out


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_close_is_read_only_and_a_rerun_is_identical(tmp_path: Path) -> None:
    month = Month(tmp_path)
    assert "month closed" in ok(month.close())
    final = month.dir / "final"
    first = snapshot(final)
    assert {mode for digest, mode, _ in first.values() if digest != "dir"} == {0o444}
    assert {mode for digest, mode, _ in first.values() if digest == "dir"} == {0o555}
    assert stat.S_IMODE(final.stat().st_mode) == 0o555
    # every file is in the manifest with its sha256 (computed here)
    manifest = json.loads((final / "MANIFEST.json").read_text())
    assert manifest["document"]["status"] == "final"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        path: digest for path, (digest, _, _) in first.items() if digest != "dir" and path != "MANIFEST.json"
    }
    rows = list(csv.DictReader(io.StringIO((final / "bill-2026-02-lines.csv").read_text())))
    assert {r["status"] for r in rows} == {"final"}
    # the same inputs again: identical, nothing touched (same bytes, same modification times)
    output = ok(month.close())
    assert "identical" in output
    assert snapshot(final) == first


def test_closing_again_over_different_results_is_refused(tmp_path: Path) -> None:
    month = Month(tmp_path)
    ok(month.close())
    before = snapshot(month.dir)
    result = month.close("--credit-oper-down")
    assert isinstance(result.exception, BillingError)
    message = str(result.exception)
    assert message.startswith("refused")
    for name in (
        "bill-2026-02-lines.csv",
        "bill-2026-02-totals.csv",
        "members/AS64502.csv",
        "evidence/AS64502.zip",
    ):
        assert name in message
    assert "members/AS64500.csv" not in message  # Alpha's lines did not change
    assert "peerpool bill correct --month 2026-02" in message
    assert snapshot(month.dir) == before


def test_a_newer_serving_file_with_the_same_month_is_unchanged(tmp_path: Path) -> None:
    month = Month(tmp_path)
    ok(month.close())
    before = snapshot(month.dir)
    (tmp_path / "newer").mkdir()
    newer = tmp_path / "newer" / "serving.duckdb"  # the next night's publication of the same file
    shutil.copyfile(month.serving, newer)
    con = duckdb.connect(str(newer))
    con.execute("create table unrelated as select 42 as x")  # a later build: other bytes, same February
    con.close()
    assert hashlib.sha256(newer.read_bytes()).digest() != hashlib.sha256(month.serving.read_bytes()).digest()
    output = ok(month.close(serving=newer))
    assert "unchanged" in output and "nothing written" in output
    assert snapshot(month.dir) == before


def test_corrections_are_numbered_and_refer_to_the_original(tmp_path: Path) -> None:
    month = Month(tmp_path)
    ok(month.close())
    final_before = snapshot(month.dir / "final")
    original_sha = hashlib.sha256((month.dir / "final" / "MANIFEST.json").read_bytes()).hexdigest()

    assert "correction written" in ok(
        month.correct("oper-down on et-0/0/3 was our optic", "--credit-oper-down")
    )
    first = month.dir / "correction-01"
    correction = json.loads((first / "CORRECTION.json").read_text())
    assert correction["number"] == 1
    assert correction["reason"] == "oper-down on et-0/0/3 was our optic"
    assert correction["corrects"] == {"document": "final", "manifest_sha256": original_sha}
    assert correction["previous"] == {"document": "final", "manifest_sha256": original_sha}
    # one line added: Gamma's credit for one started day of oper-down, 900.00 / 30 = 30.00
    assert [(d["member_id"], d["kind"], d["reference"], d["change"], d["delta_net"])
            for d in correction["line_differences"]] == [
        ("AS64502", "sla_credit", "ktw-sw1:et-0/0/3", "added", "-30.00")
    ]  # fmt: skip
    # Gamma's totals: net 1741.85 - 30.00 = 1711.85; VAT 1711.85 x 0.23 = 393.7255 -> 393.73 (was 400.63);
    # gross 1711.85 + 393.73 = 2105.58 (was 2142.48)
    assert correction["total_differences"] == [
        {
            "member_id": "AS64502",
            "old_net": "1741.85", "new_net": "1711.85", "delta_net": "-30.00",
            "old_vat": "400.63", "new_vat": "393.73", "delta_vat": "-6.90",
            "old_gross": "2142.48", "new_gross": "2105.58", "delta_gross": "-36.90",
        }
    ]  # fmt: skip
    lines = list(csv.DictReader(io.StringIO((first / "bill-2026-02-lines.csv").read_text())))
    assert {r["status"] for r in lines} == {"correction-01"}
    header = json.loads((first / "bill-2026-02.json").read_text())["document"]
    assert header["correction"]["corrects"]["manifest_sha256"] == original_sha
    assert {stat.S_IMODE(p.stat().st_mode) for p in first.rglob("*") if p.is_file()} == {0o444}
    # the original is untouched
    assert snapshot(month.dir / "final") == final_before

    # the same correction again: identical, nothing new
    first_before = snapshot(first)
    assert "identical" in ok(month.correct("oper-down on et-0/0/3 was our optic", "--credit-oper-down"))
    assert snapshot(first) == first_before
    assert not (month.dir / "correction-02").exists()
    # another reason over the same figures: nothing to correct
    result = month.correct("another reason", "--credit-oper-down")
    assert isinstance(result.exception, BillingError)
    assert "nothing to correct" in str(result.exception)

    # a second change (Delta's one-off fee 11.50 -> 12.50): correction-02, chained to correction-01
    month.config.write_text(month.config.read_text().replace('amount = "11.50"', 'amount = "12.50"'))
    ok(month.correct("port removal was 12.50", "--credit-oper-down"))
    second = json.loads((month.dir / "correction-02" / "CORRECTION.json").read_text())
    first_sha = hashlib.sha256((first / "MANIFEST.json").read_bytes()).hexdigest()
    assert second["number"] == 2
    assert second["corrects"] == {"document": "final", "manifest_sha256": original_sha}
    assert second["previous"] == {"document": "correction-01", "manifest_sha256": first_sha}
    assert [(d["member_id"], d["kind"], d["reference"], d["old_amount_net"], d["new_amount_net"])
            for d in second["line_differences"]] == [
        ("AS64503", "one_off_fee", "port removal", "11.50", "12.50")
    ]  # fmt: skip
    # Delta: net 450.00 + 12.50 = 462.50; VAT 462.50 x 0.23 = 106.375 -> 106.38; gross 568.88
    totals = {r["member_id"]: r for r in second["total_differences"]}
    assert (totals["AS64503"]["new_net"], totals["AS64503"]["new_vat"], totals["AS64503"]["new_gross"]) == (
        "462.50", "106.38", "568.88",
    )  # fmt: skip
    # and a final close re-run still refuses to overwrite (the figures differ from the original now)
    assert isinstance(month.close("--credit-oper-down").exception, BillingError)


def test_correction_of_an_open_month_is_refused(tmp_path: Path) -> None:
    month = Month(tmp_path)
    result = month.correct("too early")
    assert isinstance(result.exception, BillingError)
    assert "not closed" in str(result.exception) and "--final" in str(result.exception)


def test_previews_are_replaced_and_stay_writable(tmp_path: Path) -> None:
    month = Month(tmp_path)
    ok(invoke(*month.common()))
    preview = month.dir / "preview"
    lines = preview / "bill-2026-02-lines.csv"
    first = lines.read_bytes()
    ok(invoke(*month.common(), "--credit-oper-down"))
    assert lines.read_bytes() != first  # replaced, not refused
    assert b"ktw-sw1:et-0/0/3" in lines.read_bytes()
    assert stat.S_IMODE(lines.stat().st_mode) & 0o200
    assert not [p for p in month.dir.iterdir() if p.name.startswith(".tmp") or p.name.startswith(".old")]
