"""Write peerpool's Superset assets (YAML under ``dashboards/assets/``) from one description.

    .venvs/core/bin/python dashboards/make_assets.py

Superset's import format repeats every name many times (a chart names its dataset's UUID three
times, a dashboard each chart's id and UUID, a query context every metric). Hand-edited YAML drifts;
this file says once what each dataset, chart and dashboard is and writes the YAML Superset imports.
The YAML is committed (it is what ``peerpool dashboards import`` reads and what reviewers diff);
``tests/test_dashboards_assets.py`` checks that it is exactly what this file writes.

Column names and types come from the marts' dbt contract (``dbt/models/marts/_marts__models.yml``,
enforced on every mart), so the datasets list exactly what the serving file has. The database
URI is never written: the YAML carries the placeholder ``${PEERPOOL_SERVING_URI}``, replaced from
the environment at import time.

UUIDs are uuid5 of a fixed namespace and the asset's key, so they are stable across runs and
machines (Superset merges a database of the same name but another UUID: keep them stable).
"""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
MARTS_YML = HERE.parent / "dbt" / "models" / "marts" / "_marts__models.yml"
ASSETS = HERE / "assets"
NAMESPACE = uuid.UUID("5b0f6c1e-3f1a-4c52-9a53-70ee2b0c0a11")
DATABASE_NAME = "peerpool serving"
VERSION = "1.0.0"
CHART_ROW_HEIGHT = 50


def stable_uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"peerpool:{kind}:{key}"))


DATABASE_UUID = stable_uuid("database", "serving")


