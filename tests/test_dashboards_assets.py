"""The Superset assets as files (no server): references, marts, member columns, placeholders.

Independent sources: the marts' SQL files and their dbt contract (``_marts__models.yml``, written
by the dbt models' author), and Superset's import rules from the stack notes (every CHART node
needs ``meta.chartId`` and ``meta.uuid``, datasets ``database_uuid``, charts ``dataset_uuid`` and
``params.datasource = "<dataset uuid>__table"``).
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from peerpool import dashboards as cli_dashboards

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "dashboards" / "assets"
MARTS = REPO / "dbt" / "models" / "marts"
SECURITY = yaml.safe_load((REPO / "dashboards" / "security.yaml").read_text())
MEMBER_COLUMNS = {"member_id", "src_member_id", "dst_member_id"}


def _load(kind: str) -> dict[str, dict[str, Any]]:
    """Relative path -> parsed YAML of every asset of one kind (databases, datasets, charts, dashboards)."""
    return {
        str(p.relative_to(ASSETS)): yaml.safe_load(p.read_text())
        for p in sorted((ASSETS / kind).rglob("*.yaml"))
    }


DATABASES = _load("databases")
DATASETS = _load("datasets")
CHARTS = _load("charts")
DASHBOARDS = _load("dashboards")
DATASET_BY_UUID = {d["uuid"]: d for d in DATASETS.values()}
DATASET_BY_NAME = {d["table_name"]: d for d in DATASETS.values()}
CHART_BY_UUID = {c["uuid"]: c for c in CHARTS.values()}
CONTRACT = {
    model["name"]: model for model in yaml.safe_load((MARTS / "_marts__models.yml").read_text())["models"]
}


def make_assets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_assets", REPO / "dashboards" / "make_assets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_assets"] = module
    spec.loader.exec_module(module)
    return module


def final_select_columns(sql: str) -> set[str] | None:
    """Output column names of a mart's last top-level SELECT (None when it selects ``*``).

    A small parser written for this test, independent of dbt: strips comments and Jinja, finds the
    last SELECT outside parentheses, splits its list on top-level commas, takes each alias.
    """
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\{\{.*?\}\}", "X", sql, flags=re.S)
    sql = re.sub(r"\{%.*?%\}", "", sql, flags=re.S)
    depth, tokens = 0, []
    for match in re.finditer(r"\(|\)|\bselect\b|\bfrom\b|,", sql, flags=re.I):
        text = match.group(0).lower()
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0:
            tokens.append((text, match.start(), match.end()))
    selects = [t for t in tokens if t[0] == "select"]
    start = selects[-1][2]
    end = next((t[1] for t in tokens if t[0] == "from" and t[1] > start), len(sql))
    cuts = [start] + [t[2] for t in tokens if t[0] == "," and start < t[1] < end] + [end]
    names = set()
    for a, b in itertools.pairwise(cuts):
        item = sql[a:b].strip().rstrip(",").strip()
        if item.endswith("*"):
            return None
        alias = re.search(r"\bas\s+([a-z_][a-z0-9_]*)\s*$", item, flags=re.I)
        names.add(alias.group(1) if alias else re.split(r"[.\s]", item)[-1])
    return {n.lower() for n in names}


# ---- the committed YAML is what make_assets.py writes -------------------------------------------


def test_committed_assets_are_what_make_assets_writes() -> None:
    module = make_assets()
    files = module.render(module.contract_columns())
    on_disk = {str(p.relative_to(ASSETS)): p.read_text() for p in ASSETS.rglob("*.yaml")}
    assert set(files) == set(on_disk), "run: .venvs/core/bin/python dashboards/make_assets.py"
    stale = sorted(name for name in files if files[name] != on_disk[name])
    assert not stale, f"{stale} differ from make_assets.py's output; run dashboards/make_assets.py"


def test_metadata_says_assets_bundle() -> None:
    metadata = yaml.safe_load((ASSETS / "metadata.yaml").read_text())
    assert metadata["type"] == "assets" and metadata["version"] == "1.0.0"


# ---- references ----------------------------------------------------------------------------------


def test_uuids_are_unique_across_all_assets() -> None:
    uuids = [a["uuid"] for group in (DATABASES, DATASETS, CHARTS, DASHBOARDS) for a in group.values()]
    assert len(uuids) == len(set(uuids))


def test_every_dataset_names_an_existing_database() -> None:
    database_uuids = {d["uuid"] for d in DATABASES.values()}
    for path, dataset in DATASETS.items():
        assert dataset["database_uuid"] in database_uuids, path


def test_every_chart_names_its_dataset_three_ways() -> None:
    for path, chart in CHARTS.items():
        dataset_uuid = chart["dataset_uuid"]
        assert dataset_uuid in DATASET_BY_UUID, path
        assert chart["params"]["datasource"] == f"{dataset_uuid}__table", path
        assert chart["viz_type"] == chart["params"]["viz_type"], path
        context = json.loads(chart["query_context"])
        assert context["form_data"] == chart["params"], path


def _chart_nodes(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        node
        for node in dashboard["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]


def test_every_chart_node_has_chart_id_and_existing_uuid() -> None:
    for path, dashboard in DASHBOARDS.items():
        nodes = _chart_nodes(dashboard)
        assert nodes, path
        ids = []
        for node in nodes:
            meta = node["meta"]
            assert isinstance(meta.get("chartId"), int), (path, node["id"])
            assert meta.get("uuid") in CHART_BY_UUID, (path, node["id"])
            ids.append(meta["chartId"])
        assert len(ids) == len(set(ids)), path


def test_position_tree_is_consistent() -> None:
    for path, dashboard in DASHBOARDS.items():
        position = dashboard["position"]
        for node_id, node in position.items():
            if not isinstance(node, dict):
                continue
            assert node["id"] == node_id, path
            for child in node.get("children", []):
                assert child in position, (path, node_id, child)
                assert position[child]["parents"][-1] == node_id, (path, child)
        assert position["ROOT_ID"]["children"] == ["GRID_ID"]


def test_every_chart_is_on_a_dashboard() -> None:
    placed = {node["meta"]["uuid"] for d in DASHBOARDS.values() for node in _chart_nodes(d)}
    assert set(CHART_BY_UUID) == placed


def test_chart_columns_and_metrics_exist_in_their_dataset() -> None:
    for path, chart in CHARTS.items():
        dataset = DATASET_BY_UUID[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        metrics = {m["metric_name"] for m in dataset["metrics"]}
        params = chart["params"]
        groupby = params.get("groupby") or []
        used_columns = [*([groupby] if isinstance(groupby, str) else groupby), *params.get("all_columns", [])]
        if params.get("x_axis"):
            used_columns.append(params["x_axis"])
        assert set(used_columns) <= columns, (path, set(used_columns) - columns)
        used_metrics = [*params.get("metrics", []), *([params["metric"]] if "metric" in params else [])]
        assert used_metrics or params.get("query_mode") == "raw", path
        assert set(used_metrics) <= metrics, (path, set(used_metrics) - metrics)
        for query in json.loads(chart["query_context"])["queries"]:
            for column in query["columns"]:
                name = column["sqlExpression"] if isinstance(column, dict) else column
                assert name in columns, (path, name)
            assert set(query["metrics"]) <= metrics, path
        for item in params.get("adhoc_filters", []):
            if item["expressionType"] == "SIMPLE":
                assert item["subject"] in columns, path
        if dataset["main_dttm_col"] is not None:
            assert dataset["main_dttm_col"] in columns, path


def test_temporal_axes_are_temporal_columns() -> None:
    for path, chart in CHARTS.items():
        if chart["viz_type"].startswith("echarts_timeseries") or chart["viz_type"] == "big_number":
            dataset = DATASET_BY_UUID[chart["dataset_uuid"]]
            column = next(c for c in dataset["columns"] if c["column_name"] == chart["params"]["x_axis"])
            assert column["is_dttm"], path


def test_five_minute_charts_show_a_bounded_window() -> None:
    """A year of a 5-minute mart is 105,120 points a series: such a chart must not ask for all of it."""
    for path, chart in CHARTS.items():
        dataset = DATASET_BY_UUID[chart["dataset_uuid"]]
        params = chart["params"]
        if dataset["table_name"].endswith("_5min") and params.get("x_axis") == "interval_start":
            assert params["time_range"] in ("Last day", "Last week", "Last month"), path
            (window,) = [f for f in params["adhoc_filters"] if f.get("operator") == "TEMPORAL_RANGE"]
            assert window["comparator"] == params["time_range"], path
            (query,) = json.loads(chart["query_context"])["queries"]
            assert {"col": "interval_start", "op": "TEMPORAL_RANGE", "val": params["time_range"]} in query[
                "filters"
            ]
            if params.get("groupby"):
                assert 0 < params["series_limit"] <= 20, path


# ---- datasets are marts --------------------------------------------------------------------------


def test_every_physical_dataset_is_a_mart_with_the_contract_columns() -> None:
    for path, dataset in DATASETS.items():
        if dataset["sql"]:
            continue
        table = dataset["table_name"]
        assert (MARTS / f"{table}.sql").is_file(), f"{path}: {table} is not a mart in dbt/models/marts/"
        assert dataset["schema"] == "main", path
        contract = [(c["name"], str(c["data_type"]).upper()) for c in CONTRACT[table]["columns"]]
        assert [(c["column_name"], c["type"]) for c in dataset["columns"]] == contract, path


def test_virtual_datasets_read_only_marts() -> None:
    for path, dataset in DATASETS.items():
        if not dataset["sql"]:
            continue
        tables = set(re.findall(r"\bmain\.([a-z_0-9]+)", dataset["sql"]))
        assert tables, path
        for table in tables:
            assert (MARTS / f"{table}.sql").is_file(), (path, table)
        assert not re.search(
            r"read_(csv|parquet|json)|\battach\b|\bcopy\b|\bpragma\b", dataset["sql"], re.I
        ), path


# ---- security.yaml -------------------------------------------------------------------------------


def test_member_datasets_carry_their_member_columns() -> None:
    """Each member column named in security.yaml is in the mart's contract and in its SQL's output."""
    member_data = {**SECURITY["member_datasets"], **SECURITY.get("member_rows_not_granted", {})}
    for table, columns in member_data.items():
        assert columns and set(columns) <= MEMBER_COLUMNS, table
        dataset = DATASET_BY_NAME[table]
        dataset_columns = {c["column_name"] for c in dataset["columns"]}
        assert set(columns) <= dataset_columns, table
        if dataset["sql"]:
            continue
        contract_columns = {c["name"] for c in CONTRACT[table]["columns"]}
        assert set(columns) <= contract_columns, table
        selected = final_select_columns((MARTS / f"{table}.sql").read_text())
        if selected is not None:
            assert set(columns) <= selected, (table, set(columns) - selected)


def test_final_select_parser_on_a_hand_written_query() -> None:
    sql = """with a as (select x, y from t) -- comment, with a comma
    select a.x, coalesce(y, 'u') as member_id, count(*) filter (where z) as n from a group by 1, 2"""
    assert final_select_columns(sql) == {"x", "member_id", "n"}
    assert final_select_columns("select loss.*, 1 as k from loss") is None


def test_every_dataset_with_member_rows_is_under_row_level_security() -> None:
    covered = set(SECURITY["member_datasets"]) | set(SECURITY.get("member_rows_not_granted", {}))
    for path, dataset in DATASETS.items():
        names = {c["column_name"] for c in dataset["columns"]}
        if names & MEMBER_COLUMNS:
            assert dataset["table_name"] in covered, f"{path} has member columns but no RLS in security.yaml"
            expected = sorted(names & MEMBER_COLUMNS)
            rule = {**SECURITY["member_datasets"], **SECURITY.get("member_rows_not_granted", {})}
            assert sorted(rule[dataset["table_name"]]) == expected, path


def test_members_never_get_virtual_datasets_or_member_rows_as_totals() -> None:
    virtual = {d["table_name"] for d in DATASETS.values() if d["sql"]}
    assert not virtual & set(SECURITY["member_datasets"])
    for table in SECURITY.get("member_totals_datasets") or []:
        assert table not in virtual, table
        assert (MARTS / f"{table}.sql").is_file(), table
        assert not {c["name"] for c in CONTRACT[table]["columns"]} & MEMBER_COLUMNS, table
    assert not set(SECURITY.get("member_rows_not_granted", {})) & set(SECURITY["member_datasets"])


def test_security_names_only_existing_datasets_and_dashboards() -> None:
    names = set(DATASET_BY_NAME)
    for key in (
        "member_datasets",
        "member_rows_not_granted",
        "purchasing_datasets",
        "member_totals_datasets",
    ):
        assert set(SECURITY.get(key) or []) <= names, key
    slugs = {d["slug"] for d in DASHBOARDS.values()}
    assert set(SECURITY["dashboards"]) == slugs
    for slug, roles in SECURITY["dashboards"].items():
        assert "peerpool_operator" in roles, slug
        assert set(roles) <= {"member", "member_totals", "peerpool_operator", "peerpool_purchasing"}, slug


def _dashboard_datasets(slug: str) -> set[str]:
    """Names of the datasets the charts of one dashboard read."""
    (dashboard,) = [d for d in DASHBOARDS.values() if d["slug"] == slug]
    return {
        DATASET_BY_UUID[CHART_BY_UUID[node["meta"]["uuid"]]["dataset_uuid"]]["table_name"]
        for node in _chart_nodes(dashboard)
    }


def test_dashboards_open_to_members_read_only_what_members_are_granted() -> None:
    """Dashboard role-based access lets a dashboard's roles query the datasets of its charts (Superset's
    raise_for_access): a dashboard members open must read only datasets their role grants anyway, and
    the one open with member_visibility = "totals" only the totals."""
    member_datasets = set(SECURITY["member_datasets"])
    totals = set(SECURITY.get("member_totals_datasets") or [])
    for slug, roles in SECURITY["dashboards"].items():
        if "member" in roles:
            assert _dashboard_datasets(slug) <= member_datasets, slug
        if "member_totals" in roles:
            assert _dashboard_datasets(slug) <= totals, slug
    open_with_totals = {slug for slug, roles in SECURITY["dashboards"].items() if "member_totals" in roles}
    assert open_with_totals == {"exchange"}
    assert _dashboard_datasets("exchange") == totals, "every totals dataset has a chart members can open"


# ---- dbt exposures name exactly the marts each dashboard reads -------------------------------------


def _marts_read(slug: str) -> set[str]:
    """Marts behind a dashboard: its physical datasets, and the tables its virtual datasets' SQL reads."""
    marts: set[str] = set()
    for name in _dashboard_datasets(slug):
        dataset = DATASET_BY_NAME[name]
        if dataset["sql"]:
            marts |= set(re.findall(r"\bmain\.([a-z_0-9]+)", dataset["sql"]))
        else:
            marts.add(name)
    return marts


