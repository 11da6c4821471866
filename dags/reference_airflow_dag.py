"""
### peerpool reference (daily)

Refreshes the reference data every model build relies on: validates `exchange.toml` and exports
it to the lake's reference tables, compares the exchange's IX-F member export with it (when
`PEERPOOL_IXF` is set), loads PeeringDB `netixlan` objects (when `PEERPOOL_PEERINGDB_NETIXLAN`
is set), and rebuilds the IP-to-ASN database from an MRT RIB dump (when `PEERPOOL_RIB` is set).
A configuration error fails the run with every problem listed.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import CronTriggerTimetable, dag, task
from peerpool_assets import REFERENCE
from peerpool_common import DEFAULT_ARGS, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_reference",
    schedule=CronTriggerTimetable("15 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    tags=["peerpool", "reference"],
    doc_md=__doc__,
)
def peerpool_reference() -> None:
    @task(outlets=[REFERENCE])
    def refresh() -> str:
        args = [
            "reference",
            "refresh",
            "--config",
            setting("PEERPOOL_CONFIG"),
            "--lake",
            setting("PEERPOOL_LAKE"),
        ]
        if os.environ.get("PEERPOOL_IXF"):
            args += ["--ixf", os.environ["PEERPOOL_IXF"]]
        if os.environ.get("PEERPOOL_PEERINGDB_NETIXLAN"):
            args += ["--peeringdb-netixlan", os.environ["PEERPOOL_PEERINGDB_NETIXLAN"]]
        if os.environ.get("PEERPOOL_RIB"):
            args += ["--rib", os.environ["PEERPOOL_RIB"], "--asn-db", setting("PEERPOOL_ASN_DB")]
        return run_peerpool(*args)

    refresh()


peerpool_reference()
