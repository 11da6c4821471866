"""The ``peerpool_billing`` DAG, run for real with ``airflow dags test`` on the hand-made month.

Its tasks call the core environment's ``peerpool bill`` exactly as in production. A night inside
the month writes only the preview; the night whose data interval ends on the 1st (05:00
Europe/Warsaw) also closes the month before; running that night again verifies the closed
files instead of writing them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_billing_support import write_fixture
from tests.test_dags import run_harness

AIRFLOW = REPO / ".venvs" / "airflow" / "bin" / "airflow"
PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"
FINISHED = re.compile(r"DagRun Finished: dag_id=(\S+), .*?state=(\w+)")

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def test_billing_dag_is_declared_as_the_lead_asks(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "dagbag", str(REPO / "dags"))
    assert result["import_errors"] == {}
    billing = result["dags"]["peerpool_billing"]
    assert billing["tags"] == ["billing", "peerpool"]
    assert billing["doc_md"]
    assert billing["schedule"] == "CronDataIntervalTimetable"
    tasks = billing["tasks"]
    assert set(tasks) == {"preview", "month_complete", "close_month"}
    assert tasks["preview"]["outlets"] == ["peerpool_billing_exports"]
    assert tasks["close_month"]["outlets"] == ["peerpool_billing_exports"]
    assert all(task["retries"] >= 1 for task in tasks.values())


def dags_test(home: Path, logical_date: str, settings: dict[str, str]) -> str:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PEERPOOL_BIN": str(PEERPOOL),
        **settings,
    }
    if not (home / "airflow.db").exists():
        proc = subprocess.run(
            [str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", "peerpool_billing", logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    states = [state for dag, state in FINISHED.findall(log) if dag == "peerpool_billing"]
    assert states and states[-1] == "success", f"exit {proc.returncode}:\n{log[-6000:]}"
    return log


def test_nightly_preview_and_close_on_the_first(tmp_path: Path) -> None:
    assert AIRFLOW.exists(), "the airflow environment is missing: run envs/setup.sh airflow"
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    _, config = write_fixture(warehouse)  # writes warehouse/serving.duckdb and exchange.toml
    exports = tmp_path / "exports"
    settings = {
        "PEERPOOL_CONFIG": str(config),
        "PEERPOOL_WAREHOUSE": str(warehouse),
        "PEERPOOL_EXPORTS": str(exports),
    }
    home = tmp_path / "airflow-home"
    home.mkdir()
    # a manual run's data interval ends at its logical date (the timetable infers the day before it)
    # the night of 14/15 February: interval 14 Feb 05:00 -> 15 Feb 05:00 Warsaw; preview only
    dags_test(home, "2026-02-15T04:00:00+00:00", settings)
    month = exports / "2026-02"
    assert (month / "preview" / "MANIFEST.json").is_file()
    assert not (month / "final").exists()
    # the night of 28 February / 1 March: the interval ends on the 1st, February is closed
    dags_test(home, "2026-03-01T04:00:00+00:00", settings)
    manifest = month / "final" / "MANIFEST.json"
    assert json.loads(manifest.read_text())["document"] == {
        "type": "peerpool member bills",
        "status": "final",
        "month": "2026-02",
    }
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    # the same night again (a retry or a cleared run): verified, not written
    log = dags_test(home, "2026-03-01T04:00:00+00:00", settings)
    assert "identical" in log
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == digest
