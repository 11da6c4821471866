"""Shared plumbing of peerpool's DAGs: where things are and how a task calls peerpool.

Airflow runs in its own environment (its SQLAlchemy cannot share one with Superset's or
dbt's), so every task calls the core environment's ``peerpool`` command: the DAG files
stay thin and the work is the same library code a person runs by hand.

Settings come from the environment of the Airflow processes (the demo sets them):
PEERPOOL_BIN, PEERPOOL_CONFIG, PEERPOOL_LAKE, PEERPOOL_SPOOL, PEERPOOL_WAREHOUSE,
PEERPOOL_EXPORTS, PEERPOOL_IMPORT_DIR, PEERPOOL_ALERT_WEBHOOK, PEERPOOL_ALERT_EMAIL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "peerpool",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


def setting(name: str) -> str:
    """A path setting; defaults live under the repository's var/ directory."""
    defaults = {
        "PEERPOOL_BIN": str(REPO / ".venvs" / "core" / "bin" / "peerpool"),
        "PEERPOOL_CONFIG": str(REPO / "var" / "exchange.toml"),
        "PEERPOOL_LAKE": str(REPO / "var" / "lake"),
        "PEERPOOL_SPOOL": str(REPO / "var" / "spool"),
        "PEERPOOL_WAREHOUSE": str(REPO / "var" / "warehouse"),
        "PEERPOOL_EXPORTS": str(REPO / "var" / "exports"),
        "PEERPOOL_IMPORT_DIR": str(REPO / "var" / "import"),
        "PEERPOOL_ASN_DB": str(REPO / "var" / "asn.dat"),
    }
    value = os.environ.get(name) or defaults.get(name)
    if value is None:
        raise KeyError(f"setting {name} is not set")
    return value


def run_peerpool(*args: str, timeout_s: int = 3600) -> str:
    """Run ``peerpool ARGS`` in the core environment; raise with its own error message on failure."""
    command = [setting("PEERPOOL_BIN"), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.stdout:
        print(proc.stdout)
    if proc.stderr:
        print(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"peerpool {' '.join(args)} failed with exit code {proc.returncode}:\n{tail}")
    return proc.stdout


def decode_interval(start: Any, end: Any) -> str:
    """Decode the collector's closed spool files of [start, end) into the lake (ingest and replay)."""
    return run_peerpool(
        "decode",
        "--spool", setting("PEERPOOL_SPOOL"),
        "--from", iso(start),
        "--to", iso(end),
        "--lake", setting("PEERPOOL_LAKE"),
        "--config", setting("PEERPOOL_CONFIG"),
    )  # fmt: skip


def iso(value: Any) -> str:
    """An Airflow interval bound as an ISO 8601 UTC string."""
    return value.astimezone(dt.UTC).isoformat() if hasattr(value, "astimezone") else str(value)


def notify_failure(context: dict[str, Any]) -> None:
    """Deliver a failure alert to the configured webhook (JSON POST) and/or e-mail address."""
    ti = context.get("task_instance") or context.get("ti")
    message = {
        "dag_id": getattr(ti, "dag_id", "?"),
        "task_id": getattr(ti, "task_id", "?"),
        "run_id": getattr(ti, "run_id", "?"),
        "error": str(context.get("exception", "")),
    }
    webhook = os.environ.get("PEERPOOL_ALERT_WEBHOOK")
    if webhook:
        request = urllib.request.Request(
            webhook,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:  # the alert must never hide the original failure
            print(f"alert webhook {webhook} failed: {exc}")
    address = os.environ.get("PEERPOOL_ALERT_EMAIL")
    if address:
        try:
            from airflow.utils.email import send_email

            send_email(address, f"peerpool: {message['dag_id']}.{message['task_id']} failed", str(message))
        except Exception as exc:
            print(f"alert e-mail to {address} failed: {exc}")
