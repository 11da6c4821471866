"""The purchasing group's report: one HTML page (tables and inline SVG charts) plus a CSV
file for every table and ``report.json`` holding all of them.

Money is shown as ``Decimal`` rounded to the grosz (the cost-sharing columns add up exactly
to the month's bill); expected costs are estimates over the forecast's simulated paths.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from pathlib import Path

import numpy as np

from peerpool.tender import svg
from peerpool.tender.plan import TenderPlan

Cell = str | int | float | Decimal | None


@dataclass(frozen=True)
class Table:
    name: str  # file stem
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""


def _mbps(value: float) -> float:
    return round(float(value), 3)


def tables(plan: TenderPlan) -> list[Table]:
    """Every table of the report, in report order."""
    cur = plan.currency
    out: list[Table] = []
    out.append(
        Table(
            "pooling_dividend",
            "Pooling dividend per month",
            (
                "month",
                "direction_rule",
                "members",
                "intervals",
                "coverage",
                "sum_member_p95_mbps",
                "pool_p95_mbps",
                "dividend_mbps",
                "dividend_share",
                f"members_alone_{cur.lower()}",
                f"pool_alone_{cur.lower()}",
                f"saving_{cur.lower()}",
                f"bill_{cur.lower()}",
            ),
            [
                (
                    m.month,
                    m.direction_rule,
                    len(m.dividend.members),
                    m.dividend.intervals,
                    round(m.coverage, 4),
                    _mbps(m.dividend.sum_of_member_p95_mbps),
                    _mbps(m.dividend.pool_p95_mbps),
                    _mbps(m.dividend.dividend_mbps),
                    round(m.dividend.dividend_share, 4),
                    m.alone_cost,
                    m.pool_cost,
                    m.alone_cost - m.pool_cost,
                    m.bill,
                )
                for m in plan.months
            ],
            note=f"'alone' prices each member's own 95th at {plan.reference_offer}'s buy-alone price; "
            "'pool' prices the pool's 95th the same way; the bill is the sum of the month's contract totals.",
        )
    )
    fc = plan.pool_forecast
    if fc is not None:
        qs = {q: fc.quantile(q) for q in (0.025, 0.1, 0.5, 0.9, 0.975)}
        forecast_rows: list[tuple[Cell, ...]] = [
            (month, *(_mbps(qs[q][i]) for q in (0.025, 0.1, 0.5, 0.9, 0.975)))
            for i, month in enumerate(fc.months)
        ]
        forecast_note = (
            f"{fc.model}; seasonality: {fc.seasonality}; monthly growth {fc.monthly_growth:+.2%} "
            f"(95% {fc.monthly_growth_interval[0]:+.2%} to {fc.monthly_growth_interval[1]:+.2%}); "
            f"{fc.degrees_of_freedom} degrees of freedom. " + " ".join(fc.notes)
        )
    else:
        forecast_rows, forecast_note = [], "not enough history for a forecast (see the notes)"
    out.append(
        Table(
            "forecast_pool",
            "Forecast of the pool's monthly 95th (Mbps)",
            ("month", "p2_5", "p10", "median", "p90", "p97_5"),
            forecast_rows,
            note=forecast_note,
        )
    )
    member_rows: list[tuple[Cell, ...]] = []
    for member, mfc in sorted(plan.member_forecasts.items()):
        last = len(mfc.months) - 1
        member_rows.append(
            (
                member,
                len(mfc.history_months),
                mfc.seasonality,
                round(mfc.annual_growth, 4),
                mfc.months[last],
                _mbps(mfc.quantile(0.025)[last]),
                _mbps(mfc.median[last]),
                _mbps(mfc.quantile(0.975)[last]),
                "",
            )
        )
    for member, note in sorted(plan.member_forecast_notes.items()):
        member_rows.append((member, 0, "", None, "", None, None, None, note))
    out.append(
        Table(
            "forecast_members",
            "Forecast per member (last month of the plan)",
            (
                "member",
                "history_months",
                "seasonality",
                "annual_growth",
                "month",
                "p2_5",
                "median",
                "p97_5",
                "note",
            ),
            member_rows,
        )
    )
    out.append(
        Table(
            "commits",
            "Optimal commit per offer (whole pool with one provider)",
            (
                "provider",
                "commit_mbps",
                "tier_price_per_mbps",
                "burst_price_per_mbps",
                "months",
                f"expected_monthly_{cur.lower()}",
                f"expected_total_{cur.lower()}",
                f"cost_p95_total_{cur.lower()}",
                "overage_probability",
                "worst_month_overage_probability",
                f"expected_overage_{cur.lower()}",
                "effective_per_mbps",
            ),
            [
                (
                    e.provider,
                    e.commit_mbps,
                    e.tier.price_per_mbps,
                    e.tier.burst_price_per_mbps,
                    e.months,
                    e.expected_monthly_cost,
                    e.expected_cost,
                    e.cost_p95,
                    round(e.overage_probability, 4),
                    round(e.worst_month_overage_probability, 4),
                    e.expected_overage_cost,
                    e.effective_pln_per_mbps,
                )
                for e in sorted(plan.best_commits, key=lambda e: e.expected_cost)
            ],
            note=f"plan from {plan.start_month} for {plan.horizon} months; expected costs are means over the "
            "forecast's simulated paths and include CPI indexation and fixed fees.",
        )
    )
    out.append(
        Table(
            "commit_curve",
            "Commit curve: expected cost and overage risk per commit",
            (
                "provider",
                "commit_mbps",
                f"expected_monthly_{cur.lower()}",
                "overage_probability",
                "worst_month_overage_probability",
                f"expected_overage_{cur.lower()}",
            ),
            [
                (
                    p,
                    e.commit_mbps,
                    e.expected_monthly_cost,
                    round(e.overage_probability, 4),
                    round(e.worst_month_overage_probability, 4),
                    e.expected_overage_cost,
                )
                for p, curve in sorted(plan.curves.items())
                for e in curve
            ],
        )
    )
    out.append(
        Table(
            "scenarios",
            "Scenarios: one to three providers, best split each",
            (
                "scenario",
                "providers",
                "commits_mbps",
                f"expected_monthly_{cur.lower()}",
                f"expected_total_{cur.lower()}",
                f"cost_p95_total_{cur.lower()}",
                "effective_per_mbps",
                "site_loads",
                "notes",
            ),
            [
                (
                    s.name,
                    len(s.providers),
                    "; ".join(f"{e.provider} {e.commit_mbps}" for e in s.commits),
                    s.expected_monthly_cost,
                    s.expected_cost,
                    s.cost_p95,
                    s.effective_pln_per_mbps,
                    "; ".join(
                        f"{sl.provider}@{sl.site} {sl.expected_peak_mbps:,.0f} Mbps"
                        + (f" ({sl.utilisation:.0%} of port)" if sl.utilisation is not None else "")
                        for sl in s.site_loads
                    ),
                    " ".join(s.notes),
                )
                for s in plan.scenarios
            ],
            note="each provider carries its share of every interval (a planning approximation); "
            "fees are paid at every site a provider is connected at.",
        )
    )
    shares = sorted(plan.shares, key=lambda r: (-r.proportional, r.member))
    total = (
        "TOTAL",
        _mbps(sum(r.own_p95_mbps for r in shares)),
        sum((r.alone for r in shares), Decimal(0)),
        sum((r.proportional for r in shares), Decimal(0)),
        sum((r.capacity for r in shares), Decimal(0)),
        sum((r.peak for r in shares), Decimal(0)),
        sum((r.shapley for r in shares), Decimal(0)),
        None,
        None,
    )
    out.append(
        Table(
            "cost_sharing",
            f"Cost sharing of the {plan.share_month} bill, side by side ({cur})",
            (
                "member",
                "own_p95_mbps",
                "alone",
                "proportional_p95",
                "capacity_share",
                "peak_contribution",
                "shapley",
                "shapley_value",
                "shapley_half_width_95",
            ),
            [
                (
                    r.member,
                    _mbps(r.own_p95_mbps),
                    r.alone,
                    r.proportional,
                    r.capacity,
                    r.peak,
                    r.shapley,
                    round(r.shapley_value, 4),
                    round(r.shapley_half_width, 4),
                )
                for r in shares
            ]
            + [total],
            note=f"Shapley: {plan.shapley_method}. 'alone' is the member's own 95th priced at "
            f"{plan.reference_offer}'s buy-alone price. Each method's column adds up exactly to the bill "
            "(largest remainder in grosze, ties to the smaller member id).",
        )
    )
    return out


def _csv_value(value: Cell) -> str:
    return "" if value is None else str(value)


def _json_value(value: Cell) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return value


def write_csv(table: Table, directory: Path) -> Path:
    path = directory / f"{table.name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_csv_value(v) for v in row])
    return path


def _html_table(table: Table, limit: int | None = None) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = table.rows if limit is None or len(table.rows) <= limit else table.rows[:limit]
    body = []
    for row in rows:
        cells = []
        for v in row:
            text = "" if v is None else (f"{v:,.3f}" if isinstance(v, float) else str(v))
            cls = ' class="num"' if isinstance(v, int | float | Decimal) else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if limit is not None and len(table.rows) > limit:
        more = f'<p class="note">first {limit} of {len(table.rows)} rows; all in {escape(table.name)}.csv</p>'
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (
        f"<h3>{escape(table.title)}</h3>{note}<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _charts(plan: TenderPlan) -> dict[str, str]:
    charts: dict[str, str] = {}
    months = [m.month for m in plan.months]
    charts["pooling"] = svg.bar_chart(
        months,
        [
            ("sum of members' own 95ths", [m.dividend.sum_of_member_p95_mbps for m in plan.months]),
            ("95th of the pool", [m.dividend.pool_p95_mbps for m in plan.months]),
        ],
        title="Pooling dividend",
        y_label="Mbps",
    )
    fc = plan.pool_forecast
    if fc is not None:
        labels = list(fc.history_months) + list(fc.months)
        h = len(fc.history_months)
        pad: list[float | None] = [None] * h
        charts["forecast"] = svg.line_chart(
            labels,
            [
                ("history", [*fc.history_mbps, *([None] * len(fc.months))]),
                ("median forecast", [*pad, *fc.median.tolist()]),
            ],
            bands=[
                ("95% band", [*pad, *fc.quantile(0.025).tolist()], [*pad, *fc.quantile(0.975).tolist()]),
                ("80% band", [*pad, *fc.quantile(0.1).tolist()], [*pad, *fc.quantile(0.9).tolist()]),
            ],
            title="Pool's monthly 95th: history and forecast",
            y_label="Mbps",
        )
    for provider, curve in sorted(plan.curves.items()):
        if not curve:
            continue
        labels_c = [svg.fmt(float(e.commit_mbps)) for e in curve]
        charts[f"curve:{provider}"] = svg.line_chart(
            labels_c,
            [("expected monthly cost", [float(e.expected_monthly_cost) for e in curve])],
            title=f"{provider}: expected monthly cost by commit (Mbps)",
            y_label=plan.currency,
        )
        charts[f"risk:{provider}"] = svg.line_chart(
            labels_c,
            [
                ("P(95th > commit), mean month", [e.overage_probability for e in curve]),
                ("worst month", [e.worst_month_overage_probability for e in curve]),
            ],
            title=f"{provider}: overage probability by commit (Mbps)",
            y_label="probability",
            height=220,
        )
    if plan.scenarios:
        top = plan.scenarios[:12]
        charts["scenarios"] = svg.bar_chart(
            [str(i + 1) for i in range(len(top))],
            [("effective price per Mbps", [float(s.effective_pln_per_mbps) for s in top])],
            title="Scenarios by expected cost (numbers as in the table)",
            y_label=f"{plan.currency}/Mbps",
        )
    largest = sorted(plan.shares, key=lambda r: -r.proportional)[:15]
    charts["sharing"] = svg.bar_chart(
        [r.member for r in largest],
        [
            ("alone", [float(r.alone) for r in largest]),
            ("proportional", [float(r.proportional) for r in largest]),
            ("capacity", [float(r.capacity) for r in largest]),
            ("peak", [float(r.peak) for r in largest]),
            ("Shapley", [float(r.shapley) for r in largest]),
        ],
        title="Largest members: what each pays under each method",
        y_label=plan.currency,
        height=320,
    )
    return charts


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; white-space: nowrap; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; max-height: 480px; overflow-y: auto; }
.note { color: #555; font-size: 12px; } ul.notes li { font-size: 13px; }
"""


