"""
### peerpool replay (daily, with catchup: backfills)

Processes one whole UTC day of stored input: the closed spool files of the day and the
counter exports of the day found in `PEERPOOL_IMPORT_DIR` (CSV/JSON from another monitoring
system, or a simulated exchange). This is how a past month is loaded or re-loaded: a backfill
of this DAG over the month produces the same lake, and through the `MARTS` asset the same
marts, as the original 5-minute runs did (every step is idempotent per input file).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, task
from peerpool_assets import COUNTERS, FLOWS
from peerpool_common import DEFAULT_ARGS, decode_interval, iso, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_replay",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # backfills are asked for explicitly (airflow backfill create)
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    tags=["peerpool", "ingest", "backfill"],
    doc_md=__doc__,
)
def peerpool_replay() -> None:
    @task(outlets=[FLOWS])
    def decode_day(
        data_interval_start: dt.datetime | None = None, data_interval_end: dt.datetime | None = None
    ) -> str:
        return decode_interval(data_interval_start, data_interval_end)

    @task(outlets=[COUNTERS])
    def import_counters(
        data_interval_start: dt.datetime | None = None, data_interval_end: dt.datetime | None = None
    ) -> str:
        return run_peerpool(
            "counters", "import",
            "--dir", setting("PEERPOOL_IMPORT_DIR"),
            "--from", iso(data_interval_start),
            "--to", iso(data_interval_end),
            "--lake", setting("PEERPOOL_LAKE"),
            "--config", setting("PEERPOOL_CONFIG"),
        )  # fmt: skip

    [decode_day(), import_counters()]


peerpool_replay()
