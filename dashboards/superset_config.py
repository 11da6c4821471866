"""Superset configuration for peerpool (loaded through SUPERSET_CONFIG_PATH).

Everything secret or machine-specific comes from the environment, set by ``peerpool dashboards``
and the demo: SUPERSET_SECRET_KEY (required, no default), PEERPOOL_SUPERSET_HOME (metadata DB,
cache), PEERPOOL_SERVING (the serving DuckDB file, opened read-only).

Security choices (see docs/dashboards.md): row-level security on; member roles get Gamma plus
a thin role per member holding only ``datasource_access`` on member datasets; the "related"
endpoints that would list every user and role are filtered; no public role; CSRF on.
"""

from __future__ import annotations

import os
from typing import Any

_secret = os.environ.get("SUPERSET_SECRET_KEY", "")
if len(_secret) < 32:
    raise RuntimeError(
        "SUPERSET_SECRET_KEY is not set (or shorter than 32 characters): "
        "start Superset through 'peerpool dashboards serve' or set a long random key"
    )
SECRET_KEY = _secret

_home = os.environ.get("PEERPOOL_SUPERSET_HOME", os.path.join(os.getcwd(), "var", "superset"))
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.path.join(_home, 'superset.db')}"
DATA_DIR = _home

FEATURE_FLAGS = {
    "ROW_LEVEL_SECURITY": True,
    "DASHBOARD_RBAC": True,
    "ENABLE_TEMPLATE_PROCESSING": False,
    # the default, stated: a subquery in a custom SQL metric, column or filter would read other
    # tables (other members' rows) past the dataset's row-level security
    "ALLOW_ADHOC_SUBQUERY": False,
}

# Nobody sees anything without logging in.
PUBLIC_ROLE_LIKE = None
AUTH_ROLE_PUBLIC = "Public"
WTF_CSRF_ENABLED = True
TALISMAN_ENABLED = False  # served on 127.0.0.1 over plain HTTP in the demo
SESSION_COOKIE_SAMESITE = "Lax"

# Only our own read-only DuckDB database may be registered; no SQLite file access from SQL Lab.
PREVENT_UNSAFE_DB_CONNECTIONS = True

CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = CACHE_CONFIG
ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 120

_ADMIN_ROLES = {"Admin", "peerpool_operator"}


def _is_admin() -> bool:
    from flask import g

    user = getattr(g, "user", None)
    return bool(user and any(role.name in _ADMIN_ROLES for role in getattr(user, "roles", [])))


def _only_self(query: Any) -> Any:
    """/api/v1/*/related/{owners,created_by,changed_by} would list every user (member names)."""
    from flask import g
    from superset import security_manager

    if _is_admin():
        return query
    user_model = security_manager.user_model
    return query.filter(user_model.id == getattr(getattr(g, "user", None), "id", -1))


def _no_roles(query: Any) -> Any:
    """/api/v1/*/related/roles would list every member's role name."""
    from superset import security_manager

    if _is_admin():
        return query
    return query.filter(security_manager.role_model.id == -1)


EXTRA_RELATED_QUERY_FILTERS = {"user": _only_self, "role": _no_roles}


# --------------------------------------------------------------------------------------------------
# Chart speed: the time-series pivot without pandas' per-group Python loop
# --------------------------------------------------------------------------------------------------
# Every time-series chart (ours and the ones the browser builds) ends in a "pivot" post-processing
# step whose aggregate is {"operator": "mean"}. Superset turns that into functools.partial(np.mean),
# which pandas cannot map to its compiled group-by, so it calls np.mean once per group in Python:
# ~55% of a 7-day 5-minute chart's time (measured with py-spy: 0.55 s of 0.9 s for 2,016 points x
# 2 metrics). The SQL has already grouped by the chart's x axis and series, so every pivot group
# holds one row, and pandas' own "mean" gives the same number (NULL stays NULL). Only a bare mean
# is swapped; any other operator or any options keep Superset's function.


def _compiled_mean_in_pivot() -> None:
    import importlib
    from functools import partial

    import numpy as np
    from pandas import NamedAgg

    # the package re-exports the function ``pivot`` under the module's name: import the module itself
    pivot_module = importlib.import_module("superset.utils.pandas_postprocessing.pivot")

    original = pivot_module._get_aggregate_funcs
    if getattr(original, "_peerpool_compiled_mean", False):
        return

    def aggregate_funcs(df: Any, aggregates: dict[str, dict[str, Any]]) -> dict[str, Any]:
        funcs: dict[str, Any] = original(df, aggregates)
        for name, agg in funcs.items():
            func = agg.aggfunc
            bare = isinstance(func, partial) and not func.args and not func.keywords
            if bare and func.func in (np.mean, np.nanmean):
                funcs[name] = NamedAgg(column=agg.column, aggfunc="mean")
        return funcs

    aggregate_funcs._peerpool_compiled_mean = True  # type: ignore[attr-defined]
    pivot_module._get_aggregate_funcs = aggregate_funcs


# --------------------------------------------------------------------------------------------------
# Metadata database: SQLite in write-ahead-log mode
# --------------------------------------------------------------------------------------------------
# Superset writes an audit row (who fetched which chart) to its metadata database on every request
# and commits it: with SQLite's default rollback journal and full sync that commit was ~20% of a
# chart request (py-spy), and a second process (provisioning, the demo's CLI calls) hit "database is
# locked". WAL lets readers and one writer work side by side; synchronous=NORMAL is the setting the
# SQLite documentation gives for WAL (the database stays consistent on a crash; the last audit rows
# may be lost on a power failure, never the dashboards or the users).


def _sqlite_wal(app: Any) -> None:
    from sqlalchemy import event
    from superset.extensions import db

    engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened before the listener get the pragmas on their next use


def FLASK_APP_MUTATOR(app: Any) -> None:  # Superset reads this name
    _compiled_mean_in_pivot()
    _sqlite_wal(app)
