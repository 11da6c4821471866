"""
### peerpool tender (manual, with parameters)

For the purchasing group: from the history in the serving file, the pooling dividend, a
forecast with uncertainty bands, the commit that minimises expected cost for the offered price
tiers, provider scenarios and the cost-sharing methods side by side. Trigger it with the
offers file (`tiers`, see `examples/tender_tiers.toml`) and the planning horizon; the report
lands in `PEERPOOL_EXPORTS/tender/<run id>/` (HTML, JSON, one CSV per table).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from airflow.sdk import Param, dag, task
from peerpool_common import DEFAULT_ARGS, notify_failure, run_peerpool, setting


@dag(
    dag_id="peerpool_tender",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "on_failure_callback": notify_failure},
    params={
        "tiers": Param("examples/tender_tiers.toml", type="string", description="offers file (TOML)"),
        "months": Param(24, type="integer", minimum=1, maximum=60, description="months to plan for"),
        "seed": Param(0, type="integer", description="seed of the forecast and Monte Carlo draws"),
    },
    tags=["peerpool", "tender"],
    doc_md=__doc__,
)
def peerpool_tender() -> None:
    @task
    def plan(params: dict[str, object] | None = None, run_id: str | None = None) -> str:
        assert params is not None
        tiers = Path(str(params["tiers"]))
        if not tiers.is_absolute():
            tiers = Path(__file__).resolve().parents[1] / tiers
        out = (
            Path(setting("PEERPOOL_EXPORTS")) / "tender" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id or "manual")
        )
        return run_peerpool(
            "tender", "run",
            "--serving", str(Path(setting("PEERPOOL_WAREHOUSE")) / "serving.duckdb"),
            "--tiers", str(tiers),
            "--months", str(params["months"]),
            "--seed", str(params["seed"]),
            "--out", str(out),
        )  # fmt: skip

    plan()


peerpool_tender()