# --------------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str
    label: str
    d3format: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A physical dataset on a mart, or (operator/purchasing only) a virtual one with ``sql``."""

    name: str
    description: str
    main_dttm: str | None
    metrics: tuple[Metric, ...]
    sql: str | None = None
    # virtual datasets: their column types (physical ones read theirs from the serving file)
    virtual_columns: tuple[tuple[str, str], ...] = ()

    @property
    def uuid(self) -> str:
        return stable_uuid("dataset", self.name)


def m(name: str, expression: str, label: str, d3format: str | None = None) -> Metric:
    return Metric(name, expression, label, d3format)


BPS = ".3s"
MBPS = ",.1f"
MONEY = ",.2f"
RATIO = ".1%"

# sFlow estimate over counter bytes, per direction (the 5-minute per-port and the hourly marts)
RECONCILIATION_RATIOS = (
    m("in_ratio", "SUM(sflow_in_bytes) / NULLIF(SUM(counter_in_bytes), 0)", "sFlow/counter in", ".3f"),
    m("out_ratio", "SUM(sflow_out_bytes) / NULLIF(SUM(counter_out_bytes), 0)", "sFlow/counter out", ".3f"),
)

DATASETS: tuple[Dataset, ...] = (
    # ---- member data (row-level security on every one of these, see security.yaml) ----
    Dataset(
        "fct_member_traffic_5min",
        "Member traffic per 5-minute interval (counters).",
        "interval_start",
        (m("in_bps", "SUM(in_bps)", "in (bit/s)", BPS), m("out_bps", "SUM(out_bps)", "out (bit/s)", BPS)),
    ),
    Dataset(
        "fct_member_traffic_daily",
        "Member traffic per day (exchange time zone).",
        "traffic_date",
        (
            m("in_bytes", "SUM(in_bytes)", "in (bytes)", ".3s"),
            m("out_bytes", "SUM(out_bytes)", "out (bytes)", ".3s"),
            m("in_p95_bps", "MAX(in_p95_bps)", "in 95th (bit/s)", BPS),
            m("out_p95_bps", "MAX(out_p95_bps)", "out 95th (bit/s)", BPS),
        ),
    ),
    Dataset(
        "fct_member_traffic_monthly",
        "Member 95th percentile per billing month.",
        "month",
        (
            m("billed_p95_mbps", "SUM(billed_p95_mbps)", "billed 95th (Mbps)", MBPS),
            m("in_p95_mbps", "SUM(in_p95_bps) / 1e6", "in 95th (Mbps)", MBPS),
            m("out_p95_mbps", "SUM(out_p95_bps) / 1e6", "out 95th (Mbps)", MBPS),
        ),
    ),
    Dataset(
        "fct_member_pair_traffic_daily",
        "Member-to-member traffic per day.",
        "traffic_date",
        (m("bytes", "SUM(bytes)", "bytes", ".3s"), m("max_bps", "MAX(max_bps)", "peak (bit/s)", BPS)),
    ),
    Dataset(
        "fct_member_pair_traffic_5min",
        "Member-to-member traffic per 5-minute interval.",
        "interval_start",
        (m("bps", "SUM(bps)", "bit/s", BPS),),
    ),
    Dataset(
        "fct_member_transit_usage_5min",
        "Member traffic over transit per 5-minute interval.",
        "interval_start",
        (
            m("in_bps", "SUM(in_bps)", "from transit (bit/s)", BPS),
            m("out_bps", "SUM(out_bps)", "to transit (bit/s)", BPS),
        ),
    ),
    Dataset(
        "fct_member_transit_usage",
        "Member transit 95th percentile per month.",
        "month",
        (
            m("billed_p95_mbps", "SUM(billed_p95_mbps)", "transit 95th (Mbps)", MBPS),
            m("transit_bytes", "SUM(in_bytes) + SUM(out_bytes)", "transit bytes", ".3s"),
        ),
    ),
    Dataset(
        "fct_peering_vs_transit",
        "Peering against transit per member and month.",
        "month",
        (
            m("savings", "SUM(savings)", "savings", MONEY),
            m("peering_cost", "SUM(peering_cost)", "peering cost", MONEY),
            m("peered_value", "SUM(peered_value_at_transit_price)", "peered traffic at transit price", MONEY),
            m("peered_mbps", "SUM(peered_mbps)", "peered 95th (Mbps)", MBPS),
            m("break_even_mbps", "SUM(break_even_mbps)", "break-even (Mbps)", MBPS),
        ),
    ),
    Dataset(
        "fct_port_traffic_5min",
        "Port traffic and utilisation per 5-minute interval.",
        "interval_start",
        (
            m("in_utilisation", "MAX(in_utilisation)", "in utilisation", RATIO),
            m("out_utilisation", "MAX(out_utilisation)", "out utilisation", RATIO),
        ),
    ),
    Dataset(
        "fct_port_traffic_daily",
        "Port traffic per day.",
        "traffic_date",
        (
            m("in_p95_bps", "MAX(in_p95_bps)", "in 95th (bit/s)", BPS),
            m("out_p95_bps", "MAX(out_p95_bps)", "out 95th (bit/s)", BPS),
            m("in_bytes", "SUM(in_bytes)", "in (bytes)", ".3s"),
        ),
    ),
    Dataset(
        "fct_port_outages",
        "Port outages (oper down, device unreachable).",
        "start_at",
        (m("outages", "COUNT(*)", "outages"), m("outage_hours", "SUM(duration_s) / 3600.0", "hours", ",.1f")),
    ),
    Dataset(
        "fct_port_quality_monthly",
        "Data quality per port and month.",
        "month",
        (m("trusted_ratio", "MIN(trusted_ratio)", "trusted intervals", RATIO),),
    ),
    Dataset(
        "fct_reconciliation_5min",
        "sFlow estimate against counters per port and interval.",
        "interval_start",
        (*RECONCILIATION_RATIOS, m("alarms", "SUM(CASE WHEN is_alarm THEN 1 ELSE 0 END)", "alarm intervals")),
    ),
    Dataset(
        "dim_ports",
        "Ports (member and transit).",
        None,
        (m("ports", "COUNT(*)", "ports"), m("speed_mbps", "SUM(speed_mbps)", "capacity (Mbps)", ",d")),
    ),
    Dataset("dim_members", "Members.", "joined_date", (m("members", "COUNT(*)", "members"),)),
    Dataset(
        "fct_member_transit_bill_share_monthly",
        "The member's share of the pooled transit bill per month, exactly as the month's standing bill "
        "document (correction, close or preview) states it.",
        "month",
        (
            m("transit_share", "SUM(transit_share)", "transit share", MONEY),
            m("pool_total", "SUM(pool_total)", "pooled transit bill", MONEY),
            m("own_transit_p95_mbps", "SUM(own_transit_p95_mbps)", "own transit 95th (Mbps)", MBPS),
            m("share_of_pool", "SUM(transit_share) / NULLIF(SUM(pool_total), 0)", "share of the pool", RATIO),
        ),
    ),
    # ---- cooperative totals: no member column; members get them when member_visibility = "totals" ----
    Dataset(
        "fct_exchange_traffic_daily",
        "The exchange as a whole per day; figures left out on days with too few members behind them.",
        "traffic_date",
        (
            m("exchange_avg_bps", "SUM(exchange_avg_bps)", "average into the exchange (bit/s)", BPS),
            m("exchange_p95_bps", "MAX(exchange_p95_bps)", "95th into the exchange (bit/s)", BPS),
            m("transit_p95_bps", "MAX(transit_p95_bps)", "transit 95th (bit/s)", BPS),
            m("exchange_bytes", "SUM(exchange_in_bytes)", "over the exchange (bytes)", ".3s"),
            m(
                "transit_bytes",
                "SUM(transit_in_bytes) + SUM(transit_out_bytes)",
                "over transit (bytes)",
                ".3s",
            ),
        ),
    ),
    Dataset(
        "fct_exchange_traffic_monthly",
        "The exchange as a whole per month: traffic, its 95th, the pooled transit bill and price per Mbps; "
        "figures left out in months with too few members behind them.",
        "month",
        (
            m("exchange_p95_mbps", "MAX(exchange_p95_mbps)", "exchange 95th (Mbps)", MBPS),
            m("transit_billed_mbps", "MAX(transit_billed_mbps)", "transit billed 95th (Mbps)", MBPS),
            m("pool_transit_cost", "MAX(pool_transit_cost)", "pooled transit bill", MONEY),
            m("pooled_price_per_mbps", "MAX(pooled_price_per_mbps)", "pooled price per Mbps", ",.4f"),
            m("members_counted", "MAX(members_counted)", "members with traffic"),
        ),
    ),
    # ---- cooperative, purchasing and operations data (no member role has access) ----
    Dataset(
        "fct_transit_bill_monthly",
        "Pooled transit bill per contract and month.",
        "billing_month",
        (
            m("total_cost", "SUM(total_cost)", "total cost", MONEY),
            m("billed_mbps", "SUM(billed_mbps)", "billed 95th (Mbps)", MBPS),
            m("commit_mbps", "SUM(commit_mbps)", "commit (Mbps)", MBPS),
            m(
                "effective_price",
                "SUM(total_cost) / NULLIF(SUM(billed_mbps), 0)",
                "effective price per Mbps",
                ",.4f",
            ),
        ),
    ),
    Dataset(
        "fct_transit_usage_5min",
        "Transit usage per contract and 5-minute interval.",
        "interval_start",
        (
            m("in_bps", "SUM(in_bps)", "from provider (bit/s)", BPS),
            m("out_bps", "SUM(out_bps)", "to provider (bit/s)", BPS),
        ),
    ),
    Dataset(
        "dim_transit_contracts",
        "Transit contracts.",
        "term_start_date",
        (m("commit_mbps", "SUM(commit_mbps)", "commit (Mbps)", MBPS),),
    ),
    Dataset(
        "fct_peering_candidates",
        "Remote networks reached over transit, ranked.",
        "month",
        (
            m("saving_if_peered", "SUM(saving_if_peered)", "saving if peered", MONEY),
            m("avg_mbps", "SUM(avg_mbps)", "average Mbps", MBPS),
        ),
    ),
    Dataset(
        "fct_flow_loss_5min",
        "Flow datagram and sample loss per exporter.",
        "interval_start",
        (
            m(
                "sample_loss",
                "SUM(samples_missing) / NULLIF(SUM(samples_received) + SUM(samples_missing), 0)",
                "sample loss",
                ".2%",
            ),
            m("datagrams_quarantined", "MAX(exporter_datagrams_quarantined)", "datagrams quarantined"),
        ),
    ),
    Dataset(
        "fct_unknown_macs_daily",
        "MAC addresses on no configured port.",
        "traffic_date",
        (
            m("sample_count", "SUM(sample_count)", "samples"),
            m("estimated_bytes", "SUM(estimated_bytes)", "bytes", ".3s"),
            m("last_seen_at", "MAX(last_seen_at)", "last seen"),
        ),
    ),
    Dataset(
        "fct_tender_scenarios",
        "Purchasing scenarios of the newest tender report (peerpool tender run), cheapest first.",
        None,
        (
            m("expected_monthly_cost", "MIN(expected_monthly_cost)", "expected monthly cost", MONEY),
            m("scenarios", "COUNT(*)", "scenarios"),
        ),
    ),
    Dataset(
        "fct_tender_scenario_providers",
        "Each provider of each tender scenario: its share of the traffic and its commit.",
        None,
        (m("commit_mbps", "SUM(commit_mbps)", "commit (Mbps)", MBPS),),
    ),
    Dataset(
        "fct_tender_commits",
        "Optimal commit per offer (the whole pool with one provider) of the newest tender report.",
        None,
        (m("expected_monthly_cost", "MIN(expected_monthly_cost)", "expected monthly cost", MONEY),),
    ),
    Dataset(
        "fct_pooling_dividend_monthly",
        "The pooling dividend per month: the sum of members' own transit 95ths against the 95th of their "
        "summed traffic (greater of in and out, nearest rank over the month's intervals in the billing "
        "time zone).",
        "month",
        (
            m("sum_of_member_p95_mbps", "SUM(sum_of_member_p95_mbps)", "sum of members' 95ths (Mbps)", MBPS),
            m("pool_p95_mbps", "SUM(pool_p95_mbps)", "95th of the pool (Mbps)", MBPS),
            m("dividend_mbps", "SUM(dividend_mbps)", "pooling dividend (Mbps)", MBPS),
        ),
    ),
    Dataset(
        "fct_reconciliation_hourly",
        "sFlow estimate against counters for the exchange as a whole, per hour.",
        "hour_start",
        RECONCILIATION_RATIOS,
    ),
    # ---- virtual datasets: operator / purchasing only, never granted to a member role ----
    Dataset(
        "v_exchange_vs_transit_daily",
        "Exchange traffic (members' ports, into the exchange) against transit (both directions) per day: "
        "exchange days from fct_member_traffic_daily (exchange time zone), transit days in the contracts' "
        "billing time zone.",
        "traffic_date",
        (m("avg_bps", "SUM(bytes) * 8.0 / 86400", "average bit/s", BPS),),
        sql=(
            "WITH tz AS (\n"
            "  SELECT COALESCE(ANY_VALUE(billing_timezone), 'UTC') AS name FROM main.dim_transit_contracts\n"
            "),\n"
            "transit AS (\n"
            "  SELECT CAST(timezone(tz.name, u.interval_start) AS DATE) AS traffic_date,\n"
            "         SUM(u.in_bytes) AS in_bytes, SUM(u.out_bytes) AS out_bytes\n"
            "  FROM main.fct_transit_usage_5min AS u CROSS JOIN tz GROUP BY 1\n"
            ")\n"
            "SELECT traffic_date, 'exchange' AS path, SUM(in_bytes) AS bytes\n"
            "FROM main.fct_member_traffic_daily GROUP BY 1, 2\n"
            "UNION ALL SELECT traffic_date, 'transit from providers', in_bytes FROM transit\n"
            "UNION ALL SELECT traffic_date, 'transit to providers', out_bytes FROM transit"
        ),
        virtual_columns=(("traffic_date", "DATE"), ("path", "VARCHAR"), ("bytes", "DOUBLE")),
    ),
    Dataset(
        "v_port_utilisation_daily",
        "Per port and day: 95th and peak utilisation of the port's speed (trusted intervals only).",
        "traffic_date",
        (
            m(
                "p95_utilisation",
                "MAX(GREATEST(in_p95_bps, out_p95_bps) / NULLIF(speed_mbps * 1e6, 0))",
                "95th utilisation",
                RATIO,
            ),
            m(
                "peak_utilisation",
                "MAX(GREATEST(in_max_bps, out_max_bps) / NULLIF(speed_mbps * 1e6, 0))",
                "peak utilisation",
                RATIO,
            ),
        ),
        sql=(
            "SELECT d.traffic_date, d.port_id, d.port_kind, d.member_id, p.site_id, p.speed_mbps,\n"
            "       d.in_p95_bps, d.out_p95_bps, d.in_max_bps, d.out_max_bps\n"
            "FROM main.fct_port_traffic_daily AS d LEFT JOIN main.dim_ports AS p USING (port_id)"
        ),
        virtual_columns=(
            ("traffic_date", "DATE"),
            ("port_id", "VARCHAR"),
            ("port_kind", "VARCHAR"),
            ("member_id", "VARCHAR"),
            ("site_id", "VARCHAR"),
            ("speed_mbps", "BIGINT"),
            ("in_p95_bps", "DOUBLE"),
            ("out_p95_bps", "DOUBLE"),
            ("in_max_bps", "DOUBLE"),
            ("out_max_bps", "DOUBLE"),
        ),
    ),
    Dataset(
        "v_exporter_freshness",
        "Every flow exporter known from the configuration or the loss records, with the last interval it "
        "sent and how far that is behind the newest interval in the data (a silent exporter lags or "
        "never sent).",
        "last_seen_at",
        (m("minutes_behind", "MAX(minutes_behind)", "minutes behind the newest data", ",d"),),
        sql=(
            "WITH known AS (\n"
            "  SELECT DISTINCT exporter_address FROM main.dim_ports WHERE exporter_address IS NOT NULL\n"
            "  UNION SELECT DISTINCT exporter_address FROM main.fct_flow_loss_5min\n"
            "),\n"
            "seen AS (\n"
            "  SELECT exporter_address, MAX(interval_start) AS last_seen_at,\n"
            "         SUM(samples_received) AS samples\n"
            "  FROM main.fct_flow_loss_5min GROUP BY 1\n"
            "),\n"
            "newest AS (SELECT MAX(interval_start) AS at FROM main.fct_flow_loss_5min)\n"
            "SELECT known.exporter_address, seen.last_seen_at, COALESCE(seen.samples, 0) AS samples,\n"
            "       CAST((EPOCH(newest.at) - EPOCH(seen.last_seen_at)) / 60 AS BIGINT) AS minutes_behind,\n"
            "       seen.last_seen_at IS NULL\n"
            "         OR newest.at - seen.last_seen_at > INTERVAL 15 MINUTE AS is_silent\n"
            "FROM known LEFT JOIN seen USING (exporter_address) CROSS JOIN newest"
        ),
        virtual_columns=(
            ("exporter_address", "VARCHAR"),
            ("last_seen_at", "TIMESTAMP WITH TIME ZONE"),
            ("samples", "HUGEINT"),
            ("minutes_behind", "BIGINT"),
            ("is_silent", "BOOLEAN"),
        ),
    ),
)

DATASET_BY_NAME = {d.name: d for d in DATASETS}


# --------------------------------------------------------------------------------------------------
# charts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    dataset: str
    viz: str  # line | bar | big_number_trend | big_number | table | raw_table | heatmap | pie
    metrics: tuple[str, ...] = ()
    x: str | None = None  # time axis (timeseries) or x column (heatmap)
    grain: str | None = None  # P1D, P1M, PT1H; None = the raw 5-minute value
    groupby: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # raw table columns
    order_by: tuple[tuple[str, bool], ...] = ()  # raw table: (column, ascending)
    where: str = ""
    # 5-minute marts grow by 105,120 rows a year per series: their charts show a recent window
    time_range: str = "No filter"
    series_limit: int = 0  # time series: only the N series largest by the first metric (0: all)
    row_limit: int = 1000
    description: str = ""
    width: int = 6
    height: int = CHART_ROW_HEIGHT

    @property
    def uuid(self) -> str:
        return stable_uuid("chart", self.key)


@dataclass(frozen=True)
class Markdown:
    key: str
    text: str
    width: int = 6
    height: int = 30


@dataclass(frozen=True)
class Dashboard:
    key: str
    title: str
    slug: str
    description: str
    rows: tuple[tuple[Chart | Markdown, ...], ...]

    @property
    def uuid(self) -> str:
        return stable_uuid("dashboard", self.key)

    @property
    def charts(self) -> list[Chart]:
        return [item for row in self.rows for item in row if isinstance(item, Chart)]


MEMBER_NOTE = Markdown(
    "member_note",
    "### Your figures only\n"
    "Every chart on this dashboard shows the rows of your own network: traffic is what your ports "
    "sent into the exchange (in) and received from it (out), measured by the switches' counters. "
    "The 95th percentile is the nearest-rank rule of your transit and port bills.\n\n"
    "Your share of the pooled transit bill is copied from your bill document, never recomputed: "
    "the nightly preview until the month is closed, then the final bill (or its latest correction). "
    "A new bill document is taken up by the next model build (started by the billing run itself). "
    "`manifest_sha256` is the checksum of the document's `MANIFEST.json`, which "
    "lists the checksum of every file of your bill and evidence pack.\n\n"
    "If the cooperative shares its totals with members, they are on the dashboard "
    "[The exchange as a whole](/superset/dashboard/exchange/).",
    width=12,
    height=30,
)

EXCHANGE_NOTE = Markdown(
    "exchange_note",
    "### The exchange as a whole\n"
    "Totals of the whole cooperative, with no member's own figure: traffic over the exchange (the "
    "sum over all members' ports), transit over every contract, the pooled transit bill and the "
    "price per Mbps it gives. A day or month with fewer than three members behind a figure shows "
    "no figure (with two, a total minus your own figure would be the other member's).",
    width=12,
    height=22,
)

TENDER_NOTE = Markdown(
    "tender_note",
    "### Tender scenarios\n"
    "From the newest `peerpool tender run` report (the Airflow DAG `peerpool_tender`), read by the "
    "next `peerpool build`: one to three providers per scenario, each provider committing optimally "
    "for its share of the traffic, cheapest expected cost first. Expected costs are estimates over "
    "the forecast's simulated paths; the report's `report.html` explains every column.",
    width=12,
    height=22,
)

MEMBER_DASHBOARD = Dashboard(
    "member",
    "My traffic at the exchange",
    "member",
    "A member's own traffic, 95th percentiles, peers, transit use, peering savings and ports.",
    (
        (
            Chart(
                "member_billed_p95_month",
                "My billed 95th, latest month (Mbps)",
                "fct_member_traffic_monthly",
                "big_number_trend",
                ("billed_p95_mbps",),
                x="month",
                grain="P1M",
                width=4,
            ),
            Chart(
                "member_traffic_5min",
                "My traffic, last 7 days, 5-minute (bit/s)",
                "fct_member_traffic_5min",
                "line",
                ("in_bps", "out_bps"),
                x="interval_start",
                width=8,
                time_range="Last week",
            ),
        ),
        (
            Chart(
                "member_traffic_daily",
                "My traffic per day (bytes)",
                "fct_member_traffic_daily",
                "bar",
                ("in_bytes", "out_bytes"),
                x="traffic_date",
                grain="P1D",
            ),
            Chart(
                "member_p95_daily",
                "My daily 95th (bit/s)",
                "fct_member_traffic_daily",
                "line",
                ("in_p95_bps", "out_p95_bps"),
                x="traffic_date",
                grain="P1D",
            ),
        ),
        (
            Chart(
                "member_p95_monthly",
                "My 95th by month",
                "fct_member_traffic_monthly",
                "table",
                ("billed_p95_mbps", "in_p95_mbps", "out_p95_mbps"),
                groupby=("member_id", "month"),
                row_limit=120,
            ),
            Chart(
                "member_top_peers",
                "My top peers at the exchange (bytes)",
                "fct_member_pair_traffic_daily",
                "table",
                ("bytes", "max_bps"),
                groupby=("src_member_id", "dst_member_id"),
                where="src_member_id <> dst_member_id",
                row_limit=25,
            ),
        ),
        (
            Chart(
                "member_transit_5min",
                "My transit traffic, last 7 days, 5-minute (bit/s)",
                "fct_member_transit_usage_5min",
                "line",
                ("in_bps", "out_bps"),
                x="interval_start",
                width=8,
                time_range="Last week",
            ),
            Chart(
                "member_transit_monthly",
                "My transit 95th by month",
                "fct_member_transit_usage",
                "table",
                ("billed_p95_mbps", "transit_bytes"),
                groupby=("member_id", "month"),
                row_limit=120,
                width=4,
            ),
        ),
        (
            Chart(
                "member_bill_share_month",
                "My share of the pooled transit bill, latest month",
                "fct_member_transit_bill_share_monthly",
                "big_number_trend",
                ("transit_share",),
                x="month",
                grain="P1M",
                width=4,
            ),
            Chart(
                "member_bill_share",
                "My share of the pooled transit bill (as billed)",
                "fct_member_transit_bill_share_monthly",
                "raw_table",
                columns=(
                    "month",
                    "document_status",
                    "transit_share",
                    "currency",
                    "own_transit_p95_mbps",
                    "allocation_method",
                    "allocation_weight",
                    "allocation_weight_unit",
                    "pool_total",
                    "document",
                    "manifest_sha256",
                ),
                order_by=(("month", False),),
                row_limit=120,
                width=8,
            ),
        ),
        (
            Chart(
                "member_peering_savings",
                "My savings from peering",
                "fct_peering_vs_transit",
                "bar",
                ("savings", "peering_cost", "peered_value"),
                x="month",
                grain="P1M",
            ),
            Chart(
                "member_break_even",
                "Peering break-even",
                "fct_peering_vs_transit",
                "table",
                ("peered_mbps", "break_even_mbps", "savings"),
                groupby=("member_id", "month"),
                row_limit=120,
            ),
        ),
        (
            Chart(
                "member_port_utilisation",
                "My busiest port's utilisation, last 7 days, 5-minute",
                "fct_port_traffic_5min",
                "line",
                ("in_utilisation", "out_utilisation"),
                x="interval_start",
                width=8,
                time_range="Last week",
                description="The highest in and out utilisation among the member's ports in each interval "
                "(one series each, whatever the number of ports: a per-port split costs seconds per view).",
            ),
            Chart(
                "member_port_quality",
                "My ports' data quality",
                "fct_port_quality_monthly",
                "raw_table",
                columns=("month", "port_id", "trusted_ratio", "intervals_gap", "outage_count"),
                order_by=(("month", False), ("port_id", True)),
                row_limit=200,
                width=4,
            ),
        ),
        (
            Chart(
                "member_port_outages",
                "My port outages",
                "fct_port_outages",
                "raw_table",
                columns=("port_id", "cause", "start_at", "end_at", "duration_s", "is_ongoing"),
                order_by=(("start_at", False),),
                row_limit=200,
                width=12,
            ),
        ),
        (MEMBER_NOTE,),
    ),
)

ECONOMICS_DASHBOARD = Dashboard(
    "economics",
    "Cooperative economics",
    "economics",
    "Exchange against transit, the pooled transit bill, the pooling dividend, peering savings, candidates.",
    (
        (
            Chart(
                "coop_exchange_vs_transit",
                "Exchange and transit traffic per day (average bit/s)",
                "v_exchange_vs_transit_daily",
                "line",
                ("avg_bps",),
                x="traffic_date",
                grain="P1D",
                groupby=("path",),
                width=12,
            ),
        ),
        (
            Chart(
                "coop_transit_cost",
                "Pooled transit cost by provider and month",
                "fct_transit_bill_monthly",
                "table",
                ("total_cost", "billed_mbps", "effective_price"),
                groupby=("provider", "billing_month"),
                row_limit=500,
            ),
            Chart(
                "coop_effective_price",
                "Effective price per Mbps by provider",
                "fct_transit_bill_monthly",
                "line",
                ("effective_price",),
                x="billing_month",
                grain="P1M",
                groupby=("provider",),
            ),
        ),
        (
            Chart(
                "coop_pooling_dividend",
                "The pooling dividend (Mbps)",
                "fct_pooling_dividend_monthly",
                "bar",
                ("sum_of_member_p95_mbps", "pool_p95_mbps", "dividend_mbps"),
                x="month",
                grain="P1M",
            ),
            Chart(
                "coop_peering_savings",
                "The cooperative's savings from peering",
                "fct_peering_vs_transit",
                "bar",
                ("savings", "peering_cost"),
                x="month",
                grain="P1M",
            ),
        ),
        (
            Chart(
                "coop_peering_candidates",
                "Top peering candidates",
                "fct_peering_candidates",
                "raw_table",
                columns=(
                    "month",
                    "traffic_rank",
                    "remote_asn",
                    "avg_mbps",
                    "saving_if_peered",
                    "peeringdb_exchange_count",
                    "is_in_peeringdb",
                ),
                order_by=(("month", False), ("traffic_rank", True)),
                where="traffic_rank <= 20",
                row_limit=240,
                width=12,
            ),
        ),
    ),
)

PURCHASING_DASHBOARD = Dashboard(
    "purchasing",
    "Transit purchasing",
    "purchasing",
    "95th-percentile history against commits, provider split, members' transit use and bill shares, "
    "tender scenarios.",
    (
        (
            Chart(
                "purchasing_p95_vs_commit",
                "Billed 95th against commit (Mbps)",
                "fct_transit_bill_monthly",
                "line",
                ("billed_mbps", "commit_mbps"),
                x="billing_month",
                grain="P1M",
                groupby=("contract_id",),
                width=8,
            ),
            Chart(
                "purchasing_provider_split",
                "Provider split (billed Mbps)",
                "fct_transit_bill_monthly",
                "pie",
                ("billed_mbps",),
                groupby=("provider",),
                width=4,
            ),
        ),
        (
            Chart(
                "purchasing_usage_5min",
                "Transit usage per contract, last 7 days, 5-minute (bit/s)",
                "fct_transit_usage_5min",
                "line",
                ("in_bps", "out_bps"),
                x="interval_start",
                groupby=("contract_id",),
                width=12,
                time_range="Last week",
                series_limit=10,
            ),
        ),
        (
            Chart(
                "purchasing_member_transit",
                "Members' transit 95th by month",
                "fct_member_transit_usage",
                "table",
                ("billed_p95_mbps", "transit_bytes"),
                groupby=("month", "member_id"),
                row_limit=5000,
            ),
            Chart(
                "purchasing_contracts",
                "Contracts",
                "dim_transit_contracts",
                "raw_table",
                columns=(
                    "contract_id",
                    "provider",
                    "commit_mbps",
                    "price_per_mbps",
                    "burst_price_per_mbps",
                    "percentile",
                    "direction_rule",
                    "term_start_date",
                    "term_end_date",
                ),
                order_by=(("provider", True),),
                row_limit=100,
            ),
        ),
        (
            Chart(
                "purchasing_bill_shares",
                "Members' shares of the pooled transit bill (as billed)",
                "fct_member_transit_bill_share_monthly",
                "raw_table",
                columns=(
                    "month",
                    "member_id",
                    "document_status",
                    "transit_share",
                    "own_transit_p95_mbps",
                    "allocation_method",
                    "pool_total",
                ),
                order_by=(("month", False), ("transit_share", False)),
                row_limit=5000,
                width=12,
            ),
        ),
        (TENDER_NOTE,),
        (
            Chart(
                "purchasing_tender_best",
                "Cheapest tender scenario: expected monthly cost",
                "fct_tender_scenarios",
                "big_number",
                ("expected_monthly_cost",),
                width=4,
            ),
            Chart(
                "purchasing_tender_scenarios",
                "Tender scenarios, cheapest first",
                "fct_tender_scenarios",
                "raw_table",
                columns=(
                    "scenario_rank",
                    "scenario",
                    "commits",
                    "expected_monthly_cost",
                    "expected_total_cost",
                    "cost_p95_total",
                    "effective_price_per_mbps",
                    "site_loads",
                    "notes",
                ),
                order_by=(("scenario_rank", True),),
                row_limit=100,
                width=8,
            ),
        ),
        (
            Chart(
                "purchasing_tender_split",
                "Commit split of the cheapest scenario (Mbps)",
                "fct_tender_scenario_providers",
                "pie",
                ("commit_mbps",),
                groupby=("provider",),
                where="scenario_rank = 1",
                width=4,
            ),
            Chart(
                "purchasing_tender_commits",
                "Optimal commit per offer (one provider for the whole pool)",
                "fct_tender_commits",
                "raw_table",
                columns=(
                    "offer_rank",
                    "provider",
                    "commit_mbps",
                    "tier_price_per_mbps",
                    "burst_price_per_mbps",
                    "expected_monthly_cost",
                    "overage_probability",
                    "worst_month_overage_probability",
                    "expected_overage_cost",
                    "effective_price_per_mbps",
                ),
                order_by=(("offer_rank", True),),
                row_limit=100,
                width=8,
            ),
        ),
    ),
)

EXCHANGE_DASHBOARD = Dashboard(
    "exchange",
    "The exchange as a whole",
    "exchange",
    "Cooperative totals without any member's own figure: traffic, transit, the pooled bill and price.",
    (
        (EXCHANGE_NOTE,),
        (
            Chart(
                "exchange_traffic_daily",
                "Traffic over the exchange and transit per day (bit/s)",
                "fct_exchange_traffic_daily",
                "line",
                ("exchange_avg_bps", "exchange_p95_bps", "transit_p95_bps"),
                x="traffic_date",
                grain="P1D",
                width=8,
            ),
            Chart(
                "exchange_price_month",
                "Pooled transit price per Mbps, latest month",
                "fct_exchange_traffic_monthly",
                "big_number_trend",
                ("pooled_price_per_mbps",),
                x="month",
                grain="P1M",
                width=4,
            ),
        ),
        (
            Chart(
                "exchange_bytes_daily",
                "Bytes over the exchange and over transit per day",
                "fct_exchange_traffic_daily",
                "bar",
                ("exchange_bytes", "transit_bytes"),
                x="traffic_date",
                grain="P1D",
            ),
            Chart(
                "exchange_monthly",
                "The exchange per month",
                "fct_exchange_traffic_monthly",
                "table",
                (
                    "exchange_p95_mbps",
                    "transit_billed_mbps",
                    "pool_transit_cost",
                    "pooled_price_per_mbps",
                    "members_counted",
                ),
                groupby=("month",),
                row_limit=120,
            ),
        ),
    ),
)

OPERATIONS_DASHBOARD = Dashboard(
    "operations",
    "Exchange operations",
    "operations",
    "Ports, the member matrix, sFlow against counters, loss, unknown MACs, data quality, outages, exporters.",
    (
        (
            Chart(
                "ops_port_utilisation",
                "Port utilisation (95th and peak of the day)",
                "v_port_utilisation_daily",
                "table",
                ("p95_utilisation", "peak_utilisation"),
                groupby=("port_id", "port_kind", "member_id"),
                row_limit=2000,
            ),
            Chart(
                "ops_member_matrix",
                "Member matrix (bytes, source to destination)",
                "fct_member_pair_traffic_daily",
                "heatmap",
                ("bytes",),
                x="src_member_id",
                groupby=("dst_member_id",),
                row_limit=50000,
            ),
        ),
        (
            Chart(
                "ops_reconciliation",
                "sFlow against counters, last 30 days (hourly ratio)",
                "fct_reconciliation_hourly",
                "line",
                ("in_ratio", "out_ratio"),
                x="hour_start",
                grain="PT1H",
                width=8,
                time_range="Last month",
            ),
            Chart(
                "ops_reconciliation_alarms",
                "Ports with reconciliation alarms, last 30 days",
                "fct_reconciliation_5min",
                "table",
                ("alarms", "in_ratio", "out_ratio"),
                groupby=("port_id",),
                row_limit=500,
                width=4,
                time_range="Last month",
            ),
        ),
        (
            Chart(
                "ops_sample_loss",
                "Sample loss per agent, last 30 days (hourly)",
                "fct_flow_loss_5min",
                "line",
                ("sample_loss",),
                x="interval_start",
                grain="PT1H",
                groupby=("exporter_address",),
                width=8,
                time_range="Last month",
                series_limit=10,
            ),
            Chart(
                "ops_silent_exporters",
                "Exporters: last data and lag",
                "v_exporter_freshness",
                "raw_table",
                columns=("exporter_address", "is_silent", "last_seen_at", "minutes_behind", "samples"),
                order_by=(("is_silent", False), ("minutes_behind", False)),
                row_limit=500,
                width=4,
            ),
        ),
        (
            Chart(
                "ops_unknown_macs",
                "Unknown MAC addresses",
                "fct_unknown_macs_daily",
                "table",
                ("sample_count", "estimated_bytes", "last_seen_at"),
                groupby=("mac", "exporter_address", "vlan", "direction"),
                row_limit=500,
            ),
            Chart(
                "ops_data_quality",
                "Data quality per port and month",
                "fct_port_quality_monthly",
                "raw_table",
                columns=(
                    "month",
                    "port_id",
                    "port_kind",
                    "trusted_ratio",
                    "intervals_gap",
                    "intervals_failed_read",
                    "intervals_reset",
                    "intervals_wrap",
                    "intervals_over_speed",
                    "outage_count",
                ),
                order_by=(("trusted_ratio", True),),
                row_limit=2000,
            ),
        ),
        (
            Chart(
                "ops_outages",
                "Port outages",
                "fct_port_outages",
                "raw_table",
                columns=("port_id", "member_id", "cause", "start_at", "end_at", "duration_s", "is_ongoing"),
                order_by=(("start_at", False),),
                row_limit=1000,
                width=12,
            ),
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (
    MEMBER_DASHBOARD,
    ECONOMICS_DASHBOARD,
    PURCHASING_DASHBOARD,
    OPERATIONS_DASHBOARD,
    EXCHANGE_DASHBOARD,
)


# --------------------------------------------------------------------------------------------------
# rendering to Superset's import format
# --------------------------------------------------------------------------------------------------

TEMPORAL_TYPES = ("DATE", "TIMESTAMP")


def _column(name: str, sql_type: str) -> dict[str, Any]:
    return {
        "column_name": name,
        "verbose_name": None,
        "is_dttm": sql_type.upper().startswith(TEMPORAL_TYPES),
        "is_active": True,
        "type": sql_type,
        "advanced_data_type": None,
        "groupby": True,
        "filterable": True,
        "expression": None,
        "description": None,
        "python_date_format": None,
        "extra": None,
    }


def database_yaml() -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": "${PEERPOOL_SERVING_URI}",
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {
            "allows_virtual_table_explore": True,
            "engine_params": {
                "connect_args": {
                    "read_only": True,
                    # no file system or network from SQL; no SET to undo that or anything else
                    "config": {"enable_external_access": False, "lock_configuration": True},
                },
            },
            "metadata_params": {},
            "schemas_allowed_for_file_upload": [],
        },
        "uuid": DATABASE_UUID,
        "version": VERSION,
    }


def dataset_yaml(dataset: Dataset, columns: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "table_name": dataset.name,
        "main_dttm_col": dataset.main_dttm,
        "description": dataset.description,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": "main",
        "catalog": None,
        "sql": dataset.sql,
        "source_db_engine": "duckdb" if dataset.sql else None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": dataset.uuid,
        "metrics": [
            {
                "metric_name": metric.name,
                "verbose_name": metric.label,
                "metric_type": None,
                "expression": metric.expression,
                "description": None,
                "d3format": metric.d3format,
                "currency": None,
                "extra": None,
                "warning_text": None,
            }
            for metric in dataset.metrics
        ],
        "columns": [_column(name, sql_type) for name, sql_type in columns],
        "version": VERSION,
        "database_uuid": DATABASE_UUID,
    }


def _where_filter(chart: Chart) -> list[dict[str, Any]]:
    if not chart.where:
        return []
    return [{"expressionType": "SQL", "clause": "WHERE", "sqlExpression": chart.where, "subject": None,
             "operator": None, "comparator": None, "isExtra": False, "isNew": False,
             "filterOptionName": f"filter_{chart.key}"}]  # fmt: skip


def _time_filter(chart: Chart, dataset: Dataset) -> list[dict[str, Any]]:
    if dataset.main_dttm is None:
        return []
    return [{"clause": "WHERE", "comparator": chart.time_range, "expressionType": "SIMPLE",
             "operator": "TEMPORAL_RANGE", "subject": dataset.main_dttm}]  # fmt: skip


def _timestamp_format(chart: Chart) -> str:
    """Months as 2026-10, everything else to the minute (5-minute intervals, outage times)."""
    shown = set(chart.groupby) | set(chart.columns)
    return "%Y-%m" if shown & {"month", "billing_month"} else "%Y-%m-%d %H:%M"


def chart_params(chart: Chart, dataset: Dataset) -> dict[str, Any]:
    """The explore form data Superset's front end renders the chart from."""
    common: dict[str, Any] = {
        "datasource": f"{dataset.uuid}__table",
        "viz_type": VIZ_TYPE[chart.viz],
        "adhoc_filters": _time_filter(chart, dataset) + _where_filter(chart),
        "time_range": chart.time_range,
        "extra_form_data": {},
        "dashboards": [],
    }
    if chart.viz in ("line", "bar"):
        common.update(
            {
                "x_axis": chart.x,
                "time_grain_sqla": chart.grain,
                "metrics": list(chart.metrics),
                "groupby": list(chart.groupby),
                "row_limit": 50000,
                "series_limit": chart.series_limit,
                "series_limit_metric": chart.metrics[0] if chart.series_limit else None,
                "order_desc": True,
                "show_legend": True,
                "legendType": "scroll",
                "legendOrientation": "top",
                "rich_tooltip": True,
                "zoomable": True,
                "truncate_metric": True,
                "x_axis_time_format": "smart_date",
                "y_axis_format": DATASET_METRIC_FORMAT.get((dataset.name, chart.metrics[0]))
                or "SMART_NUMBER",
                "color_scheme": "supersetColors",
                "annotation_layers": [],
                "comparison_type": "values",
            }
        )
        if chart.viz == "line":
            # dots on daily and monthly lines: a single month is a single point
            common.update(
                {"seriesType": "line", "markerEnabled": chart.grain in ("P1D", "P1M"), "opacity": 0.2}
            )
        else:
            common.update({"orientation": "vertical", "stack": None})
    elif chart.viz == "big_number_trend":
        common.update(
            {
                "x_axis": chart.x,
                "time_grain_sqla": chart.grain,
                "metric": chart.metrics[0],
                "show_trend_line": True,
                "start_y_axis_at_zero": True,
                "compare_lag": 1,
                "compare_suffix": "vs previous month",
                "y_axis_format": DATASET_METRIC_FORMAT.get((dataset.name, chart.metrics[0]))
                or "SMART_NUMBER",
                "header_font_size": 0.4,
                "subheader_font_size": 0.15,
                "rolling_type": "None",
            }
        )
    elif chart.viz == "big_number":
        common.update(
            {
                "metric": chart.metrics[0],
                "y_axis_format": DATASET_METRIC_FORMAT.get((dataset.name, chart.metrics[0]))
                or "SMART_NUMBER",
                "header_font_size": 0.4,
                "subheader_font_size": 0.15,
            }
        )
    elif chart.viz == "table":
        common.update(
            {
                "query_mode": "aggregate",
                "groupby": list(chart.groupby),
                "metrics": list(chart.metrics),
                "all_columns": [],
                "percent_metrics": [],
                "order_by_cols": [],
                "timeseries_limit_metric": chart.metrics[0],
                "order_desc": True,
                "row_limit": chart.row_limit,
                "server_page_length": 10,
                "table_timestamp_format": _timestamp_format(chart),
                "show_cell_bars": True,
                "color_pn": True,
            }
        )
    elif chart.viz == "raw_table":
        common.update(
            {
                "query_mode": "raw",
                "groupby": [],
                "metrics": [],
                "all_columns": list(chart.columns),
                "percent_metrics": [],
                "order_by_cols": [json.dumps([column, ascending]) for column, ascending in chart.order_by],
                "row_limit": chart.row_limit,
                "server_page_length": 10,
                "table_timestamp_format": _timestamp_format(chart),
                "show_cell_bars": False,
                "color_pn": True,
            }
        )
    elif chart.viz == "heatmap":
        common.update(
            {
                "x_axis": chart.x,
                "groupby": chart.groupby[0],
                "metric": chart.metrics[0],
                "row_limit": chart.row_limit,
                "linear_color_scheme": "superset_seq_1",
                "normalize_across": "heatmap",
                "legend_type": "continuous",
                "show_legend": True,
                "show_values": False,
                "show_percentage": False,
                "sort_x_axis": "alpha_asc",
                "sort_y_axis": "alpha_asc",
                "xscale_interval": -1,
                "yscale_interval": -1,
                "left_margin": 90,
                "bottom_margin": 60,
                "value_bounds": [None, None],
                "y_axis_format": "SMART_NUMBER",
            }
        )
    elif chart.viz == "pie":
        common.update(
            {
                "groupby": list(chart.groupby),
                "metric": chart.metrics[0],
                "row_limit": 100,
                "sort_by_metric": True,
                "show_labels": True,
                "show_legend": True,
                "label_type": "key_percent",
                "number_format": "SMART_NUMBER",
                "color_scheme": "supersetColors",
                "donut": False,
            }
        )
    else:  # pragma: no cover - the descriptions above use only these kinds
        raise ValueError(f"chart {chart.key}: unknown kind {chart.viz!r}")
    return common


