"""
### peerpool billing (nightly preview; month close on the 1st)

Every night, after the models build, writes the **month-to-date preview** of the member bills
for the month of the run's data interval (`peerpool bill --month YYYY-MM`, into
`PEERPOOL_EXPORTS/YYYY-MM/preview/`, every file marked as a preview).

On the run whose data interval ends on the 1st of a month (billing time zone), the previous
month is complete: it is then **closed** (`peerpool bill --month YYYY-MM --final`), written once
into `PEERPOOL_EXPORTS/YYYY-MM/final/` with a manifest of sha256 checksums and read-only files.
A retry or a re-run verifies the closed files instead of writing them ("identical"); different
figures are refused, and a change needs a numbered correction (`peerpool bill correct`), which
is a decision for a person, never a scheduled task.

The billing time zone is `PEERPOOL_BILLING_TIMEZONE` (default Europe/Warsaw, as `[billing]
timezone` in exchange.toml). Settings: PEERPOOL_CONFIG, PEERPOOL_WAREHOUSE, PEERPOOL_EXPORTS.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task
from peerpool_assets import BILLS
from peerpool_common import DEFAULT_ARGS, notify_failure, run_peerpool, setting

BILLING_TZ = os.environ.get("PEERPOOL_BILLING_TIMEZONE", "Europe/Warsaw")


def billing_month(instant: Any) -> str:
    """YYYY-MM of an interval bound in the billing time zone (the day the interval starts in)."""
    local = instant.astimezone(zoneinfo.ZoneInfo(BILLING_TZ))
    return f"{local.year:04d}-{local.month:02d}"


def ends_a_month(data_interval_end: Any) -> bool:
    """True when the interval ends on the 1st (billing time zone): the month before is complete."""
    return bool(data_interval_end.astimezone(zoneinfo.ZoneInfo(BILLING_TZ)).day == 1)


def bill_args(month: str, *extra: str) -> list[str]:
    return [
        "bill",
        "--month", month,
        "--out", setting("PEERPOOL_EXPORTS"),
        "--serving", str(Path(setting("PEERPOOL_WAREHOUSE")) / "serving.duckdb"),
        "--config", setting("PEERPOOL_CONFIG"),
        *extra,
    ]  # fmt: skip


@dag(
    dag_id="peerpool_billing",
    # 05:00 in the billing time zone: after the nightly models build (01:30 UTC)
    schedule=CronDataIntervalTimetable("0 5 * * *", timezone=BILLING_TZ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # a missed close is run by hand or by a backfill of that night
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    tags=["peerpool", "billing"],
    doc_md=__doc__,
)
def peerpool_billing() -> None:
    @task(outlets=[BILLS])
    def preview(data_interval_start: dt.datetime | None = None) -> str:
        return run_peerpool(*bill_args(billing_month(data_interval_start)))

    @task.short_circuit
    def month_complete(data_interval_end: dt.datetime | None = None) -> bool:
        return ends_a_month(data_interval_end)

    @task(outlets=[BILLS])
    def close_month(data_interval_start: dt.datetime | None = None) -> str:
        return run_peerpool(*bill_args(billing_month(data_interval_start), "--final"))

    preview() >> month_complete() >> close_month()


peerpool_billing()
