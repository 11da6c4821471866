"""``peerpool demo``: a simulated exchange end to end, with the user interfaces left up on 127.0.0.1.

Steps (each skipped when its result is already there, so a second run is quick and changes nothing):

1. simulate an exchange (``peerpool simulate``) into ``VAR/sim``;
2. build the IP-to-ASN database from the simulated RIB (``peerpool asn build``);
3. start Airflow (API server, scheduler, DAG processor) on 127.0.0.1:8080 with a generated
   admin password, and backfill the simulated month through the ``peerpool_replay`` DAG, which
   triggers ``peerpool_models`` through its assets, then ``peerpool_billing`` (month closes and the
   last night's preview), whose bill documents trigger ``peerpool_models`` once more;
4. start the collector on 127.0.0.1 (sFlow 6343, IPFIX 4739, NetFlow 2055) beside Airflow;
5. start Superset on 127.0.0.1:8088, import the dashboards, create a role and a user per member;
6. print the URLs and the generated credentials (also in ``VAR/credentials.json``, mode 0600).

``peerpool demo --stop`` stops the services.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from peerpool import services
from peerpool.errors import PeerpoolError

REPO = Path(__file__).resolve().parents[1]
VENVS = REPO / ".venvs"
SERVICE_NAMES = ("superset", "collector", "airflow-api", "airflow-scheduler", "airflow-dag-processor")


class DemoError(PeerpoolError):
    exit_code = 8


def say(message: str) -> None:
    click.secho(f"==> {message}", fg="cyan", err=True)


def peerpool_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "peerpool.cli", *args]


def run(command: list[str], what: str, env: dict[str, str] | None = None, attempts: int = 1) -> str:
    """Run a command; retry (with a pause) when it fails on a busy SQLite metadata database."""
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
        if proc.returncode == 0:
            return proc.stdout
        if attempt < attempts and "database is locked" in proc.stderr + proc.stdout:
            time.sleep(3 * attempt)
            continue
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-20:])
        raise DemoError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    raise AssertionError("unreachable")


def credentials(var: Path) -> dict[str, Any]:
    """Generated secrets of this demo installation, created once and kept (mode 0600)."""
    path = var / "credentials.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    data = {
        "superset_secret_key": secrets.token_urlsafe(48),
        "superset_admin_password": secrets.token_urlsafe(16),
        "airflow_jwt_secret": secrets.token_urlsafe(32),
        "member_passwords": {},
    }
    save_credentials(var, data)
    return data


def save_credentials(var: Path, data: dict[str, Any]) -> None:
    path = var / "credentials.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


# --- steps -------------------------------------------------------------------------------------------


def simulate(var: Path, members: int, days: int, seed: int, start: str) -> Path:
    sim = var / "sim"
    stamp = sim / ".demo-params"
    params = f"members={members} days={days} seed={seed} start={start}"
    if stamp.exists() and stamp.read_text() == params:
        say(f"simulated exchange already in {sim} ({params})")
        return sim
    if sim.exists():
        shutil.rmtree(sim)
    say(f"simulating an exchange: {params}")
    args = ["simulate", "--members", str(members), "--days", str(days), "--seed", str(seed)]
    run(peerpool_cmd(*args, "--start", start, "--out", str(sim)), "peerpool simulate")
    stamp.write_text(params)
    return sim


def asn_database(var: Path, sim: Path) -> Path:
    out = var / "asn.dat"
    if not out.exists():
        say("building the IP-to-ASN database from the simulated RIB")
        run(peerpool_cmd("asn", "build", str(sim / "rib.mrt"), "--out", str(out)), "peerpool asn build")
    return out


def peerpool_env(var: Path, sim: Path) -> dict[str, str]:
    return {
        "PEERPOOL_BIN": str(VENVS / "core" / "bin" / "peerpool"),
        "PEERPOOL_CONFIG": str(sim / "exchange.toml"),
        "PEERPOOL_LAKE": str(var / "lake"),
        "PEERPOOL_SPOOL": str(sim / "spool"),
        "PEERPOOL_IMPORT_DIR": str(sim / "counters"),
        "PEERPOOL_WAREHOUSE": str(var / "warehouse"),
        "PEERPOOL_EXPORTS": str(var / "exports"),
        "PEERPOOL_ASN_DB": str(var / "asn.dat"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def airflow_env(var: Path, sim: Path, creds: dict[str, Any]) -> dict[str, str]:
    home = var / "airflow"
    return {
        **peerpool_env(var, sim),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "8080",
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8080",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": creds["airflow_jwt_secret"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


def start_airflow(var: Path, env: dict[str, str]) -> str:
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "airflow.db").exists():
        say("initialising Airflow's metadata database")
        run([airflow, "db", "migrate"], "airflow db migrate", env)
    say("starting Airflow on 127.0.0.1:8080 (API server, scheduler, DAG processor; log servers off)")
    services.start(
        var,
        services.Service(
            "airflow-api",
            [airflow, "api-server", "-H", "127.0.0.1", "-p", "8080"],
            env,
            "http://127.0.0.1:8080/api/v2/monitor/health",
        ),
        timeout_s=180,
    )
    for daemon in airflow_daemons(env):
        services.start(var, daemon)
    passwords = home / "passwords.json"
    for _ in range(60):
        if passwords.exists():
            break
        time.sleep(1)
    data = json.loads(passwords.read_text()) if passwords.exists() else {}
    return str(data.get("admin", "(see " + str(passwords) + ")"))


def airflow_daemons(env: dict[str, str]) -> tuple[services.Service, ...]:
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    return (
        services.Service("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], env),
        services.Service("airflow-dag-processor", [airflow, "dag-processor"], env),
    )


def keep_airflow_up(env: dict[str, str]) -> None:
    """Start the scheduler or DAG processor again if it stopped. Airflow's scheduler on SQLite can
    exit on an internal race (an IntegrityError while a backfill creates its task instances, seen
    once in a full-size demo); its state is in the database, so a new one takes the runs up."""
    var = Path(env["AIRFLOW_HOME"]).parent
    for daemon in airflow_daemons(env):
        _, started = services.start(var, daemon)
        if started:
            say(f"{daemon.name} had stopped (see {var / 'log' / daemon.name}.log); started it again")


def airflow_json(env: dict[str, str], *args: str) -> Any:
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    out = run([airflow, *args, "-o", "json"], f"airflow {' '.join(args)}", env, attempts=5)
    for line in out.splitlines():  # airflow may print warnings before the JSON document
        if line.startswith(("[{", "[]")):
            return json.loads(line)
    return []


def utc_days(first_day: str, days: int, timezone: str = "Europe/Warsaw") -> tuple[dt.date, dt.date]:
    """The UTC days (first, last) that the simulated local calendar days touch."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(dt.date.fromisoformat(first_day), dt.time(), zone)
    end = dt.datetime.combine(dt.date.fromisoformat(first_day) + dt.timedelta(days=days), dt.time(), zone)
    return start.astimezone(dt.UTC).date(), (end - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date()


def backfill_dag(
    env: dict[str, str], dag_id: str, first: dt.date, last: dt.date, deadline: float, to_time: str = ""
) -> None:
    """Backfill ``dag_id`` over the logical days [first, last] unless done; wait with a progress bar."""
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    wait_for_dag(env, dag_id, 120)

    def successes() -> int:
        runs = [
            r
            for r in airflow_json(env, "dags", "list-runs", dag_id)
            if str(r.get("logical_date"))[:10] in days
        ]
        failed = [r for r in runs if r.get("state") == "failed"]
        if failed:
            run_id = failed[0].get("run_id")
            raise DemoError(f"{dag_id} run {run_id} failed: see its log at http://127.0.0.1:8080")
        return len({str(r.get("logical_date"))[:10] for r in runs if r.get("state") == "success"})

    if successes() >= len(days):
        say(f"{dag_id}: the {len(days)} run(s) over {first} .. {last} already succeeded")
        return
    say(f"backfilling {dag_id} over {first} .. {last} ({len(days)} run(s))")
    try:
        run(
            [airflow, "backfill", "create", "--dag-id", dag_id, "--from-date", first.isoformat(),
             "--to-date", last.isoformat() + to_time, "--max-active-runs", "1",
             "--reprocess-behavior", "none"],
            f"airflow backfill create {dag_id}", env, attempts=5,
        )  # fmt: skip
    except DemoError as exc:
        if "AlreadyRunningBackfill" not in str(exc):
            raise
        # an earlier run of the demo was stopped while its backfill went on: wait for that one
        say(f"a backfill of {dag_id} is already running (an earlier demo run); waiting for it")
    with click.progressbar(length=len(days), label=f"{dag_id} runs", file=sys.stderr) as bar:
        finished = 0
        while time.monotonic() < deadline:
            keep_airflow_up(env)
            now = successes()
            bar.update(now - finished)
            finished = now
            if finished >= len(days):
                return
            time.sleep(5)
    raise DemoError(f"{dag_id} backfill did not finish in time; see http://127.0.0.1:8080")


LIVE_DAGS = ("peerpool_ingest", "peerpool_counters")


def pause_live_dags(env: dict[str, str]) -> None:
    """No real exporter or SNMP agent points at a demo: the two live 5-minute DAGs would only
    report silent exporters and unreachable switches, so they start paused (the rest run)."""
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    for dag_id in LIVE_DAGS:
        wait_for_dag(env, dag_id, 120)
        run([airflow, "dags", "pause", dag_id], f"airflow dags pause {dag_id}", env, attempts=5)
    say(f"paused {', '.join(LIVE_DAGS)}: unpause them when real exporters send to the collector")


def backfill(env: dict[str, str], first_day: str, days: int, timeout_s: float = 5400) -> None:
    """The simulated month through the DAGs: replay per UTC day, models (assets), billing close."""
    deadline = time.monotonic() + timeout_s
    pause_live_dags(env)
    first, last = utc_days(first_day, days)
    backfill_dag(env, "peerpool_replay", first, last, deadline)
    wait_for_models(env, deadline)
    # billing: the night before each 1st in the range closes the month; the last night previews
    local_first = dt.date.fromisoformat(first_day)
    nights = [local_first + dt.timedelta(days=i) for i in range(days)]
    for night in [n for n in nights[:-1] if (n + dt.timedelta(days=1)).day == 1] + nights[-1:]:
        backfill_dag(env, "peerpool_billing", night, night, deadline, to_time="T23:59:59")
    # the bill documents are an asset of the models: their run puts the bill shares in the marts
    wait_for_models(env, deadline, after="peerpool_billing")


def wait_for_dag(env: dict[str, str], dag_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dags = airflow_json(env, "dags", "list")
        if any(d.get("dag_id") == dag_id for d in dags):
            return
        time.sleep(3)
    raise DemoError(f"Airflow did not load DAG {dag_id} within {timeout_s:.0f} s; see var/log/airflow-*.log")


def wait_for_models(env: dict[str, str], deadline: float, after: str = "peerpool_replay") -> None:
    """Wait until the asset-triggered model runs have consumed every run of ``after`` and published.

    The scheduler creates a models run a few seconds after the last asset event, so "done" is:
    a models run that ended after the last run of ``after`` ended succeeded, and none is queued or
    running for three polls in a row.
    """
    say(f"waiting for peerpool_models (triggered by the assets of {after}) to publish the serving file")
    upstream = airflow_json(env, "dags", "list-runs", after)
    last_upstream = max((r.get("end_date") or "" for r in upstream), default="")
    airflow = str(VENVS / "airflow" / "bin" / "airflow")
    quiet, retried = 0, False
    while time.monotonic() < deadline:
        keep_airflow_up(env)
        runs = airflow_json(env, "dags", "list-runs", "peerpool_models")
        busy = any(r.get("state") in ("queued", "running") for r in runs)
        since = sorted((r for r in runs if (r.get("end_date") or "") > last_upstream),
                       key=lambda r: str(r.get("end_date")))  # fmt: skip
        # the newest finished run decides: a failure that a later run (a retry, a rerun of the
        # demo) made good does not count
        if not busy and since and since[-1].get("state") == "failed":
            if retried:
                raise DemoError("a peerpool_models run failed: open http://127.0.0.1:8080 for its log")
            # once: a failure left by an earlier run of the demo (the data may be fixed since)
            say("the newest peerpool_models run failed; triggering it once more")
            run([airflow, "dags", "trigger", "peerpool_models"], "airflow dags trigger", env, attempts=5)
            retried = True
            time.sleep(10)
            continue
        quiet = quiet + 1 if not busy and since and since[-1].get("state") == "success" else 0
        if quiet >= 3:
            return
        time.sleep(10)
    raise DemoError("peerpool_models did not finish in time; see http://127.0.0.1:8080")


def start_collector(var: Path, env: dict[str, str]) -> None:
    say("starting the collector on 127.0.0.1 (sFlow 6343, IPFIX 4739, NetFlow 2055)")
    services.start(
        var,
        services.Service(
            "collector",
            [str(VENVS / "core" / "bin" / "peerpool"), "collect", "--spool", env["PEERPOOL_SPOOL"]],
            env,
        ),
    )


def start_superset(var: Path, env: dict[str, str], creds: dict[str, Any]) -> None:
    say("starting Superset on 127.0.0.1:8088 and importing the dashboards")
    superset_env = {
        **env,
        "SUPERSET_SECRET_KEY": creds["superset_secret_key"],
        "PEERPOOL_SUPERSET_HOME": str(var / "superset"),
        "SUPERSET_ADMIN_PASSWORD": creds["superset_admin_password"],
    }
    run(peerpool_cmd("dashboards", "setup", "--var", str(var)), "peerpool dashboards setup", superset_env)
    services.start(
        var,
        services.Service(
            "superset",
            [str(VENVS / "core" / "bin" / "peerpool"), "dashboards", "serve", "--var", str(var)],
            superset_env,
            "http://127.0.0.1:8088/health",
        ),
        timeout_s=180,
    )


@click.command()
@click.option("--members", default=30, show_default=True, help="members of the simulated exchange")
@click.option("--days", default=31, show_default=True, help="days simulated")
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--start",
    default="",
    help="first simulated day, local midnight Europe/Warsaw (default: DAYS days before today, so the "
    "dashboards' recent-days charts have data)",
)
@click.option(
    "--var",
    type=click.Path(path_type=Path),
    default=REPO / "var" / "demo",
    show_default=True,
    envvar="PEERPOOL_DEMO_VAR",
    help="where the demo keeps its data, logs and generated credentials",
)
@click.option("--stop", is_flag=True, help="stop the services the demo started, and exit")
def demo(members: int, days: int, seed: int, start: str, var: Path, stop: bool) -> None:
    """Simulate an exchange, run it through the pipeline, and leave the UIs up on 127.0.0.1."""
    var = var.resolve()
    if not start:
        today = dt.datetime.now(ZoneInfo("Europe/Warsaw")).date()
        start = (today - dt.timedelta(days=days)).isoformat()
    if stop:
        for name in SERVICE_NAMES:
            if services.stop(var, name):
                say(f"stopped {name}")
        return
    var.mkdir(parents=True, exist_ok=True)
    creds = credentials(var)
    sim = simulate(var, members, days, seed, start)
    asn_database(var, sim)
    env = airflow_env(var, sim, creds)
    airflow_password = start_airflow(var, env)
    backfill(env, start, days)
    start_collector(var, env)
    start_superset(var, env, creds)
    creds = credentials(var)
    click.echo("")
    click.secho("peerpool demo is up", fg="green", bold=True)
    click.echo(f"  Airflow   http://127.0.0.1:8080   user admin   password {airflow_password}")
    click.echo(
        f"  Superset  http://127.0.0.1:8088   user admin   password {creds['superset_admin_password']}"
    )
    for user, password in sorted(creds.get("member_passwords", {}).items())[:3]:
        click.echo(f"            member user {user}   password {password}")
    click.echo(f"  all generated credentials: {var / 'credentials.json'} (mode 0600)")
    click.echo(f"  serving DuckDB file (read-only for you): {var / 'warehouse' / 'serving.duckdb'}")
    click.echo("  stop everything with: make stop")
