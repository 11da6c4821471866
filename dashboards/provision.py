"""Import peerpool's Superset assets and create its roles, row-level-security rules and users.

Runs in the superset environment, in Superset's app context (``peerpool dashboards setup`` calls it)::

    SUPERSET_CONFIG_PATH=dashboards/superset_config.py \\
        .venvs/superset/bin/python dashboards/provision.py SPEC.json

SPEC.json (written by ``peerpool dashboards setup`` from exchange.toml and ``dashboards/security.yaml``)::

    {"assets_dir": "/tmp/.../assets",            # rendered YAML (URI filled in)
     "admin_password": "...",                     # used only when the admin user does not exist yet
     "members": [{"id": "AS64500", "role": "member_AS64500"}],
     "member_datasets": {"fct_member_traffic_daily": ["member_id"], ...},
     "member_rows_not_granted": {"v_port_utilisation_daily": ["member_id"]},
     "shared_datasets_for_members": [...], "purchasing_datasets": [...],
     "dashboards": {"member": ["member", "peerpool_operator"], ...},
     "users": [{"username": "as64500", "password": "...", "first_name": "...", "roles": [...]}]}

Why this shape (see docs/dashboards.md): each member user holds ``peerpool_viewer`` (Gamma's read
permissions without any permission that writes, shares or exports assets, and without SQL Lab) plus
a thin ``member_<id>`` role that alone grants ``datasource_access`` to the member datasets and carries
that member's RLS rules. No role without RLS rules grants a member dataset to a member user, so no
member can see rows that are not its own. The assets are imported with Superset's own
``ImportAssetsCommand`` (the REST ``/api/v1/assets/import/`` path: everything overwritten, query
contexts re-pointed at the new dataset ids, errors raised instead of logged). The script is
idempotent: it rebuilds roles and rules from the spec each time and never changes an existing
user's password; member roles of members no longer in the spec are removed and their users
deactivated.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

MEMBER_ID = re.compile(r"^[A-Za-z0-9_-]+$")
MEMBER_ROLE_PREFIX = "member_"
RULE_GROUP = "peerpool_member"
# assets that write, share or export: a member must not save a chart other members could open
WRITE_VIEWS = {
    "Chart", "Dashboard", "Tag", "SavedQuery", "Annotation", "AnnotationLayerRestApi", "CssTemplate",
    "ReportSchedule", "Dataset", "Database", "Query", "TableSchemaView", "Row Level Security",
    "Themes", "Theme",
}  # fmt: skip
DROP_PERMISSIONS = {
    "can_write",
    "can_export",
    "can_share_chart",
    "can_share_dashboard",
    "can_tag",
    "can_delete",
}
SQL_PERMISSIONS = {"can_sqllab", "can_execute_sql_query", "can_sqllab_history", "can_sqllab_table_viz",
                   "can_estimate_query_cost", "can_format_sql", "can_get_results", "can_export_csv",
                   "can_activate", "can_sqllab_viz"}  # fmt: skip


def _clause(columns: list[str], member_id: str) -> str:
    if not MEMBER_ID.match(member_id):
        raise SystemExit(f"member id {member_id!r} has characters outside [A-Za-z0-9_-]; fix exchange.toml")
    return " OR ".join(f"{column} = '{member_id}'" for column in columns)


def viewer_keeps(permission: str, view: str) -> bool:
    """Gamma's permissions a member keeps: read only; no write/share/export, no SQL Lab."""
    if permission in DROP_PERMISSIONS and view in WRITE_VIEWS:
        return False
    return not (permission in SQL_PERMISSIONS or "SQL" in view or view in {"SqlLab", "Query", "SavedQuery"})


def _read_assets(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): path.read_text() for path in sorted(directory.rglob("*.yaml"))}


def _asset_uuids(contents: dict[str, str]) -> dict[str, set[str]]:
    import yaml

    found: dict[str, set[str]] = {"databases": set(), "datasets": set(), "charts": set(), "dashboards": set()}
    for name, text in contents.items():
        kind = name.split("/", 1)[0]
        if kind in found:
            found[kind].add(str(yaml.safe_load(text)["uuid"]))
    return found


def ensure_admin(password: str | None) -> Any:
    from superset import security_manager as sm

    admin = sm.find_user(username="admin")
    if admin is None:
        if not password:
            raise SystemExit("no admin user yet and no admin password: set SUPERSET_ADMIN_PASSWORD")
        admin = sm.add_user("admin", "admin", "peerpool", "admin@peerpool.invalid", sm.find_role("Admin"),
                            password=password)  # fmt: skip
        if not admin:
            raise SystemExit("could not create the admin user (see the Superset log above)")
    return admin


def import_assets(directory: Path, admin: Any) -> dict[str, int]:
    """Import (overwrite) every asset as the admin user, then check each one is really there."""
    from flask import g
    from superset import db
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    contents = _read_assets(directory)
    g.user = admin
    try:
        ImportAssetsCommand(contents).run()
    except Exception as exc:  # show the validation messages, not only "Error importing assets"
        messages = getattr(exc, "normalized_messages", None)
        detail = messages() if callable(messages) else str(exc)
        raise SystemExit(f"importing the dashboards failed: {detail} {exc.__cause__!r}") from exc
    wanted = _asset_uuids(contents)
    models = {"databases": Database, "datasets": SqlaTable, "charts": Slice, "dashboards": Dashboard}
    counts = {}
    for kind, model in models.items():
        present = {str(row.uuid) for row in db.session.query(model).all()}
        missing = wanted[kind] - present
        if missing:
            raise SystemExit(f"after the import, {kind} {sorted(missing)} are missing; see the Superset log")
        counts[kind] = len(wanted[kind])
    return counts