VIZ_TYPE = {
    "line": "echarts_timeseries_line",
    "bar": "echarts_timeseries_bar",
    "big_number_trend": "big_number",
    "big_number": "big_number_total",
    "table": "table",
    "raw_table": "table",
    "heatmap": "heatmap_v2",
    "pie": "pie",
}

DATASET_METRIC_FORMAT = {(d.name, metric.name): metric.d3format for d in DATASETS for metric in d.metrics}


def _axis(chart: Chart) -> dict[str, Any]:
    axis: dict[str, Any] = {"columnType": "BASE_AXIS", "sqlExpression": chart.x, "label": chart.x,
                            "expressionType": "SQL"}  # fmt: skip
    if chart.grain:
        axis["timeGrain"] = chart.grain
    return axis


def query_context(chart: Chart, dataset: Dataset, params: dict[str, Any]) -> dict[str, Any]:
    """What the front end would send to /api/v1/chart/data for this chart (saved so the API,
    reports and ``/api/v1/chart/{id}/data`` can run the chart without a browser)."""
    filters: list[dict[str, Any]] = []
    if dataset.main_dttm:
        filters.append({"col": dataset.main_dttm, "op": "TEMPORAL_RANGE", "val": chart.time_range})
    query: dict[str, Any] = {
        "filters": filters,
        "extras": {"having": "", "where": f"({chart.where})" if chart.where else ""},
        "applied_time_extras": {},
        "annotation_layers": [],
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    if chart.viz in ("line", "bar", "big_number_trend"):
        if chart.grain:
            query["extras"]["time_grain_sqla"] = chart.grain
        query.update(
            {
                "columns": [_axis(chart), *chart.groupby],
                "metrics": list(chart.metrics),
                "orderby": [[chart.metrics[0], False]],
                "row_limit": params.get("row_limit", 50000),
                "series_columns": list(chart.groupby),
                "series_limit": chart.series_limit,
                "series_limit_metric": chart.metrics[0] if chart.series_limit else None,
                "order_desc": True,
                "time_offsets": [],
                "post_processing": [
                    {
                        "operation": "pivot",
                        "options": {
                            "index": [chart.x],
                            "columns": list(chart.groupby),
                            "aggregates": {metric: {"operator": "mean"} for metric in chart.metrics},
                            "drop_missing_columns": False,
                        },
                    },
                    {"operation": "flatten"},
                ],
            }
        )
    elif chart.viz == "big_number":
        query.update({"columns": [], "metrics": list(chart.metrics), "row_limit": 1, "post_processing": []})
    elif chart.viz == "table":
        query.update(
            {
                "columns": list(chart.groupby),
                "metrics": list(chart.metrics),
                "orderby": [[chart.metrics[0], False]],
                "row_limit": chart.row_limit,
                "series_limit": 0,
                "order_desc": True,
                "post_processing": [],
            }
        )
    elif chart.viz == "raw_table":
        query.update(
            {
                "columns": list(chart.columns),
                "metrics": [],
                "orderby": [[column, ascending] for column, ascending in chart.order_by],
                "row_limit": chart.row_limit,
                "post_processing": [],
            }
        )
    elif chart.viz == "heatmap":
        query.update(
            {
                "columns": [chart.x, chart.groupby[0]],
                "metrics": list(chart.metrics),
                "orderby": [[chart.metrics[0], False]],
                "row_limit": chart.row_limit,
                "post_processing": [],
            }
        )
    elif chart.viz == "pie":
        query.update(
            {
                "columns": list(chart.groupby),
                "metrics": list(chart.metrics),
                "orderby": [[chart.metrics[0], False]],
                "row_limit": 100,
                "post_processing": [],
            }
        )
    return {
        "datasource": {"id": 0, "type": "table"},  # replaced with the dataset's id on import
        "force": False,
        "queries": [query],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }


def chart_yaml(chart: Chart) -> dict[str, Any]:
    dataset = DATASET_BY_NAME[chart.dataset]
    params = chart_params(chart, dataset)
    return {
        "slice_name": chart.title,
        "description": chart.description or None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": params["viz_type"],
        "params": params,
        "query_context": json.dumps(query_context(chart, dataset, params), sort_keys=True, indent=1),
        "cache_timeout": None,
        "uuid": chart.uuid,
        "version": VERSION,
        "dataset_uuid": dataset.uuid,
    }


def dashboard_yaml(dashboard: Dashboard, chart_ids: dict[str, int]) -> dict[str, Any]:
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": ["GRID_ID"], "id": "ROOT_ID", "type": "ROOT"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": dashboard.title}, "type": "HEADER"},
        "GRID_ID": {"children": [], "id": "GRID_ID", "parents": ["ROOT_ID"], "type": "GRID"},
    }
    for index, row in enumerate(dashboard.rows):
        row_id = f"ROW-{dashboard.key}-{index}"
        position["GRID_ID"]["children"].append(row_id)
        children = []
        for item in row:
            if isinstance(item, Chart):
                node_id = f"CHART-{item.key}"
                meta = {"chartId": chart_ids[item.key], "uuid": item.uuid, "sliceName": item.title}
                kind = "CHART"
            else:
                node_id = f"MARKDOWN-{item.key}"
                meta = {"code": item.text}
                kind = "MARKDOWN"
            parents = ["ROOT_ID", "GRID_ID", row_id]
            meta.update(width=item.width, height=item.height)
            position[node_id] = {
                "children": [],
                "id": node_id,
                "parents": parents,
                "type": kind,
                "meta": meta,
            }
            children.append(node_id)
        position[row_id] = {
            "children": children,
            "id": row_id,
            "parents": ["ROOT_ID", "GRID_ID"],
            "type": "ROW",
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
    return {
        "dashboard_title": dashboard.title,
        "description": dashboard.description,
        "css": "",
        "slug": dashboard.slug,
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": dashboard.uuid,
        "version": VERSION,
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "cross_filters_enabled": False,
            "refresh_frequency": 0,
            "expanded_slices": {},
            "label_colors": {},
            "shared_label_colors": [],
            "timed_refresh_immune_slices": [],
            "default_filters": "{}",
            "chart_configuration": {},
            "global_chart_configuration": {},
            "native_filter_configuration": [],
        },
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Multi-line strings (SQL, query contexts, markdown) as readable literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(data: dict[str, Any]) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)
    return text