def exposure_differences(exposures: list[dict[str, Any]]) -> list[str]:
    """Every way the dashboard exposures and the dashboards' marts disagree (empty: they match)."""
    problems = []
    dashboards = [e for e in exposures if e["type"] == "dashboard"]
    by_slug = {e["meta"]["dashboard_slug"]: e for e in dashboards}
    if len(by_slug) != len(dashboards):
        problems.append("two exposures name one dashboard")
    slugs = {d["slug"] for d in DASHBOARDS.values()}
    problems += [f"dashboard {slug} has no exposure" for slug in sorted(slugs - set(by_slug))]
    problems += [f"exposure names no dashboard {slug}" for slug in sorted(set(by_slug) - slugs)]
    for slug in sorted(set(by_slug) & slugs):
        names = []
        for ref in by_slug[slug]["depends_on"]:
            match = re.fullmatch(r"ref\('([a-z_0-9]+)'\)", ref)
            if match is None:
                problems.append(f"{slug}: {ref!r} is not ref('<mart>')")
            else:
                names.append(match.group(1))
        read = _marts_read(slug)
        problems += [f"{slug}: exposure lists {n}, which no chart reads" for n in sorted(set(names) - read)]
        problems += [f"{slug}: charts read {n}, missing in the exposure" for n in sorted(read - set(names))]
        if len(names) != len(set(names)):
            problems.append(f"{slug}: a mart listed twice")
    return problems