def provision(spec: dict[str, Any]) -> dict[str, int]:
    from superset import db, security_manager
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
    from superset.models.dashboard import Dashboard

    sm = security_manager
    admin = ensure_admin(spec.get("admin_password"))
    counts = import_assets(Path(spec["assets_dir"]), admin) if spec.get("assets_dir") else {}

    datasets = {table.table_name: table for table in db.session.query(SqlaTable).all()}
    named = [
        *spec["member_datasets"], *spec.get("member_rows_not_granted", {}),
        *spec.get("shared_datasets_for_members", []), *spec.get("purchasing_datasets", []),
    ]  # fmt: skip
    missing = sorted({name for name in named if name not in datasets})
    if missing:
        raise SystemExit(f"datasets {missing} named in dashboards/security.yaml are not imported")

    def access(table: SqlaTable) -> Any:
        return sm.add_permission_view_menu("datasource_access", table.get_perm())

    # peerpool_viewer: Gamma's read permissions, nothing that writes or shares, no SQL Lab.
    gamma = sm.find_role("Gamma")
    viewer = sm.add_role("peerpool_viewer")
    viewer.permissions = [
        pv for pv in gamma.permissions if viewer_keeps(pv.permission.name, pv.view_menu.name)
    ]

    # Rebuild every rule this script owns.
    for rule in db.session.query(RowLevelSecurityFilter).filter_by(group_key=RULE_GROUP).all():
        db.session.delete(rule)
    db.session.flush()

    rls_tables = {**spec["member_datasets"], **spec.get("member_rows_not_granted", {})}
    shapes: dict[tuple[str, ...], list[SqlaTable]] = {}
    for name, columns in rls_tables.items():
        shapes.setdefault(tuple(columns), []).append(datasets[name])
    granted = [datasets[name] for name in spec["member_datasets"]]
    granted += [datasets[name] for name in spec.get("shared_datasets_for_members", [])]

    wanted_roles = set()
    member_roles = []
    for member in spec["members"]:
        role = sm.add_role(member["role"])
        wanted_roles.add(role.name)
        member_roles.append(role)
        role.permissions = [access(table) for table in granted]
        for columns, tables in shapes.items():
            rule = RowLevelSecurityFilter(
                name=f"{member['role']} {'/'.join(columns)}",
                filter_type="Regular",
                group_key=RULE_GROUP,
                clause=_clause(list(columns), member["id"]),
                description=f"rows of member {member['id']} only",
            )
            rule.tables = list(tables)
            rule.roles = [role]
            db.session.add(rule)

    # A member that left: drop its role, deactivate its users (their history stays in the marts).
    removed = 0
    for role in list(db.session.query(sm.role_model).all()):
        if role.name.startswith(MEMBER_ROLE_PREFIX) and role.name not in wanted_roles:
            for user in db.session.query(sm.user_model).filter(sm.user_model.roles.contains(role)).all():
                user.active = False
                user.roles = [r for r in user.roles if r.id != role.id]
            db.session.delete(role)
            removed += 1

    purchasing = sm.add_role("peerpool_purchasing")
    purchasing.permissions = list(viewer.permissions) + [
        access(datasets[name]) for name in spec.get("purchasing_datasets", [])
    ]
    operator = sm.add_role("peerpool_operator")
    operator.permissions = list(viewer.permissions) + [access(table) for table in datasets.values()]

    # Dashboard role-based access: who may open which dashboard.
    roles_by_name = {"peerpool_purchasing": purchasing, "peerpool_operator": operator}
    for slug, names in spec.get("dashboards", {}).items():
        dashboard = db.session.query(Dashboard).filter_by(slug=slug).one_or_none()
        if dashboard is None:
            raise SystemExit(f"dashboard {slug!r} named in dashboards/security.yaml is not imported")
        roles = []
        for name in names:
            if name == "member":
                roles.extend(member_roles)
            elif name == "member_totals":
                # members open it only when they may read the totals (member_visibility = "totals"):
                # a dashboard's roles may query the datasets of its charts
                if spec.get("shared_datasets_for_members"):
                    roles.extend(member_roles)
            elif name in roles_by_name:
                roles.append(roles_by_name[name])
            else:
                raise SystemExit(f"dashboard {slug!r}: unknown role {name!r} in dashboards/security.yaml")
        dashboard.roles = roles

    created = 0
    for user in spec.get("users", []):
        roles = [sm.find_role(name) for name in user["roles"]]
        if any(r is None for r in roles):
            raise SystemExit(f"user {user['username']}: unknown role in {user['roles']}")
        existing = sm.find_user(username=user["username"])
        if existing is None:
            added = sm.add_user(
                user["username"],
                user.get("first_name", user["username"]),
                user.get("last_name", "peerpool"),
                f"{user['username']}@peerpool.invalid",
                roles,
                password=user["password"],
            )
            if not added:
                raise SystemExit(f"could not create user {user['username']} (see the Superset log above)")
            created += 1
        else:
            existing.roles = roles
            existing.active = True
    db.session.commit()
    return {**counts, "member_roles": len(member_roles), "member_roles_removed": removed,
            "users_created": created}  # fmt: skip


def migrate_and_init() -> None:
    """What ``superset db upgrade`` and ``superset init`` do, in this process (saves two app starts)."""
    from flask_migrate import upgrade
    from superset import appbuilder, db, security_manager

    upgrade()
    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()
    db.session.commit()


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        if spec.get("migrate", True):
            migrate_and_init()
        result = provision(spec)
    print("PROVISION-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
