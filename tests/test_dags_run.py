"""Run peerpool's DAGs for real with ``airflow dags test`` on a small simulated exchange.

Each run happens in the airflow environment, in temporary directories, and its tasks call the
core environment's ``peerpool`` command exactly as in production. Results are checked against
the simulator's own files (counter exports, spool files) and by comparing two backfills.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO
from tests.snmp_agents import run_snmpd

AIRFLOW = REPO / ".venvs" / "airflow" / "bin" / "airflow"
PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"
FINISHED = re.compile(r"DagRun Finished: dag_id=(\S+), .*?state=(\w+)")
# the simulator starts at local midnight in Europe/Warsaw, 2026-09-30T22:00Z, and runs one local day,
# which touches two UTC days
SIM_DAYS = ("2026-10-01", "2026-10-02")  # logical dates of `dags test`: each covers the UTC day before

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    proc = subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        env=airflow_env(home, {}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "sim"
    for args in (
        ["simulate", "--members", "5", "--days", "1", "--seed", "5", "--out", str(out)],
        ["asn", "build", str(out / "rib.mrt"), "--out", str(out / "asn.dat")],
    ):
        proc = subprocess.run([str(PEERPOOL), *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def airflow_env(home: Path, peerpool: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PEERPOOL_BIN": str(PEERPOOL),
        **peerpool,
    }


def peerpool_settings(sim: Path, work: Path) -> dict[str, str]:
    return {
        "PEERPOOL_CONFIG": str(sim / "exchange.toml"),
        "PEERPOOL_SPOOL": str(sim / "spool"),
        "PEERPOOL_IMPORT_DIR": str(sim / "counters"),
        "PEERPOOL_ASN_DB": str(sim / "asn.dat"),
        "PEERPOOL_LAKE": str(work / "lake"),
        "PEERPOOL_WAREHOUSE": str(work / "warehouse"),
        "PEERPOOL_EXPORTS": str(work / "exports"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dags_test(
    home: Path, dag_id: str, logical_date: str, settings: dict[str, str], conf: str | None = None
) -> str:
    """Run one DAG run in-process (``airflow dags test``); return its final state and log."""
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", dag_id, logical_date, *(["--conf", conf] if conf else [])],
        env=airflow_env(home, settings),
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    states = [state for dag, state in FINISHED.findall(log) if dag == dag_id]
    assert states, f"{dag_id} did not finish (exit {proc.returncode}):\n{log[-4000:]}"
    assert states[-1] == "success", f"{dag_id} @ {logical_date} ended {states[-1]}:\n{log[-6000:]}"
    return log


def mart_fingerprints(serving: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent hash of every mart (schema main) in the serving file."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main' order by 1"
            ).fetchall()
        ]
        result = {}
        for table in tables:
            row = con.execute(
                f"select count(*), coalesce(md5(string_agg(h, ',' order by h)), '') "
                f"from (select md5(cast(t as varchar)) as h from main.{table} as t)"
            ).fetchone()
            assert row is not None
            result[table] = (int(row[0]), str(row[1]))
        return result
    finally:
        con.close()


def counter_rows_in(sim: Path, day: str) -> int:
    """Rows of the simulator's counter CSVs polled on one UTC day, counted with the csv module."""
    total = 0
    for path in sorted((sim / "counters").glob("*.csv")):
        with open(path, newline="") as fh:
            total += sum(1 for row in csv.DictReader(fh) if row["polled_at"].startswith(day))
    return total


def lake_count(lake: Path, table: str, where: str = "true") -> int:
    files = list((lake / table).rglob("*.parquet"))
    if not files:
        return 0
    row = (
        duckdb.connect()
        .execute(
            f"select count(*) from read_parquet('{lake / table}/**/*.parquet', hive_partitioning = true, "
            f"union_by_name = true) where {where}"
        )
        .fetchone()
    )
    assert row is not None
    return int(row[0])


def backfill(home: Path, settings: dict[str, str]) -> dict[str, tuple[int, str]]:
    for logical in SIM_DAYS:
        dags_test(home, "peerpool_replay", f"{logical}T00:00:00+00:00", settings)
    dags_test(home, "peerpool_models", f"{SIM_DAYS[-1]}T01:30:00+00:00", settings)
    return mart_fingerprints(Path(settings["PEERPOOL_WAREHOUSE"]) / "serving.duckdb")