EXPOSURES = yaml.safe_load((MARTS / "_exposures.yml").read_text())["exposures"]


def test_exposures_name_exactly_the_marts_each_dashboard_reads() -> None:
    assert exposure_differences(EXPOSURES) == []


def test_exposure_check_sees_a_missing_and_an_extra_mart() -> None:
    """The comparison on an edited copy must report both directions (and a missing dashboard)."""
    edited = copy.deepcopy(EXPOSURES)
    purchasing = next(e for e in edited if e.get("meta", {}).get("dashboard_slug") == "purchasing")
    purchasing["depends_on"].remove("ref('fct_tender_scenarios')")
    purchasing["depends_on"].append("ref('fct_member_traffic_5min')")
    edited = [e for e in edited if e.get("meta", {}).get("dashboard_slug") != "exchange"]
    assert exposure_differences(edited) == [
        "dashboard exchange has no exposure",
        "purchasing: exposure lists fct_member_traffic_5min, which no chart reads",
        "purchasing: charts read fct_tender_scenarios, missing in the exposure",
    ]


# ---- the database: read-only, no external access, URI from the environment ----------------------


def test_database_is_read_only_without_external_access_and_uri_from_env() -> None:
    (database,) = DATABASES.values()
    assert database["sqlalchemy_uri"] == "${PEERPOOL_SERVING_URI}"
    connect_args = database["extra"]["engine_params"]["connect_args"]
    assert connect_args["read_only"] is True
    assert connect_args["config"]["enable_external_access"] is False
    assert connect_args["config"]["lock_configuration"] is True
    assert database["allow_dml"] is False and database["allow_file_upload"] is False
    assert database["allow_ctas"] is False and database["allow_cvas"] is False


