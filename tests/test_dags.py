"""DAG tests run in the airflow environment through tests/airflow/harness.py (Airflow and the core
environment cannot share a virtualenv: SQLAlchemy 2 against dbt/Superset pins)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import REPO

AIRFLOW_PY = REPO / ".venvs" / "airflow" / "bin" / "python"
HARNESS = REPO / "tests" / "airflow" / "harness.py"
EXPECTED_DAGS = {
    "peerpool_ingest",
    "peerpool_counters",
    "peerpool_replay",
    "peerpool_models",
    "peerpool_reference",
    "peerpool_billing",
    "peerpool_tender",
}


def run_harness(tmp: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    assert AIRFLOW_PY.exists(), "the airflow environment is missing: run envs/setup.sh airflow"
    home = tmp / "airflow-home"
    home.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **(env or {}),
    }
    proc = subprocess.run(
        [str(AIRFLOW_PY), str(HARNESS), *args], capture_output=True, text=True, env=full_env, timeout=600
    )
    for line in proc.stdout.splitlines():
        if line.startswith("HARNESS-RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("HARNESS-RESULT "))
            return result
    raise AssertionError(
        f"harness failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def test_dagbag_imports_without_errors_and_sets_tags_and_retries(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "dagbag", str(REPO / "dags"))
    assert result["import_errors"] == {}
    dags = result["dags"]
    assert set(dags) >= EXPECTED_DAGS, f"missing DAGs: {EXPECTED_DAGS - set(dags)}"
    for dag_id, info in dags.items():
        assert "peerpool" in info["tags"], dag_id
        assert info["doc_md"], f"{dag_id} has no documentation"
        for task_id, task in info["tasks"].items():
            assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"
    assert dags["peerpool_ingest"]["tasks"]["decode_spool"]["outlets"] == ["peerpool_lake_flows"]
    assert dags["peerpool_models"]["tasks"]["build"]["outlets"] == ["peerpool_serving_marts"]
    # new lake data and new bill documents (the bill-share mart's source) trigger the models
    assert dags["peerpool_models"]["schedule_assets"] == [
        "peerpool_billing_exports", "peerpool_lake_flows", "peerpool_lake_port_counters",
    ]  # fmt: skip
