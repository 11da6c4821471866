"""``peerpool dashboards``: import the Superset assets in ``dashboards/`` and provision its security.

Superset runs in its own environment (``.venvs/superset``); this module drives it from the core
environment. The assets are YAML with stable UUIDs (written by ``dashboards/make_assets.py``); the
database URI is not in them but taken from the environment (``PEERPOOL_SERVING``, the serving
DuckDB file) when they are imported, and the database is opened read-only with DuckDB's external
access disabled. Migration, import and provisioning run in one process in Superset's app context
(``dashboards/provision.py``). See docs/dashboards.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml

from peerpool.config.load import load_exchange
from peerpool.errors import PeerpoolError

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "dashboards" / "assets"
SECURITY = REPO / "dashboards" / "security.yaml"
SUPERSET_BIN = REPO / ".venvs" / "superset" / "bin"
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


class DashboardsError(PeerpoolError):
    exit_code = 9


def serving_uri(serving: Path) -> str:
    """SQLAlchemy URI of the serving file; read-only and external access off are set in the YAML extra."""
    return f"duckdb:///{serving.resolve()}"


def superset_env(var: Path, serving: Path) -> dict[str, str]:
    key = os.environ.get("SUPERSET_SECRET_KEY", "")
    if len(key) < 32:
        raise DashboardsError(
            "SUPERSET_SECRET_KEY is not set (or shorter than 32 characters); "
            "set it to a long random string (the demo generates one in var/demo/credentials.json)"
        )
    return {
        **os.environ,
        "SUPERSET_CONFIG_PATH": str(REPO / "dashboards" / "superset_config.py"),
        "PEERPOOL_SUPERSET_HOME": str(var / "superset"),
        "PEERPOOL_SERVING_URI": serving_uri(serving),
        "FLASK_APP": "superset",
    }


def _fill(value: Any, env: dict[str, str], source: Path) -> Any:
    if isinstance(value, str):
        unknown = sorted({name for name in PLACEHOLDER.findall(value) if name not in env})
        if unknown:
            raise DashboardsError(f"{source.relative_to(REPO)} needs {unknown} set in the environment")
        return PLACEHOLDER.sub(lambda match: env[match.group(1)], value)
    if isinstance(value, dict):
        return {key: _fill(item, env, source) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, env, source) for item in value]
    return value


def render_assets(target: Path, env: dict[str, str]) -> int:
    """Copy the YAML assets, replacing ${VARIABLE} placeholders in values from the environment.

    Substitution happens on parsed values, so a path with YAML-special characters stays one string.
    """
    count = 0
    for source in sorted(ASSETS.rglob("*.yaml")):
        try:
            data = yaml.safe_load(source.read_text())
        except yaml.YAMLError as exc:
            raise DashboardsError(f"{source.relative_to(REPO)} is not valid YAML: {exc}") from exc
        out = target / source.relative_to(ASSETS)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(_fill(data, env, source), sort_keys=False))
        count += 1
    if count == 0:
        raise DashboardsError(f"no YAML assets under {ASSETS}: the checkout is incomplete")
    return count


def _load_security() -> dict[str, Any]:
    try:
        rules = yaml.safe_load(SECURITY.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DashboardsError(f"{SECURITY.relative_to(REPO)}: {exc}") from exc
    if not isinstance(rules, dict) or not isinstance(rules.get("member_datasets"), dict):
        raise DashboardsError(
            f"{SECURITY.relative_to(REPO)}: needs a 'member_datasets' mapping {{table: [columns]}}"
        )
    return rules


def _save_credentials(path: Path, creds: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(creds, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def security_spec(config: Path, var: Path) -> dict[str, Any]:
    """Roles, RLS and users from the exchange configuration and dashboards/security.yaml.

    Passwords are generated once per user and kept in VAR/credentials.json (mode 0600, beside the
    demo's other secrets); nothing has a default password.
    """
    exchange = load_exchange(config)
    rules = _load_security()
    creds_path = var / "credentials.json"
    creds: dict[str, Any] = json.loads(creds_path.read_text()) if creds_path.exists() else {}
    passwords: dict[str, str] = creds.setdefault("member_passwords", {})
    users = []
    members = []
    for member in exchange.members:
        role = f"member_{member.id}"
        members.append({"id": member.id, "role": role})
        username = member.id.lower()
        passwords.setdefault(username, secrets.token_urlsafe(12))
        users.append(
            {"username": username, "password": passwords[username], "first_name": member.name[:60],
             "roles": ["peerpool_viewer", role]}
        )  # fmt: skip
    for username, roles in (("purchasing", ["peerpool_purchasing"]), ("operator", ["peerpool_operator"])):
        passwords.setdefault(username, secrets.token_urlsafe(12))
        users.append({"username": username, "password": passwords[username], "roles": roles})
    _save_credentials(creds_path, creds)
    totals = rules.get("member_totals_datasets") or []
    shared = totals if exchange.billing.member_visibility == "totals" else []
    return {
        "members": members,
        "member_datasets": rules["member_datasets"],
        "member_rows_not_granted": rules.get("member_rows_not_granted") or {},
        "shared_datasets_for_members": shared,
        "purchasing_datasets": rules.get("purchasing_datasets") or [],
        "dashboards": rules.get("dashboards") or {},
        "users": users,
        "admin_password": os.environ.get("SUPERSET_ADMIN_PASSWORD") or creds.get("superset_admin_password"),
    }


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def setup(var: Path, config: Path, serving: Path, force: bool = False) -> str:
    """Migrate, init, import the assets and provision security; a no-op when nothing changed.

    The stamp covers the assets, the security spec (members, passwords), the serving path and the
    code that applies them, so a second run with nothing changed costs no Superset call at all.
    """
    env = superset_env(var, serving)
    home = var / "superset"
    home.mkdir(parents=True, exist_ok=True)
    spec = security_spec(config, var)
    if not spec["admin_password"]:
        raise DashboardsError("no admin password: set SUPERSET_ADMIN_PASSWORD (the demo generates one)")
    code = [REPO / "dashboards" / "provision.py", REPO / "dashboards" / "superset_config.py", Path(__file__)]
    stamp_path = home / ".peerpool-stamp"
    stamp = _digest(
        *(p.read_bytes() for p in sorted(ASSETS.rglob("*.yaml"))),
        *(p.read_bytes() for p in code),
        json.dumps(spec, sort_keys=True).encode(),
        str(serving.resolve()).encode(),
    )
    metadata_db = home / "superset.db"
    if not force and metadata_db.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        return "dashboards already imported and provisioned"
    if not serving.exists():
        raise DashboardsError(f"{serving} does not exist: run 'peerpool build' first (or pass --serving)")
    with tempfile.TemporaryDirectory() as tmp:
        assets = Path(tmp) / "assets"
        render_assets(assets, env)
        spec_path = Path(tmp) / "spec.json"
        spec_path.touch(mode=0o600)
        spec_path.write_text(json.dumps({**spec, "assets_dir": str(assets)}))
        proc = subprocess.run(
            [str(SUPERSET_BIN / "python"), str(REPO / "dashboards" / "provision.py"), str(spec_path)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-25:])
        raise DashboardsError(f"importing and provisioning the dashboards failed:\n{tail}")
    result = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROVISION-RESULT ")), "")
    stamp_path.write_text(stamp)
    return result.removeprefix("PROVISION-RESULT ")


@click.group()
def dashboards() -> None:
    """Superset dashboards: import the assets, provision roles and users, serve on 127.0.0.1."""


_var = click.option(
    "--var", type=click.Path(path_type=Path), default=REPO / "var" / "demo", show_default=True,
    envvar="PEERPOOL_DEMO_VAR", help="where Superset keeps its metadata and the generated credentials",
)  # fmt: skip
_config = click.option(
    "--config", type=click.Path(path_type=Path, exists=True), envvar="PEERPOOL_CONFIG", required=True
)
_serving = click.option(
    "--serving", type=click.Path(path_type=Path), envvar="PEERPOOL_SERVING", default=None,
    help="the serving DuckDB file (default: $PEERPOOL_WAREHOUSE/serving.duckdb)",
)  # fmt: skip


def _serving_path(serving: Path | None) -> Path:
    if serving is not None:
        return serving
    warehouse = os.environ.get("PEERPOOL_WAREHOUSE", str(REPO / "var" / "warehouse"))
    return Path(warehouse) / "serving.duckdb"


@dashboards.command("setup")
@_var
@_config
@_serving
@click.option("--force", is_flag=True, help="import and provision even when nothing changed")
def setup_command(var: Path, config: Path, serving: Path | None, force: bool) -> None:
    """Migrate Superset's metadata, import the dashboards, create roles, RLS rules and users."""
    click.echo(setup(var.resolve(), config, _serving_path(serving), force))


@dashboards.command("import")
@_var
@_config
@_serving
def import_command(var: Path, config: Path, serving: Path | None) -> None:
    """Import (overwrite) the YAML assets and re-provision security."""
    click.echo(setup(var.resolve(), config, _serving_path(serving), force=True))


@dashboards.command("serve")
@_var
@_serving
@click.option("--port", default=8088, show_default=True)
def serve_command(var: Path, serving: Path | None, port: int) -> None:
    """Run Superset on 127.0.0.1 (foreground)."""
    env = superset_env(var.resolve(), _serving_path(serving))
    binary = shutil.which("superset", path=str(SUPERSET_BIN)) or str(SUPERSET_BIN / "superset")
    os.execve(binary, [binary, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"], env)