def test_render_fills_the_uri_in_values(tmp_path: Path) -> None:
    odd = "duckdb:////tmp/a dir: with # chars/serving.duckdb"
    count = cli_dashboards.render_assets(tmp_path, {"PEERPOOL_SERVING_URI": odd})
    assert count == len(list(ASSETS.rglob("*.yaml")))
    rendered = yaml.safe_load((tmp_path / "databases" / "peerpool_serving.yaml").read_text())
    assert rendered["sqlalchemy_uri"] == odd
    chart = next(iter(CHARTS))
    assert yaml.safe_load((tmp_path / "charts" / Path(chart).name).read_text()) == CHARTS[chart]


def test_render_without_the_uri_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(cli_dashboards.DashboardsError, match=r"peerpool_serving\.yaml.*PEERPOOL_SERVING_URI"):
        cli_dashboards.render_assets(tmp_path, {})


# ---- the security spec handed to provision.py ------------------------------------------------------


def _config(tmp_path: Path, visibility: str) -> Path:
    text = (REPO / "examples" / "exchange.toml").read_text()
    assert 'member_visibility = "totals"' in text
    path = tmp_path / "exchange.toml"
    path.write_text(text.replace('member_visibility = "totals"', f'member_visibility = "{visibility}"'))
    return path


def test_security_spec_users_roles_and_generated_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPERSET_ADMIN_PASSWORD", raising=False)
    var = tmp_path / "var"
    spec = cli_dashboards.security_spec(_config(tmp_path, "totals"), var)
    # examples/exchange.toml has the members AS64500 and AS64501
    assert spec["members"] == [
        {"id": "AS64500", "role": "member_AS64500"},
        {"id": "AS64501", "role": "member_AS64501"},
    ]
    users = {u["username"]: u for u in spec["users"]}
    assert set(users) == {"as64500", "as64501", "purchasing", "operator"}
    assert users["as64500"]["roles"] == ["peerpool_viewer", "member_AS64500"]
    assert users["purchasing"]["roles"] == ["peerpool_purchasing"]
    passwords = [u["password"] for u in users.values()]
    assert len(set(passwords)) == len(passwords) and all(len(p) >= 16 for p in passwords)
    assert spec["admin_password"] is None, "no admin password unless one is given"
    creds = var / "credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    assert json.loads(creds.read_text())["member_passwords"] == {n: u["password"] for n, u in users.items()}
    again = cli_dashboards.security_spec(_config(tmp_path, "totals"), var)
    assert again["users"] == spec["users"], "passwords are generated once and kept"
    assert again["member_datasets"] == SECURITY["member_datasets"]