def contract_columns(models_yml: Path = MARTS_YML) -> dict[str, list[tuple[str, str]]]:
    """Each mart's columns and types as the dbt contract (``contract: {enforced: true}``) declares them."""
    models = yaml.safe_load(models_yml.read_text())["models"]
    return {
        model["name"]: [
            (column["name"], str(column["data_type"]).upper()) for column in model.get("columns", [])
        ]
        for model in models
    }


def render(columns: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """Relative path -> YAML text of every asset."""
    files = {
        "metadata.yaml": dump(
            {"version": VERSION, "type": "assets", "timestamp": "2026-01-01T00:00:00+00:00"}
        ),
        "databases/peerpool_serving.yaml": dump(database_yaml()),
    }
    for dataset in DATASETS:
        if dataset.sql is None:
            if dataset.name not in columns:
                raise SystemExit(f"dataset {dataset.name}: no mart of that name in {MARTS_YML.name}")
            cols = columns[dataset.name]
        else:
            cols = list(dataset.virtual_columns)
        files[f"datasets/peerpool_serving/{dataset.name}.yaml"] = dump(dataset_yaml(dataset, cols))
    chart_ids: dict[str, int] = {}
    for dashboard in DASHBOARDS:
        for chart in dashboard.charts:
            if chart.key in chart_ids:
                raise SystemExit(f"chart key {chart.key} used twice")
            chart_ids[chart.key] = len(chart_ids) + 1
            files[f"charts/{chart.key}.yaml"] = dump(chart_yaml(chart))
        files[f"dashboards/{dashboard.key}.yaml"] = dump(dashboard_yaml(dashboard, chart_ids))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args()
    files = render(contract_columns())
    for stale in args.out.rglob("*.yaml") if args.out.exists() else []:
        if str(stale.relative_to(args.out)) not in files:
            stale.unlink()
    for relative, text in files.items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
