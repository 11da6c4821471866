"""
### peerpool ingest (every 5 minutes)

Decodes the collector's **closed** spool files of the data interval into the lake (flows,
member matrix, counter samples, loss, quarantine, unknown MACs), then checks that every
configured exporter was heard from in the last 15 minutes and that sample loss stays under
the threshold. Idempotent: a spool file is named after its time, each run takes the files of
its own interval, and re-decoding a file replaces its lake parts instead of adding to them.

The collector itself (`peerpool collect`) is a long-running service, not a task.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, task
from peerpool_assets import FLOWS
from peerpool_common import DEFAULT_ARGS, decode_interval, iso, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_ingest",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    tags=["peerpool", "ingest"],
    doc_md=__doc__,
)
def peerpool_ingest() -> None:
    @task(outlets=[FLOWS])
    def decode_spool(
        data_interval_start: dt.datetime | None = None, data_interval_end: dt.datetime | None = None
    ) -> str:
        return decode_interval(data_interval_start, data_interval_end)

    @task
    def check_exporters(data_interval_end: dt.datetime | None = None) -> str:
        return run_peerpool(
            "check", "exporters",
            "--lake", setting("PEERPOOL_LAKE"),
            "--config", setting("PEERPOOL_CONFIG"),
            "--at", iso(data_interval_end),
            "--silent-after", "15m",
        )  # fmt: skip

    decode_spool() >> check_exporters()


peerpool_ingest()