def test_security_spec_shares_totals_only_when_the_configuration_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = dict(SECURITY, member_totals_datasets=["fct_transit_bill_monthly"])
    security = tmp_path / "security.yaml"
    security.write_text(yaml.safe_dump(rules))
    monkeypatch.setattr(cli_dashboards, "SECURITY", security)
    totals = cli_dashboards.security_spec(_config(tmp_path, "totals"), tmp_path / "a")
    assert totals["shared_datasets_for_members"] == ["fct_transit_bill_monthly"]
    none = cli_dashboards.security_spec(_config(tmp_path, "none"), tmp_path / "b")
    assert none["shared_datasets_for_members"] == []


def test_setup_refuses_without_a_secret_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "short")
    with pytest.raises(cli_dashboards.DashboardsError, match="SUPERSET_SECRET_KEY"):
        cli_dashboards.setup(tmp_path, REPO / "examples" / "exchange.toml", tmp_path / "serving.duckdb")
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "x" * 48)
    monkeypatch.delenv("SUPERSET_ADMIN_PASSWORD", raising=False)
    with pytest.raises(cli_dashboards.DashboardsError, match="SUPERSET_ADMIN_PASSWORD"):
        cli_dashboards.setup(tmp_path, REPO / "examples" / "exchange.toml", tmp_path / "serving.duckdb")
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "y" * 20)
    with pytest.raises(
        cli_dashboards.DashboardsError, match=r"serving\.duckdb does not exist.*peerpool build"
    ):
        cli_dashboards.setup(tmp_path, REPO / "examples" / "exchange.toml", tmp_path / "serving.duckdb")