def test_replay_backfill_then_models_twice_gives_identical_marts(
    airflow_home: Path, sim: Path, tmp_path: Path
) -> None:
    settings = peerpool_settings(sim, tmp_path)
    first = backfill(airflow_home, settings)
    lake = Path(settings["PEERPOOL_LAKE"])
    # every counter row of the simulated days reached the lake, none twice
    expected = sum(counter_rows_in(sim, (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat())
                   for d in SIM_DAYS)  # fmt: skip
    assert lake_count(lake, "port_counters", "source = 'import'") == expected
    assert first["fct_member_traffic_5min"][0] > 0
    assert first["fct_transit_bill_monthly"][0] > 0
    # the same days again (a second backfill): same lake rows, byte-for-byte the same marts
    second = backfill(airflow_home, settings)
    assert lake_count(lake, "port_counters", "source = 'import'") == expected
    assert second == first
    # a bill preview in the exports folder reaches the members' bill-share mart at the next models run
    serving = Path(settings["PEERPOOL_WAREHOUSE"]) / "serving.duckdb"
    proc = subprocess.run(
        [str(PEERPOOL), "bill", "--month", "2026-10", "--out", settings["PEERPOOL_EXPORTS"],
         "--serving", str(serving), "--config", settings["PEERPOOL_CONFIG"]],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = Path(settings["PEERPOOL_EXPORTS"]) / "2026-10" / "preview" / "bill-2026-10-lines.csv"
    with open(lines, newline="") as fh:
        billed = {r["member_id"] for r in csv.DictReader(fh) if r["kind"] == "transit_share"}
    assert billed, "the preview has no transit share line"
    dags_test(airflow_home, "peerpool_models", f"{SIM_DAYS[-1]}T02:30:00+00:00", settings)
    shares = (
        duckdb.connect(str(serving), read_only=True)
        .execute("select distinct member_id, document_status from main.fct_member_transit_bill_share_monthly")
        .fetchall()
    )
    assert {m for m, _ in shares} == billed and {s for _, s in shares} == {"preview"}


def test_ingest_takes_only_the_spool_files_of_its_interval(
    airflow_home: Path, sim: Path, tmp_path: Path
) -> None:
    settings = peerpool_settings(sim, tmp_path)
    # interval [2026-10-01T10:00Z, 10:05Z): the hourly spool files named 20261001T1000-* start in it
    dags_test(airflow_home, "peerpool_ingest", "2026-10-01T10:05:00+00:00", settings)
    lake = Path(settings["PEERPOOL_LAKE"])
    taken = sorted(p.name for p in (sim / "spool").rglob("20261001T1000-*.spool"))
    assert taken, "the simulator wrote no spool file for 10:00"
    sources = (
        duckdb.connect()
        .execute(
            f"select distinct source_file from read_parquet('{lake}/flows/**/*.parquet', union_by_name=true)"
        )
        .fetchall()
    )
    assert {Path(s).name for (s,) in sources} == set(taken)


@pytest.fixture
def snmp_config(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    with run_snmpd(tmp_path / "snmpd") as agent:
        config = tmp_path / "exchange.toml"
        example = (REPO / "examples" / "exchange.toml").read_text()
        # point both example switches at the test agent; ifIndex 1 (lo) is a real moving counter
        text = example.replace('version = "2c"\n', f'version = "2c"\nport = {agent.port}\n', 1)
        text = text.replace('version = "3"\n', f'version = "3"\nport = {agent.port}\n', 1)
        text = re.sub(r"ifindex = 100[17]", "ifindex = 1", text, count=1)
        config.write_text(text)
        yield (
            config,
            {
                "PEERPOOL_SNMP_COMMUNITY": agent.community,
                "PEERPOOL_SNMP_AUTH_KEY": agent.auth_key,
                "PEERPOOL_SNMP_PRIV_KEY": agent.priv_key,
            },
        )


def test_counters_poll_stores_a_read_for_every_port(
    airflow_home: Path, snmp_config: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, secrets = snmp_config
    settings = {"PEERPOOL_CONFIG": str(config), "PEERPOOL_LAKE": str(tmp_path / "lake"), **secrets}
    dags_test(airflow_home, "peerpool_counters", "2026-10-01T10:05:00+00:00", settings)
    lake = tmp_path / "lake"
    # the example configures 2 member ports and 1 border-router port: one read each, stamped 10:05
    assert lake_count(lake, "port_counters") == 3
    # the port moved to ifIndex 1 (lo) of the real agent answered with real counters
    assert lake_count(lake, "port_counters", "ok and ifindex = 1 and in_octets > 0") == 1


def test_reference_refresh_exports_the_configuration_and_rebuilds_the_asn_database(
    airflow_home: Path, sim: Path, tmp_path: Path
) -> None:
    settings = {
        **peerpool_settings(sim, tmp_path),
        "PEERPOOL_IXF": str(sim / "ixf.json"),
        "PEERPOOL_RIB": str(sim / "rib.mrt"),
        "PEERPOOL_ASN_DB": str(tmp_path / "asn.dat"),
    }
    log = dags_test(airflow_home, "peerpool_reference", "2026-10-02T00:15:00+00:00", settings)
    assert "ix-f export" in log and "0 difference(s)" in log  # the simulator's export matches its config
    members = (
        duckdb.connect()
        .execute(f"select count(*) from read_parquet('{tmp_path}/lake/reference/members.parquet')")
        .fetchone()
    )
    with open(sim / "exchange.toml") as fh:
        configured = sum(1 for line in fh if line.strip() == "[[members]]")
    assert members is not None and members[0] == configured
    assert (tmp_path / "asn.dat").stat().st_size > 0


def test_tender_run_with_parameters_writes_the_report(airflow_home: Path, tmp_path: Path) -> None:
    import json

    from tests.test_tender_cli import TIERS, _write_serving  # six months, 2025-01 .. 2025-06

    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    _write_serving(warehouse / "serving.duckdb", members=4)  # six months of the transit marts
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS.format(rel="0.01"))
    settings = {"PEERPOOL_WAREHOUSE": str(warehouse), "PEERPOOL_EXPORTS": str(tmp_path / "exports")}
    conf = json.dumps({"tiers": str(tiers), "months": 12, "seed": 3})
    dags_test(airflow_home, "peerpool_tender", "2026-10-02T00:00:00+00:00", settings, conf)
    reports = list((tmp_path / "exports" / "tender").glob("*/report.json"))
    assert len(reports) == 1
    # the horizon parameter reached the planner: 12 forecast months after the last of the 6 months
    with open(reports[0].parent / "forecast_pool.csv", newline="") as fh:
        months = [row["month"] for row in csv.DictReader(fh)]
    assert months == [f"2025-{m:02d}" for m in range(7, 13)] + [f"2026-{m:02d}" for m in range(1, 7)]
    assert (reports[0].parent / "report.html").is_file()
