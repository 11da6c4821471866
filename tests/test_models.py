"""The dbt project's contracts with the rest of peerpool, and the reference-table export.

* the sources YAML declares exactly the columns and types of ``peerpool/lake.py`` and
  ``peerpool/reference.py`` (the models read the lake through those declarations);
* every mart the brief names exists, with an enforced contract and a description on it and on
  every column;
* the reference export keeps money exact, refuses what it cannot keep exactly, and turns
  prefixes into the ranges Python's ``ipaddress`` gives;
* PeeringDB ``netixlan`` objects from the real PeeringDB test-server dump are imported as the
  JSON says (values read with plain ``json``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from peerpool import export_sources, lake, reference
from peerpool.config.model import (
    Billing,
    BorderRouter,
    BorderRouterPort,
    Exchange,
    Member,
    MemberPort,
    PortFee,
    Site,
    SnmpSettings,
    Switch,
    TransitContract,
)
from peerpool.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[1]
DBT = REPO / "dbt"
REALDATA = REPO.parent / "shared" / "realdata"

CONTRACT_MARTS = [
    "dim_members",
    "dim_ports",
    "dim_transit_contracts",
    "dim_asns",
    "fct_port_traffic_5min",
    "fct_member_traffic_5min",
    "fct_member_traffic_daily",
    "fct_member_traffic_monthly",
    "fct_member_pair_traffic_5min",
    "fct_member_pair_traffic_daily",
    "fct_transit_usage_5min",
    "fct_transit_bill_monthly",
    "fct_member_transit_usage",
    "fct_peering_vs_transit",
    "fct_peering_candidates",
    "fct_flow_loss_5min",
    "fct_unknown_macs_daily",
    "fct_port_quality_monthly",
    "fct_port_outages",
    "fct_reconciliation_5min",
    "fct_member_transit_bill_share_monthly",
    "fct_exchange_traffic_daily",
    "fct_exchange_traffic_monthly",
    "fct_tender_scenarios",
    "fct_tender_scenario_providers",
    "fct_tender_commits",
]

# Arrow type -> the DuckDB type the sources YAML must declare (written out, not derived from code)
DUCK = {
    "string": "varchar",
    "int64": "bigint",
    "int32": "integer",
    "int16": "smallint",
    "int8": "tinyint",
    "uint64": "ubigint",
    "bool": "boolean",
    "double": "double",
    "timestamp[us, tz=UTC]": "timestamptz",
    "binary": "blob",
    "date32[day]": "date",
    "decimal128(18, 4)": "decimal(18,4)",
    "list<item: string>": "varchar[]",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _source_tables(name: str) -> dict[str, list[tuple[str, str]]]:
    doc = _yaml(DBT / "models" / "staging" / f"_{name}__sources.yml")
    (source,) = doc["sources"]
    return {t["name"]: [(c["name"], c["data_type"]) for c in t["columns"]] for t in source["tables"]}


@pytest.mark.parametrize(
    ("source", "schemas"),
    [
        ("lake", lake.TABLES),
        ("reference", {**reference.SCHEMAS, "peeringdb_netixlan": reference.NETIXLAN}),
        ("exports", export_sources.SCHEMAS),
    ],
)
def test_sources_declare_the_lake_contract(source: str, schemas: dict[str, pa.Schema]) -> None:
    declared = _source_tables(source)
    assert set(declared) == set(schemas)
    for table, schema in schemas.items():
        assert declared[table] == [(f.name, DUCK[str(f.type)]) for f in schema], table


def test_every_contract_mart_is_enforced_and_documented() -> None:
    doc = _yaml(DBT / "models" / "marts" / "_marts__models.yml")
    models = {m["name"]: m for m in doc["models"]}
    for name in CONTRACT_MARTS:
        assert name in models, name
        model = models[name]
        assert model["config"]["contract"]["enforced"] is True
        assert model["description"].strip()
        sql = (DBT / "models" / "marts" / f"{name}.sql").read_text(encoding="utf-8")
        for column in model["columns"]:
            assert column["description"].strip(), f"{name}.{column['name']}"
            assert column["data_type"], f"{name}.{column['name']}"
            assert column["name"] in sql, f"{name}.{column['name']} is not produced by {name}.sql"
    monthly = [c["name"] for c in models["fct_member_traffic_monthly"]["columns"]]
    for column in ("member_id", "month", "in_p95_bps", "out_p95_bps", "billed_p95_bps", "intervals_used"):
        assert column in monthly


def test_no_interpolating_percentile_and_no_float_money() -> None:
    for path in (DBT / "models").rglob("*.sql"):
        text = path.read_text(encoding="utf-8")
        assert "quantile_cont" not in text, path
        assert "percentile_cont" not in text, path
    doc = _yaml(DBT / "models" / "marts" / "_marts__models.yml")
    money = re.compile(r"(cost|price|fee|savings|saving_if_peered|_mbps$)")
    for model in doc["models"]:
        for column in model["columns"]:
            if (
                money.search(column["name"])
                and column["name"] != "speed_mbps"
                and "speed" not in column["name"]
            ):
                assert column["data_type"].startswith("decimal") or column["data_type"] in (
                    "bigint",
                    "integer",
                ), f"{model['name']}.{column['name']} is {column['data_type']}"


def test_profile_has_no_absolute_paths() -> None:
    text = (DBT / "profiles.yml").read_text(encoding="utf-8")
    assert "env_var('PEERPOOL_DUCKDB_PATH'" in text
    assert not re.search(r"[\"' ]/(tmp|work|home|root|var)/", text)
    assert "send_anonymous_usage_stats: false" in (DBT / "dbt_project.yml").read_text(encoding="utf-8")


def _exchange(**overrides: Any) -> Exchange:
    snmp = SnmpSettings(community_env="PEERPOOL_SNMP_COMMUNITY")
    values: dict[str, Any] = {
        "name": "Test IX",
        "sites": (Site("KTW", "Katowice"),),
        "switches": (Switch("sw1", "KTW", "127.0.0.1", snmp),),
        "members": (
            Member(
                "AS64500",
                64500,
                "A",
                "A sp. z o.o.",
                dt.date(2024, 1, 1),
                prefixes=("198.51.100.0/24", "2001:db8:100::/48"),
            ),
        ),
        "ports": (MemberPort("sw1:et-1", "sw1", "et-1", 1, 10000, 100, "AS64500", ("02:00:00:00:FA:00",)),),
        "border_routers": (
            BorderRouter(
                "br1",
                "KTW",
                "127.0.0.1",
                "10.255.1.1",
                snmp,
                (BorderRouterPort("br1:xe-0", "br1", "xe-0", 501, 100000),),
            ),
        ),
        "transit_contracts": (
            TransitContract(
                "c1", "Arelion", ("br1:xe-0",), Decimal("20000"), Decimal("0.80"), Decimal("1.0001"), "PLN"
            ),
        ),
        "port_fees": (PortFee(10000, Decimal("900.00")),),
        "billing": Billing(),
    }
    values.update(overrides)
    return Exchange(**values)


def test_reference_export_keeps_money_exact_and_lists(tmp_path: Path) -> None:
    rows = reference.export(_exchange(), tmp_path)
    assert rows["members"] == 1 and rows["member_prefixes"] == 2 and rows["transit_contract_ports"] == 1
    contracts = pq.read_table(tmp_path / "reference" / "transit_contracts.parquet").to_pylist()
    assert contracts[0]["burst_price_per_mbps"] == Decimal("1.0001")
    assert contracts[0]["commit_mbps"] == Decimal("20000")
    assert pq.read_schema(tmp_path / "reference" / "port_fees.parquet").field(
        "monthly_fee"
    ).type == pa.decimal128(18, 4)
    ports = pq.read_table(tmp_path / "reference" / "ports.parquet").to_pylist()
    assert ports[0]["macs"] == ["02:00:00:00:fa:00"]  # lower case, as the matrix writes MACs
    billing = pq.read_table(tmp_path / "reference" / "billing.parquet").to_pylist()
    assert billing == [
        {
            "exchange_name": "Test IX",
            "currency": "PLN",
            "vat_rate": Decimal("0.23"),
            "timezone": "Europe/Warsaw",
            "transit_allocation": "proportional_p95",
            "member_visibility": "totals",
        }
    ]


def test_reference_prefix_ranges_match_ipaddress(tmp_path: Path) -> None:
    reference.export(_exchange(), tmp_path)
    for row in pq.read_table(tmp_path / "reference" / "member_prefixes.parquet").to_pylist():
        net = ipaddress.ip_network(row["prefix"])
        assert (row["first_hi"] << 64) | row["first_lo"] == int(net.network_address)
        assert (row["last_hi"] << 64) | row["last_lo"] == int(net.broadcast_address)
        assert row["prefix_length"] == net.prefixlen and row["ip_version"] == net.version


def test_reference_refuses_money_it_cannot_keep_exactly(tmp_path: Path) -> None:
    exchange = _exchange(port_fees=(PortFee(10000, Decimal("900.00005")),))
    with pytest.raises(
        ConfigError, match=r"port fee for 10000 Mbps: 900\.00005 has more than 4 decimal places"
    ):
        reference.export(exchange, tmp_path)
    assert not (tmp_path / "reference" / "port_fees.parquet").exists()


def test_reference_export_replaces_files_atomically(tmp_path: Path) -> None:
    reference.export(_exchange(), tmp_path)
    reference.export(_exchange(name="Renamed IX"), tmp_path)
    assert pq.read_table(tmp_path / "reference" / "billing.parquet").column("exchange_name").to_pylist() == [
        "Renamed IX"
    ]
    assert not [p for p in (tmp_path / "reference").iterdir() if ".tmp-" in p.name]


def test_peeringdb_netixlan_import_from_the_real_dump(tmp_path: Path) -> None:
    source = REALDATA / "ixf" / "peeringdb-py" / "netixlan-0.json"
    if not source.is_file():
        pytest.fail(f"{source} is missing: the tests need ../shared/realdata beside the repository")
    objects = json.loads(source.read_text(encoding="utf-8"))["data"]
    assert reference.import_peeringdb_netixlan(source, tmp_path) == len(objects)
    rows = pq.read_table(tmp_path / "reference" / "peeringdb_netixlan.parquet").to_pylist()
    assert [(r["asn"], r["ix_id"], r["ix_name"], r["ipaddr6"]) for r in rows] == [
        (o["asn"], o["ix_id"], o["name"], o["ipaddr6"]) for o in objects
    ]


def test_peeringdb_import_names_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "net.json"
    bad.write_text(json.dumps({"data": [{"id": 1}]}), encoding="utf-8")
    with pytest.raises(InputError, match=r"net\.json: netixlan object #0 lacks or mangles field"):
        reference.import_peeringdb_netixlan(bad, tmp_path)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="no 'data' list"):
        reference.import_peeringdb_netixlan(bad, tmp_path)
