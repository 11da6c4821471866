"""
### peerpool models (when new data lands, and nightly)

Runs `peerpool build`: counter hygiene, the dbt build with every test, and the atomic
publication of the serving DuckDB file. Triggered by the ingest and counters assets, by the
billing exports (a new preview or close reaches the members' bill-share mart at once), and
nightly at 01:30 UTC. Then fails loudly on a reconciliation alert (sFlow against counters
off by more than the threshold over an hour) or sample loss above the threshold.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from peerpool_assets import BILLS, COUNTERS, FLOWS, MARTS
from peerpool_common import DEFAULT_ARGS, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_models",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("30 1 * * *", timezone="UTC"), assets=(FLOWS | COUNTERS | BILLS)
    ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    tags=["peerpool", "models"],
    doc_md=__doc__,
)
def peerpool_models() -> None:
    @task(outlets=[MARTS])
    def build() -> str:
        return run_peerpool(
            "build",
            "--lake", setting("PEERPOOL_LAKE"),
            "--config", setting("PEERPOOL_CONFIG"),
            "--warehouse", setting("PEERPOOL_WAREHOUSE"),
            # the standing bills and the newest tender report become model sources
            "--exports", setting("PEERPOOL_EXPORTS"),
        )  # fmt: skip

    @task
    def check_quality() -> str:
        return run_peerpool(
            "check", "quality",
            "--lake", setting("PEERPOOL_LAKE"),
            "--config", setting("PEERPOOL_CONFIG"),
            "--warehouse", setting("PEERPOOL_WAREHOUSE"),
        )  # fmt: skip

    build() >> check_quality()


peerpool_models()
