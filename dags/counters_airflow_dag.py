"""
### peerpool counters (every 5 minutes)

Polls every configured switch and border-router port over SNMP (IF-MIB 64-bit counters,
speed, oper status, sysUpTime) and stores the raw reads, failures included, in the lake.
The poll is stamped with the run's data interval end, so a retried run replaces its own rows.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, task
from peerpool_assets import COUNTERS
from peerpool_common import DEFAULT_ARGS, iso, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_counters",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # a poll reads the present: there is nothing to catch up
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1, "on_failure_callback": notify_failure},
    tags=["peerpool", "counters"],
    doc_md=__doc__,
)
def peerpool_counters() -> None:
    @task(outlets=[COUNTERS])
    def poll(data_interval_end: dt.datetime | None = None) -> str:
        return run_peerpool(
            "counters", "poll", "--once",
            "--config", setting("PEERPOOL_CONFIG"),
            "--lake", setting("PEERPOOL_LAKE"),
            "--poll-id", iso(data_interval_end),
        )  # fmt: skip

    poll()


peerpool_counters()
