"""Row-level security and the holes around it, through a real Superset's REST API.

A serving DuckDB file is built through the real pipeline (simulate -> asn -> decode -> counters ->
build), imported with ``peerpool dashboards setup`` and served on 127.0.0.1 (tests/superset_server.py).
Two member users ask for every member dataset; what each may get is computed independently with
DuckDB directly on the serving file: rows where the member column (``member_id``, or for the
member-pair marts ``src_member_id`` / ``dst_member_id``) is that member.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.superset_server import PEERPOOL, Client, SupersetSite, run, shared_site, stop_shared_site

pytestmark = [pytest.mark.superset, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SECURITY = yaml.safe_load((REPO / "dashboards" / "security.yaml").read_text())
MEMBER_DATASETS: list[str] = sorted(SECURITY["member_datasets"])
TOTALS: list[str] = sorted(SECURITY.get("member_totals_datasets") or [])
TENDER = ["fct_tender_scenarios", "fct_tender_scenario_providers", "fct_tender_commits"]
COUNT = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupersetSite]:
    yield shared_site(tmp_path_factory.mktemp("superset"))
    stop_shared_site()


def member_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = 'main' and table_name = ?",
        [table],
    ).fetchall()
    names = {r[0] for r in rows}
    if "member_id" in names:
        return ["member_id"]
    assert {"src_member_id", "dst_member_id"} <= names, table
    return ["src_member_id", "dst_member_id"]


class Truth:
    """What the serving file says, read with DuckDB directly (no Superset involved)."""

    def __init__(self, serving: Path) -> None:
        self.con = duckdb.connect(str(serving), read_only=True)

    def columns(self, table: str) -> list[str]:
        return member_columns(self.con, table)

    def count(self, table: str, member: str | None = None) -> int:
        where = ""
        params: list[str] = []
        if member is not None:
            columns = self.columns(table)
            where = " where " + " or ".join(f"{c} = ?" for c in columns)
            params = [member] * len(columns)
        (n,) = self.con.execute(f"select count(*) from main.{table}{where}", params).fetchone() or (0,)
        return int(n)

    def members(self) -> list[str]:
        return [
            r[0] for r in self.con.execute("select member_id from main.dim_members order by 1").fetchall()
        ]


@pytest.fixture(scope="session")
def truth(site: SupersetSite) -> Iterator[Truth]:
    t = Truth(site.serving)
    yield t
    t.con.close()


@pytest.fixture(scope="session")
def two_members(truth: Truth) -> tuple[str, str]:
    """The two members with rows in the most member datasets (so most checks compare non-empty sets)."""
    coverage = {m: sum(truth.count(t, m) > 0 for t in MEMBER_DATASETS) for m in truth.members()}
    first, second = sorted(coverage, key=lambda m: (-coverage[m], m))[:2]
    return first, second


@pytest.fixture(scope="session")
def clients(site: SupersetSite, two_members: tuple[str, str]) -> dict[str, Client]:
    users = {m: m.lower() for m in two_members}
    return {member: site.client(username) for member, username in users.items()}


@pytest.fixture(scope="session")
def admin(site: SupersetSite) -> Client:
    return site.client("admin")


@pytest.fixture(scope="session")
def dataset_ids(admin: Client) -> dict[str, int]:
    return admin.dataset_ids()


def rows_of(result: Any) -> list[dict[str, Any]]:
    (query,) = result["result"]
    assert query["status"] == "success", query
    data: list[dict[str, Any]] = query["data"]
    return data


def belongs(row: dict[str, Any], columns: list[str], member: str) -> bool:
    return any(row[c] == member for c in columns)


# ---- every member dataset, each member: exactly its own rows -------------------------------------


def test_member_sees_exactly_the_member_datasets(clients: dict[str, Client]) -> None:
    shared = SECURITY.get("member_totals_datasets") or []
    for client in clients.values():
        assert set(client.dataset_ids()) == set(MEMBER_DATASETS) | set(shared)


@pytest.mark.parametrize("table", MEMBER_DATASETS)
def test_each_member_gets_only_its_own_rows(
    table: str, truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    columns = truth.columns(table)
    total = truth.count(table)
    seen_any = False
    for member, client in clients.items():
        expected = truth.count(table, member)
        assert expected < total, f"{table}: no other member's rows, the check would prove nothing"
        seen_any |= expected > 0
        status, result = client.chart_data(dataset_ids[table], {"columns": columns})
        assert status == 200, result
        rows = rows_of(result)
        assert len(rows) == expected, (table, member)
        assert all(belongs(row, columns, member) for row in rows), (table, member)
        status, result = client.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})
        assert status == 200 and rows_of(result) == [{"n": expected}], (table, member, result)
    assert seen_any, f"{table}: neither member has rows; pick a richer simulation"


@pytest.mark.parametrize("table", MEMBER_DATASETS)
def test_csv_export_and_drill_detail_carry_only_own_rows(
    table: str, truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    columns = truth.columns(table)
    for member, client in clients.items():
        expected = truth.count(table, member)
        status, text = client.chart_data(dataset_ids[table], {"columns": columns}, result_format="csv")
        assert status == 200, text
        records = list(csv.DictReader(io.StringIO(text)))
        assert len(records) == expected, (table, member)
        assert all(belongs(r, columns, member) for r in records), (table, member)
        for result_type in ("drill_detail", "samples"):
            status, result = client.chart_data(
                dataset_ids[table], {"columns": columns}, result_type=result_type
            )
            assert status == 200, result
            rows = rows_of(result)
            assert len(rows) == expected, (table, member, result_type)
            assert all(belongs(row, columns, member) for row in rows), (table, member, result_type)


def test_samples_endpoint_is_closed_to_members(
    site: SupersetSite, two_members: tuple[str, str], dataset_ids: dict[str, int]
) -> None:
    """The explore 'samples' pane (POST /datasource/samples) is not among a member's permissions."""
    member = two_members[0]
    browser = Client(site.base).login_session(member.lower(), site.passwords()[member.lower()])
    table = dataset_ids["fct_member_traffic_5min"]
    status, body, _ = browser.request(
        "POST", f"/datasource/samples?datasource_id={table}&datasource_type=table", {}
    )
    assert status in (401, 403), body[:300]
    assert b"AS" not in body