def render_html(plan: TenderPlan, all_tables: Sequence[Table]) -> str:
    by_name = {t.name: t for t in all_tables}
    charts = _charts(plan)
    notes = "".join(f"<li>{escape(n)}</li>" for n in plan.notes) or "<li>none</li>"
    curves = "".join(
        charts[key] + charts[key.replace("curve:", "risk:")]
        for key in sorted(charts)
        if key.startswith("curve:")
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>peerpool tender plan</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Transit tender plan</h1>",
        f"<p>Data: <code>{escape(plan.serving)}</code>, months {escape(plan.months[0].month)} to "
        f"{escape(plan.months[-1].month)} ({escape(plan.timezone)}). Plan: {plan.horizon} months from "
        f"{escape(plan.start_month)}. Reference price for 'alone' and the Shapley game: "
        f"{escape(plan.reference_offer)}. Currency {escape(plan.currency)}, net of VAT.</p>",
        f"<h3>Notes</h3><ul class='notes'>{notes}</ul>",
        "<h2>1. Pooling dividend</h2>",
        charts["pooling"],
        _html_table(by_name["pooling_dividend"]),
        "<h2>2. Forecast</h2>",
        charts.get("forecast", ""),
        _html_table(by_name["forecast_pool"]),
        _html_table(by_name["forecast_members"], limit=60),
        "<h2>3. Commit</h2>",
        _html_table(by_name["commits"]),
        curves,
        _html_table(by_name["commit_curve"], limit=45),
        "<h2>4. Scenarios</h2>",
        charts.get("scenarios", ""),
        _html_table(by_name["scenarios"], limit=40),
        "<h2>5. Cost sharing</h2>",
        charts["sharing"],
        _html_table(by_name["cost_sharing"]),
        "<p class='note'>Every table is also in a CSV file beside this page and in report.json.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(plan: TenderPlan, out: Path) -> list[Path]:
    """Write report.html, one CSV per table and report.json into ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    all_tables = tables(plan)
    written = [write_csv(t, out) for t in all_tables]
    summary = {
        "serving": plan.serving,
        "timezone": plan.timezone,
        "currency": plan.currency,
        "reference_offer": plan.reference_offer,
        "start_month": plan.start_month,
        "horizon_months": plan.horizon,
        "share_month": plan.share_month,
        "shapley_method": plan.shapley_method,
        "notes": plan.notes,
        "tables": {
            t.name: {
                "title": t.title,
                "note": t.note,
                "columns": list(t.columns),
                "rows": [[_json_value(v) for v in row] for row in t.rows],
            }
            for t in all_tables
        },
    }
    json_path = out / "report.json"
    json_path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render_html(plan, all_tables), encoding="utf-8")
    return [html_path, json_path, *written]
