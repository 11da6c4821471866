"""Create peerpool's Superset roles, row-level-security rules and users (run in the superset env).

    SUPERSET_CONFIG_PATH=dashboards/superset_config.py python dashboards/provision.py SPEC.json

SPEC.json (written by ``peerpool dashboards setup`` from the exchange configuration and
``dashboards/security.yaml``)::

    {"members": [{"id": "AS64500", "role": "member_AS64500"}],
     "member_datasets": {"fct_member_traffic_daily": ["member_id"], ...},
     "shared_datasets_for_members": ["fct_exchange_traffic_daily"],
     "purchasing_datasets": [...], "operator_datasets": "all",
     "users": [{"username": "as64500", "password": "...", "first_name": "...", "roles": ["member_AS64500"]}]}

Why this shape (see docs/dashboards.md): each member user holds ``peerpool_viewer`` (Gamma's
read permissions without any write permission on charts, dashboards or tags and without SQL Lab)
plus a thin ``member_<id>`` role that alone grants ``datasource_access`` to the member datasets
and carries that member's RLS rules. A user never gets dataset access without its member role,
so no member can see rows that are not its own. The script is idempotent: it rebuilds roles and
rules from the spec every time and never changes an existing user's password.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

MEMBER_ID = re.compile(r"^[A-Za-z0-9_-]+$")
WRITE_VIEWS = {"Chart", "Dashboard", "Tag", "SavedQuery", "Annotation", "CssTemplate", "ReportSchedule"}
DROP_PERMISSIONS = {"can_write", "can_export", "can_share_chart", "can_share_dashboard", "can_tag"}


def _clause(columns: list[str], member_id: str) -> str:
    if not MEMBER_ID.match(member_id):
        raise ValueError(f"member id {member_id!r} has characters outside [A-Za-z0-9_-]; fix exchange.toml")
    return " OR ".join(f"{column} = '{member_id}'" for column in columns)


def _viewer_keeps(pv: Any) -> bool:
    permission, view = pv.permission.name, pv.view_menu.name
    if permission in DROP_PERMISSIONS and view in WRITE_VIEWS:
        return False
    return permission not in {"can_sqllab", "can_execute_sql_query"} and "SQL" not in view


def provision(spec: dict[str, Any]) -> dict[str, int]:
    from superset import db, security_manager
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable

    sm = security_manager
    datasets = {table.table_name: table for table in db.session.query(SqlaTable).all()}
    missing = [name for name in spec["member_datasets"] if name not in datasets]
    if missing:
        raise SystemExit(f"datasets {missing} are not imported: run 'peerpool dashboards import' first")

    def access(table: SqlaTable) -> Any:
        return sm.add_permission_view_menu("datasource_access", table.get_perm())

    # peerpool_viewer: Gamma's read permissions, nothing that writes or shares, no SQL Lab.
    gamma = sm.find_role("Gamma")
    viewer = sm.add_role("peerpool_viewer")
    viewer.permissions = [pv for pv in gamma.permissions if _viewer_keeps(pv)]
    shared = [datasets[n] for n in spec.get("shared_datasets_for_members", []) if n in datasets]

    # Rebuild every rule this script owns (group key 'peerpool_member').
    for rule in db.session.query(RowLevelSecurityFilter).filter_by(group_key="peerpool_member").all():
        db.session.delete(rule)
    db.session.flush()

    member_roles = 0
    for member in spec["members"]:
        role = sm.add_role(member["role"])
        role.permissions = [access(datasets[name]) for name in spec["member_datasets"]] + [
            access(t) for t in shared
        ]
        # one rule per distinct clause shape (tables filtered on the same columns share a rule)
        shapes: dict[tuple[str, ...], list[SqlaTable]] = {}
        for name, columns in spec["member_datasets"].items():
            shapes.setdefault(tuple(columns), []).append(datasets[name])
        for columns, tables in shapes.items():
            rule = RowLevelSecurityFilter(
                name=f"{member['role']} {'/'.join(columns)}",
                filter_type="Regular",
                group_key="peerpool_member",
                clause=_clause(list(columns), member["id"]),
                description=f"rows of member {member['id']} only",
            )
            rule.tables = tables
            rule.roles = [role]
            db.session.add(rule)
        member_roles += 1

    purchasing = sm.add_role("peerpool_purchasing")
    purchasing.permissions = list(viewer.permissions) + [
        access(datasets[n]) for n in spec.get("purchasing_datasets", []) if n in datasets
    ]
    operator = sm.add_role("peerpool_operator")
    operator.permissions = list(viewer.permissions) + [access(t) for t in datasets.values()]

    created = 0
    for user in spec.get("users", []):
        roles = [sm.find_role(name) for name in user["roles"]]
        if any(r is None for r in roles):
            raise SystemExit(f"user {user['username']}: unknown role in {user['roles']}")
        existing = sm.find_user(username=user["username"])
        if existing is None:
            sm.add_user(
                user["username"],
                user.get("first_name", user["username"]),
                user.get("last_name", "peerpool"),
                f"{user['username']}@peerpool.invalid",
                roles,
                password=user["password"],
            )
            created += 1
        else:
            existing.roles = roles
    db.session.commit()
    return {"member_roles": member_roles, "users_created": created, "datasets": len(datasets)}


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        result = provision(spec)
    print("PROVISION-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