# ---- tricks ---------------------------------------------------------------------------------------


def _other(member: str, truth: Truth) -> str:
    return next(m for m in truth.members() if m != member and truth.count("fct_member_traffic_5min", m) > 0)


def test_filtering_on_another_member_returns_nothing(
    truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    for member, client in clients.items():
        other = _other(member, truth)
        ds = dataset_ids["fct_member_traffic_5min"]
        status, result = client.chart_data(
            ds, {"columns": ["member_id"], "filters": [{"col": "member_id", "op": "==", "val": other}]}
        )
        assert status == 200 and rows_of(result) == []
        status, result = client.chart_data(
            ds,
            {"columns": ["member_id"], "filters": [{"col": "member_id", "op": "IN", "val": [other, member]}]},
        )
        assert status == 200
        assert {r["member_id"] for r in rows_of(result)} == {member}


def test_or_in_adhoc_where_does_not_widen_the_rule(
    truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    for member, client in clients.items():
        other = _other(member, truth)
        for table in ("fct_member_traffic_5min", "fct_member_pair_traffic_5min"):
            columns = truth.columns(table)
            tricks = [
                f"{columns[0]} = '{other}' OR 1 = 1",
                f"1 = 1) OR ({columns[0]} = '{other}'",
                f"{columns[0]} = '{other}' OR {columns[0]} <> '{other}' --",
            ]
            for where in tricks:
                status, result = client.chart_data(
                    dataset_ids[table], {"columns": columns, "extras": {"where": where}}
                )
                if status == 200:
                    rows = rows_of(result)
                    assert all(belongs(r, columns, member) for r in rows), (table, where)
                    assert len(rows) <= truth.count(table, member)
                else:  # refused: an error (which may quote the clause sent), never rows
                    assert status in (400, 403, 422), (status, result)
                    assert "data" not in json.dumps(result), where


def test_subqueries_are_refused(
    truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    for member, client in clients.items():
        other = _other(member, truth)
        ds = dataset_ids["fct_member_traffic_5min"]
        inner = f"(SELECT SUM(in_bytes) FROM main.fct_member_traffic_5min WHERE member_id = '{other}')"
        attempts: list[dict[str, Any]] = [
            {"columns": ["member_id"], "extras": {"where": f"in_bytes < {inner}"}},
            {"columns": [], "metrics": [{"expressionType": "SQL", "sqlExpression": inner, "label": "x"}]},
            {"columns": [{"expressionType": "SQL", "sqlExpression": inner, "label": "x"}]},
            {
                "columns": ["member_id"],
                "extras": {"where": "member_id IN (SELECT member_id FROM main.dim_members)"},
            },
            {
                "columns": ["member_id"],
                "extras": {"where": "1=1 UNION ALL SELECT member_id FROM main.dim_members"},
            },
        ]
        for query in attempts:
            status, result = client.chart_data(ds, query)
            text = json.dumps(result)
            if status == 200:  # accepted only if it shows nothing of the other member
                assert other not in text, query
                assert all(r.get("member_id") in (None, member) for r in rows_of(result)), query
            else:  # refused: an error (which may quote the expression sent), never rows
                assert status in (400, 403, 422), (status, text[:300])
                assert '"data"' not in text, query


def test_no_access_to_datasets_outside_the_member_role(
    clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    outside = sorted(
        set(dataset_ids) - set(MEMBER_DATASETS) - set(SECURITY.get("member_totals_datasets") or [])
    )
    assert "fct_transit_bill_monthly" in outside and "v_port_utilisation_daily" in outside
    for client in clients.values():
        for table in outside:
            status, result = client.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})
            assert status == 403, (table, status, result)
            status, _, _ = client.request("GET", f"/api/v1/dataset/{dataset_ids[table]}")
            assert status in (403, 404), table


def test_saved_charts_run_for_members_only_on_their_rows(
    clients: dict[str, Client], admin: Client, truth: Truth, dataset_ids: dict[str, int]
) -> None:
    """Every saved chart (all four dashboards, through its saved query context): on a member dataset
    it gives the member only its rows; on any other dataset it is refused."""
    by_slug = {
        slug: admin.json("GET", f"/api/v1/dashboard/{slug}/charts")["result"]
        for slug in ("member", "economics", "purchasing", "operations", "exchange")
    }
    member_dataset_ids = {dataset_ids[name] for name in MEMBER_DATASETS + TOTALS}
    charts = {c["id"]: c for group in by_slug.values() for c in group}
    runnable = 0
    for member, client in clients.items():
        listed = {
            c["id"] for c in client.json("GET", "/api/v1/chart/?q=(page_size:100,columns:!(id))")["result"]
        }
        assert {c["id"] for c in by_slug["member"]} <= listed
        for chart in charts.values():
            dataset = int(str(chart["form_data"]["datasource"]).split("__")[0])
            status, body, _ = client.request("GET", f"/api/v1/chart/{chart['id']}/data/")
            if dataset not in member_dataset_ids:
                assert status in (403, 404), (chart["slice_name"], status)
                continue
            assert status == 200, (chart["slice_name"], body[:300])
            runnable += 1
            for result in json.loads(body)["result"]:
                for row in result["data"]:
                    if "member_id" in row:
                        assert row["member_id"] == member, (chart["slice_name"], row)
                    if "src_member_id" in row:
                        assert member in (row["src_member_id"], row["dst_member_id"]), (
                            chart["slice_name"],
                            row,
                        )
    assert runnable >= 2 * (len(by_slug["member"]) + len(by_slug["exchange"]))
    top_peers = next(c for c in by_slug["member"] if c["slice_name"].startswith("My top peers"))
    member = next(iter(clients))
    status, body, _ = clients[member].request("GET", f"/api/v1/chart/{top_peers['id']}/data/")
    pairs = json.loads(body)["result"][0]["data"]
    expected = truth.con.execute(
        "select count(*) from (select distinct src_member_id, dst_member_id "
        "from main.fct_member_pair_traffic_daily "
        "where (src_member_id = ? or dst_member_id = ?) and src_member_id <> dst_member_id)",
        [member, member],
    ).fetchone()
    assert expected is not None and len(pairs) == min(expected[0], 25)


def test_validate_expression_and_column_values_are_closed(
    clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    """Endpoints that run SQL on a dataset outside the chart-data path (errors could leak values)."""
    ds = dataset_ids["fct_member_traffic_5min"]
    expression = "CAST((SELECT string_agg(member_id, ',') FROM main.fct_member_traffic_5min) AS INTEGER) = 1"
    for client in clients.values():
        status, body, _ = client.request(
            "POST", f"/api/v1/datasource/table/{ds}/validate_expression/", {"expression": expression,
                                                                             "expression_type": "where"}
        )  # fmt: skip
        assert status == 403, body[:300]
        status, body, _ = client.request("GET", f"/api/v1/datasource/table/{ds}/column/member_id/values/")
        assert status == 403, body[:300]


# ---- saved charts, SQL Lab, dashboards ------------------------------------------------------------


def test_member_cannot_save_or_change_charts_and_dashboards(
    clients: dict[str, Client], admin: Client, dataset_ids: dict[str, int]
) -> None:
    charts = admin.json("GET", "/api/v1/chart/?q=(page_size:100,columns:!(id))")["result"]
    for client in clients.values():
        body = {
            "slice_name": "mine",
            "viz_type": "table",
            "datasource_id": dataset_ids["fct_member_traffic_5min"],
            "datasource_type": "table",
            "params": "{}",
        }
        status, payload, _ = client.request("POST", "/api/v1/chart/", body)
        assert status == 403, payload[:300]
        status, _, _ = client.request("PUT", f"/api/v1/chart/{charts[0]['id']}", {"slice_name": "x"})
        assert status in (403, 404)
        status, _, _ = client.request("POST", "/api/v1/dashboard/", {"dashboard_title": "mine"})
        assert status == 403
        status, _, _ = client.request("DELETE", f"/api/v1/chart/{charts[0]['id']}")
        assert status in (403, 404)
    assert len(admin.json("GET", "/api/v1/chart/?q=(page_size:100,columns:!(id))")["result"]) == len(charts)


def test_member_has_no_sql_lab(clients: dict[str, Client], admin: Client) -> None:
    database_id = admin.json("GET", "/api/v1/database/?q=(columns:!(id))")["result"][0]["id"]
    body = {
        "database_id": database_id,
        "sql": "SELECT * FROM main.fct_member_traffic_5min",
        "runAsync": False,
    }
    for client in clients.values():
        status, payload, _ = client.request("POST", "/api/v1/sqllab/execute/", body)
        assert status in (401, 403), payload[:300]
        assert b"interval_start" not in payload


def test_member_sees_only_the_member_and_totals_dashboards(
    site: SupersetSite, clients: dict[str, Client]
) -> None:
    """The site's exchange.toml says member_visibility = "totals": the member dashboard and the
    cooperative totals; never the purchasing, economics or operations dashboards."""
    assert 'member_visibility = "totals"' in site.config.read_text()
    for client in clients.values():
        listed = client.json("GET", "/api/v1/dashboard/?q=(columns:!(slug))")["result"]
        assert sorted(d["slug"] for d in listed) == ["exchange", "member"]
        assert client.json("GET", "/api/v1/dashboard/member")["result"]["slug"] == "member"
        for slug in ("operations", "purchasing", "economics"):
            status, _, _ = client.request("GET", f"/api/v1/dashboard/{slug}")
            assert status in (403, 404), slug


def test_security_admin_endpoints_are_closed_to_members(clients: dict[str, Client]) -> None:
    for client in clients.values():
        for path in ("/api/v1/security/roles/", "/api/v1/security/users/", "/api/v1/rowlevelsecurity/"):
            status, body, _ = client.request("GET", path)
            assert status in (401, 403, 404), (path, body[:200])


# ---- the related endpoints ----------------------------------------------------------------------


RELATED = [
    "/api/v1/chart/related/owners",
    "/api/v1/chart/related/created_by",
    "/api/v1/chart/related/changed_by",
    "/api/v1/dashboard/related/owners",
    "/api/v1/dashboard/related/created_by",
    "/api/v1/dashboard/related/changed_by",
    "/api/v1/dataset/related/owners",
]


def test_related_endpoints_do_not_list_other_users_or_roles(
    clients: dict[str, Client], admin: Client, two_members: tuple[str, str]
) -> None:
    everyone = admin.json("GET", "/api/v1/chart/related/owners?q=(page_size:100)")["result"]
    assert len(everyone) >= 4, "admin should see every user (the filter is per role, not a broken endpoint)"
    all_roles = admin.json("GET", "/api/v1/dashboard/related/roles?q=(page_size:100)")["result"]
    assert any(r["text"].startswith("member_") for r in all_roles)
    for member, client in clients.items():
        me = client.json("GET", "/api/v1/me/")["result"]
        other = next(m for m in two_members if m != member).lower()
        for path in RELATED:
            status, body, _ = client.request("GET", path + "?q=(page_size:100)")
            if status == 200:
                texts = [row["text"] for row in json.loads(body)["result"]]
                ids = [row["value"] for row in json.loads(body)["result"]]
                assert set(ids) <= {me["id"]}, (path, texts)
            else:
                assert status in (401, 403, 404), path
            assert other.encode() not in body.lower(), path
        status, body, _ = client.request("GET", "/api/v1/dashboard/related/roles?q=(page_size:100)")
        assert status in (200, 403, 404)
        if status == 200:
            assert json.loads(body)["result"] == []
        assert b"member_" not in body


# ---- the transit bill share, cooperative totals and member_visibility ----------------------------------


def _bill_lines(site: SupersetSite) -> dict[str, dict[str, Decimal]]:
    """member -> month -> transit share, read with csv from the preview bills the fixture wrote."""
    shares: dict[str, dict[str, Decimal]] = {}
    for path in sorted(site.serving.parents[1].glob("exports/*/preview/bill-*-lines.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text())):
            if row["kind"] == "transit_share":
                shares.setdefault(row["member_id"], {})[row["month"]] = Decimal(row["amount_net"])
    return shares


def test_member_sees_its_own_bill_share_as_billed_and_not_the_others(
    site: SupersetSite, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    lines = _bill_lines(site)
    assert len(lines) >= 2, "the fixture's bill has too few transit shares"
    table = dataset_ids["fct_member_transit_bill_share_monthly"]
    for member, client in clients.items():
        status, result = client.chart_data(table, {"columns": ["member_id", "month", "transit_share"]})
        assert status == 200, result
        rows = rows_of(result)
        assert {r["member_id"] for r in rows} == {member}
        # Superset sends a DATE as epoch milliseconds
        months = {
            r["month"]: dt.datetime.fromtimestamp(r["month"] / 1000, dt.UTC).strftime("%Y-%m") for r in rows
        }
        got = {months[r["month"]]: Decimal(str(r["transit_share"])) for r in rows}
        assert got == lines[member], member  # the bill's own amounts, to the grosz
        others = set(lines) - {member}
        status, result = client.chart_data(
            table, {"columns": ["member_id", "transit_share"], "filters": [{"col": "member_id", "op": "IN",
                                                                              "val": sorted(others)}]}
        )  # fmt: skip
        assert status == 200 and rows_of(result) == []


def _totals_status(client: Client, dataset_ids: dict[str, int]) -> dict[str, int]:
    return {
        table: client.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})[0]
        for table in TOTALS
    }


def test_member_reads_the_cooperative_totals_without_member_columns(
    truth: Truth, clients: dict[str, Client], dataset_ids: dict[str, int]
) -> None:
    assert TOTALS == ["fct_exchange_traffic_daily", "fct_exchange_traffic_monthly"]
    for table in TOTALS:
        columns = [
            r[0]
            for r in truth.con.execute(
                "select column_name from information_schema.columns where table_schema = 'main' "
                "and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
        ]
        assert columns and not {"member_id", "src_member_id", "dst_member_id"} & set(columns), table
        (n,) = truth.con.execute(f"select count(*) from main.{table}").fetchone() or (0,)
        assert n > 0, table
        for client in clients.values():
            status, result = client.chart_data(dataset_ids[table], {"columns": columns})
            assert status == 200, result
            rows = rows_of(result)
            assert len(rows) == n and set(rows[0]) == set(columns), table


def _setup(site: SupersetSite, config: Path) -> None:
    """``peerpool dashboards setup`` against the running site's metadata with another exchange.toml."""
    run([str(PEERPOOL), "dashboards", "setup", "--var", str(site.var)], "peerpool dashboards setup",
        {**site.env, "PEERPOOL_CONFIG": str(config)})  # fmt: skip


def test_member_visibility_none_closes_the_totals_and_their_dashboard(
    site: SupersetSite,
    clients: dict[str, Client],
    admin: Client,
    dataset_ids: dict[str, int],
    tmp_path: Path,
) -> None:
    """Provisioned again from an exchange.toml saying "none": members get 403 on the totals, do not see
    their dashboard, and cannot reach the totals through it (a query naming the dashboard and one of its
    charts, the path dashboard role-based access opens). Then provisioned back to "totals"."""
    none = tmp_path / "exchange.toml"
    none.write_text(
        site.config.read_text().replace('member_visibility = "totals"', 'member_visibility = "none"')
    )
    charts = admin.json("GET", "/api/v1/dashboard/exchange/charts")["result"]
    dashboard_id = admin.json("GET", "/api/v1/dashboard/exchange")["result"]["id"]
    assert charts
    try:
        _setup(site, none)
        for client in clients.values():
            assert set(_totals_status(client, dataset_ids).values()) == {403}
            listed = client.json("GET", "/api/v1/dashboard/?q=(columns:!(slug))")["result"]
            assert [d["slug"] for d in listed] == ["member"]
            status, _, _ = client.request("GET", "/api/v1/dashboard/exchange")
            assert status in (403, 404)
            for chart in charts:
                dataset = int(str(chart["form_data"]["datasource"]).split("__")[0])
                via_dashboard = {"dashboardId": dashboard_id, "slice_id": chart["id"]}
                status, result = client.chart_data(
                    dataset, {"columns": [], "metrics": [COUNT]}, form_data=via_dashboard
                )
                assert status == 403, (chart["slice_name"], result)
                status, _, _ = client.request("GET", f"/api/v1/chart/{chart['id']}/data/")
                assert status in (403, 404), chart["slice_name"]
            # the member's own figures are untouched
            status, _ = client.chart_data(
                dataset_ids["fct_member_transit_bill_share_monthly"], {"columns": [], "metrics": [COUNT]}
            )
            assert status == 200
    finally:
        _setup(site, site.config)
    for client in clients.values():
        assert set(_totals_status(client, dataset_ids).values()) == {200}


# ---- anonymous -----------------------------------------------------------------------------------


def test_anonymous_gets_nothing(site: SupersetSite, dataset_ids: dict[str, int]) -> None:
    anonymous = Client(site.base)
    status, result = anonymous.chart_data(dataset_ids["fct_member_traffic_5min"], {"columns": ["member_id"]})
    assert status == 401
    assert "AS" not in json.dumps(result)
    for table in ["fct_member_transit_bill_share_monthly", *TOTALS, *TENDER]:
        status, result = anonymous.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})
        assert status == 401, table
        assert "data" not in json.dumps(result), table
    for path in ("/api/v1/dataset/", "/api/v1/chart/", "/api/v1/dashboard/", "/api/v1/chart/related/owners"):
        status, _, _ = anonymous.request("GET", path)
        assert status == 401, path
    for path in ("/superset/dashboard/member/", "/explore/", "/sqllab/"):
        status, _, headers = anonymous.request("GET", path)
        assert status in (302, 401), path
        if status == 302:
            assert "/login/" in headers["Location"], path


# ---- purchasing and operator ----------------------------------------------------------------------


def test_purchasing_sees_every_members_transit_rows(
    site: SupersetSite, truth: Truth, dataset_ids: dict[str, int]
) -> None:
    purchasing = site.client("purchasing")
    for table in ("fct_member_transit_usage_5min", "fct_member_transit_usage"):
        status, result = purchasing.chart_data(
            dataset_ids[table], {"columns": ["member_id"], "metrics": [COUNT]}
        )
        assert status == 200
        counts = {r["member_id"]: r["n"] for r in rows_of(result)}
        assert sum(counts.values()) == truth.count(table)
        assert len(counts) >= 2
        assert all(counts[m] == truth.count(table, m) for m in counts)
    status, result = purchasing.chart_data(
        dataset_ids["fct_transit_bill_monthly"], {"columns": [], "metrics": [COUNT]}
    )
    assert status == 200 and rows_of(result) == [{"n": truth.count("fct_transit_bill_monthly")}]
    status, _ = purchasing.chart_data(
        dataset_ids["fct_member_traffic_5min"], {"columns": [], "metrics": [COUNT]}
    )
    assert status == 403, "purchasing must not read members' exchange traffic"


def test_purchasing_sees_the_tender_scenarios_and_every_bill_share(
    site: SupersetSite, truth: Truth, dataset_ids: dict[str, int]
) -> None:
    purchasing = site.client("purchasing")
    assert truth.count("fct_tender_scenarios") >= 2, "the fixture's tender report has no scenarios"
    for table in [*TENDER, "fct_member_transit_bill_share_monthly", *TOTALS]:
        status, result = purchasing.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})
        assert status == 200 and rows_of(result) == [{"n": truth.count(table)}], table
    status, result = purchasing.chart_data(
        dataset_ids["fct_tender_scenarios"],
        {"columns": ["scenario_rank", "scenario"], "orderby": [["scenario_rank", True]]},
    )
    expected = truth.con.execute("select scenario_rank, scenario from main.fct_tender_scenarios order by 1")
    assert [(r["scenario_rank"], r["scenario"]) for r in rows_of(result)] == expected.fetchall()


def test_every_chart_of_purchasing_dashboards_runs_as_purchasing(site: SupersetSite) -> None:
    purchasing = site.client("purchasing")
    for slug in ("economics", "purchasing"):
        charts = purchasing.json("GET", f"/api/v1/dashboard/{slug}/charts")["result"]
        assert charts, slug
        for chart in charts:
            status, body, _ = purchasing.request("GET", f"/api/v1/chart/{chart['id']}/data/")
            assert status == 200, (slug, chart["slice_name"], body[:300])


def test_operator_sees_all_rows(site: SupersetSite, truth: Truth, dataset_ids: dict[str, int]) -> None:
    operator = site.client("operator")
    for table in MEMBER_DATASETS:
        status, result = operator.chart_data(dataset_ids[table], {"columns": [], "metrics": [COUNT]})
        assert status == 200 and rows_of(result) == [{"n": truth.count(table)}], table


# ---- the serving connection: read-only, no external access -----------------------------------------


def _sqllab(client: Client, sql: str) -> tuple[int, str]:
    database_id = client.json("GET", "/api/v1/database/?q=(columns:!(id))")["result"][0]["id"]
    body = {"database_id": database_id, "sql": sql, "runAsync": False, "schema": "main"}
    status, payload, _ = client.request("POST", "/api/v1/sqllab/execute/", body)
    return status, payload.decode(errors="replace")


def test_admin_sql_lab_cannot_read_files_write_or_unlock(admin: Client, truth: Truth) -> None:
    status, text = _sqllab(admin, "SELECT COUNT(*) AS n FROM main.dim_members")
    assert status == 200, text
    assert json.loads(text)["data"] == [{"n": len(truth.members())}]
    status, text = _sqllab(
        admin,
        "SELECT current_setting('enable_external_access') AS external, "
        "current_setting('access_mode') AS mode, current_setting('lock_configuration') AS locked",
    )
    assert status == 200 and json.loads(text)["data"] == [
        {"external": False, "mode": "read_only", "locked": True}
    ]
    no_files = "file system operations are disabled by configuration"
    refused_by_duckdb = {
        "SELECT * FROM read_csv('/etc/passwd')": no_files,
        "SELECT * FROM read_text('/etc/hostname')": no_files,
        "ATTACH '/tmp/peerpool-attach-test.duckdb' AS x": no_files,
        "COPY (SELECT 1) TO '/tmp/peerpool-copy-test.csv'": no_files,
        "SET enable_external_access = true": "the configuration has been locked",
        "SET memory_limit = '1TB'": "the configuration has been locked",
    }
    for sql, message in refused_by_duckdb.items():
        status, text = _sqllab(admin, sql)
        assert status != 200 and message in text, (sql, text[:300])
        assert "root:" not in text, sql
    status, text = _sqllab(admin, "CREATE TABLE main.x AS SELECT 1")
    assert status != 200 and "DML_NOT_ALLOWED" in text, text[:300]
    assert not Path("/tmp/peerpool-copy-test.csv").exists()
    assert not Path("/tmp/peerpool-attach-test.duckdb").exists()


def test_operator_chart_data_cannot_read_files(site: SupersetSite, dataset_ids: dict[str, int]) -> None:
    operator = site.client("operator")
    ds = dataset_ids["dim_members"]
    for expression in (
        "(SELECT COUNT(*) FROM read_csv('/etc/passwd'))",
        "(SELECT 1 FROM read_text('/etc/passwd'))",
    ):
        status, result = operator.chart_data(
            ds,
            {
                "columns": [],
                "metrics": [{"expressionType": "SQL", "sqlExpression": expression, "label": "x"}],
            },
        )
        assert status != 200, (expression, result)
        assert "root:" not in json.dumps(result)
