"""Evidence packs: everything behind a member's bill, so a disputed line can be checked by hand.

One zip per member (``evidence/<member>.zip``) and one for the pool's transit bill
(``evidence/pool.zip``, cooperative-wide totals only, referenced from every member's pack by
its sha256 so the 5-minute sums of the transit contracts are stored once, not 500 times).

* For every 95th on the bill: the 5-minute samples with their rank, the discarded top
  ``n - k`` samples, the billed sample and its rank ``k = ceil(pct/100 x n)``, ``n``, the
  intervals left out and the gap policy that left them out; for the pool, the counter
  discontinuities (reset, wrap, failed read, gap, over speed) of the contract's ports.
* For every credit: the outages of the member's ports, which were counted and why.
* For every port fee: the days served and the proration.

Zips are deterministic: entries in name order, a fixed timestamp (1980-01-01 00:00), fixed
permissions, DEFLATE at level 6. The packs hold no ``generated_from`` block (the documents
that list them do, with each pack's sha256), so a pack's bytes depend only on the month's data.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections import Counter
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import numpy as np

from peerpool.billing.compute import MonthResult
from peerpool.billing.lines import MemberBill
from peerpool.billing.money import fmt
from peerpool.billing.period import Month, local_iso, utc_iso
from peerpool.billing.ranking import Ranked
from peerpool.billing.render import csv_bytes, json_bytes, line_json
from peerpool.billing.transit import ContractResult, MemberSeries, bytes_to_mbps

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_LEVEL = 6
OUTAGE_COLUMNS = (
    "port_id", "cause", "start_at", "end_at", "ongoing", "clipped_start", "clipped_end", "credited", "reason",
)  # fmt: skip
DIRECTION_NAMES = {"in": "inbound", "out": "outbound", "sum": "inbound + outbound per interval"}


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip of ``entries`` whose bytes depend only on the names and contents."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, entries[name], compresslevel=ZIP_LEVEL)
    return buffer.getvalue()


class Clock:
    """UTC and local ISO strings of interval starts (epoch seconds), cached: a month has ~8,640.

    One cache per time zone for the whole process, shared by every pack of a document.
    """

    def __init__(self, timezone: str) -> None:
        self.timezone = timezone
        self._cache = _CACHES.setdefault(timezone, {})

    def __call__(self, epoch_s: int) -> tuple[str, str]:
        found = self._cache.get(epoch_s)
        if found is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            instant = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
            found = (utc_iso(instant), local_iso(instant, self.timezone))
            self._cache[epoch_s] = found
        return found


_CACHES: dict[str, dict[int, tuple[str, str]]] = {}


def _num(value: float | int) -> str:
    return repr(int(value)) if isinstance(value, (int, np.integer)) else repr(float(value))


def _percentile(
    ranked: Ranked, values: Sequence[float | int], times: Sequence[int], clock: Clock
) -> dict[str, Any]:
    if ranked.n == 0:
        return {"n": 0, "k": 0, "billed_sample": None}
    row = ranked.billed_row
    value = values[row]
    return {
        "n": ranked.n,
        "k": ranked.k,
        "discarded_top": ranked.discarded,
        "billed_sample_bytes": _num(value),
        "billed_sample_bps": repr(float(value) * 8 / 300),
        "billed_interval_start": clock(int(times[row]))[0],
        "billed_rank": ranked.k,
    }


def _top_csv(ranked: Ranked, values: Sequence[float | int], times: Sequence[int], clock: Clock) -> bytes:
    rows = []
    for row in ranked.top_rows():
        utc, local = clock(int(times[row]))
        rank = int(ranked.ranks[row])
        rows.append([str(rank), utc, local, _num(values[row]), "billed" if rank == ranked.k else "discarded"])
    return csv_bytes(("rank", "interval_start_utc", "interval_start_local", "bytes", "class"), rows)


_README_POOL = """peerpool billing evidence: the pooled transit bill, {month} ({status})

pool.json                      each contract's bill, recomputed from the files below, and the pool total
contracts/<id>/samples.csv     every 5-minute interval of the billing month the lake has: bytes summed over
                               the contract's ports (in = from the provider), ports with a trusted rate,
                               whether the interval is billable under the gap policy, and per billed
                               direction the sample's rank (1 = lowest) and class (billed, discarded = above
                               the billed rank, kept, excluded = not billable)
contracts/<id>/top_<dir>.csv   the discarded top samples and the billed one, highest first
contracts/<id>/port_flags.csv  intervals of the contract's ports that were not a clean counter rate:
                               gap, failed read, counter reset, 32-bit wrap, over port speed, untrusted

To check a contract by hand: take the billable samples of a direction, sort them ascending, n = their
count, k = ceil(percentile / 100 x n); the billed sample is number k. Mbps = bytes / 37,500,000 rounded half
up to 4 decimals; commit cost = commit x price; overage = max(billed - commit, 0) x burst price (each product
rounded half up to 4 decimals); total = commit cost + overage cost, rounded half up to the grosz for the pool.
"""

_README_MEMBER = """peerpool billing evidence for {member} ({name}), {month} ({status})

summary.json              every line of the bill with the figures behind it, and the totals with VAT
transit/samples.csv       your transit traffic per 5-minute interval: bytes in (from the providers to you)
                          and out, the source (measured; zero_filled = an interval counted for everyone in
                          which you had no transit flows; excluded = an interval without scaled transit
                          counters, not counted for anyone), and per direction the rank (1 = lowest) and
                          class (billed, discarded = above the billed rank, kept, excluded)
transit/top_in.csv, top_out.csv   the discarded top samples and the billed one, highest first
outages.csv               the outages of your ports in the month, and which were credited and why
{pool_note}
To check your transit 95th by hand: sort the counted samples of a direction ascending, n = their count,
k = ceil(0.95 x n); the 95th is sample number k; the billed 95th is the larger of in and out, in Mbps =
bytes / 37,500,000 rounded half up to 4 decimals.
"""


def pool_pack(result: MonthResult, status: str) -> bytes:
    month = result.month
    entries: dict[str, bytes] = {}
    contracts = []
    for contract in result.pool.contracts:
        entries.update(_contract_files(contract, Clock(contract.mart.billing_timezone)))
        contracts.append(_contract_json(contract, Clock(contract.mart.billing_timezone), month))
    pool = result.bill.pool
    entries["pool.json"] = json_bytes(
        {
            "document": {"type": "peerpool pool transit evidence", "status": status, "month": month.label},
            "contracts": contracts,
            "pool_total": fmt(result.pool.total),
            "currency": result.pool.currency,
            "allocation": pool["allocation"],
        }
    )
    entries["README.txt"] = _README_POOL.format(month=month.label, status=status).encode()
    return zip_bytes(entries)


def _contract_json(c: ContractResult, clock: Clock, month: Month) -> dict[str, Any]:
    s = c.samples
    flags: Counter[str] = Counter()
    for f in c.port_flags:
        for name in ("is_gap", "is_failed_read", "is_reset", "is_wrap", "is_over_speed"):
            if getattr(f, name):
                flags[name.removeprefix("is_")] += 1
        if not f.is_trusted:
            flags["untrusted"] += 1
    times = s.interval_s.tolist()
    return {
        "contract_id": c.mart.contract_id,
        "provider": c.mart.provider,
        "currency": c.mart.currency,
        "ports": list(c.port_ids),
        "billing_timezone": c.mart.billing_timezone,
        "percentile": c.mart.percentile,
        "direction_rule": c.mart.direction_rule,
        "gap_policy": c.mart.gap_policy,
        "gap_policy_rule": "exclude: an interval where any port lacks a trusted rate is not billable; "
        "zero: it is billable with the missing ports counted as 0",
        "intervals_in_month": c.mart.intervals_in_month,
        "intervals_with_row": len(times),
        "intervals_without_row": c.mart.intervals_in_month - len(times),
        "intervals_incomplete": int((~s.is_complete).sum()),
        "intervals_billable": int(s.is_billable.sum()),
        "counter_flags": dict(sorted(flags.items())),
        "percentiles": {d: _percentile(r, c.series(d).tolist(), times, clock) for d, r in c.ranked.items()},
        "billed_direction": c.billed_direction,
        "billed_bytes": c.billed_bytes,
        "billed_mbps": c.billed_mbps,
        "commit_mbps": c.mart.commit_mbps,
        "price_per_mbps": c.mart.price_per_mbps,
        "commit_cost": c.commit_cost,
        "overage_mbps": c.overage_mbps,
        "burst_price_per_mbps": c.mart.burst_price_per_mbps,
        "overage_cost": c.overage_cost,
        "total_cost": c.total_cost,
        "total_grosz": fmt(c.total_grosz),
    }


def _contract_files(c: ContractResult, clock: Clock) -> dict[str, bytes]:
    s = c.samples
    base = f"contracts/{c.mart.contract_id}"
    times = s.interval_s.tolist()
    directions = list(c.ranked)
    header = [
        "interval_start_utc", "interval_start_local", "in_bytes", "out_bytes", "in_plus_out_bytes",
        "ports_expected", "ports_with_rate", "is_complete", "is_billable",
    ]  # fmt: skip
    for d in directions:
        header += [f"{d}_rank", f"{d}_class"]
    classes = {d: r.classes() for d, r in c.ranked.items()}
    ranks = {d: r.ranks.tolist() for d, r in c.ranked.items()}
    columns = [
        s.in_bytes.tolist(),
        s.out_bytes.tolist(),
        s.in_plus_out_bytes.tolist(),
        s.ports_expected.tolist(),
        s.ports_with_rate.tolist(),
    ]
    complete = s.is_complete.tolist()
    billable = s.is_billable.tolist()
    rows = []
    for i, t in enumerate(times):
        utc, local = clock(t)
        row = [utc, local, *(str(col[i]) for col in columns), _bool(complete[i]), _bool(billable[i])]
        for d in directions:
            row += [str(ranks[d][i]) if ranks[d][i] else "", classes[d][i]]
        rows.append(row)
    files = {f"{base}/samples.csv": csv_bytes(header, rows)}
    for d, r in c.ranked.items():
        files[f"{base}/top_{d}.csv"] = _top_csv(r, c.series(d).tolist(), times, clock)
    files[f"{base}/port_flags.csv"] = csv_bytes(
        ("port_id", "interval_start_utc", "is_trusted", "is_gap", "is_failed_read", "is_reset", "is_wrap",
         "is_over_speed"),
        [
            [f.port_id, clock(f.interval_s)[0], _bool(f.is_trusted), _bool(f.is_gap), _bool(f.is_failed_read),
             _bool(f.is_reset), _bool(f.is_wrap), _bool(f.is_over_speed)]
            for f in c.port_flags
        ],
    )  # fmt: skip
    return files


def _bool(value: bool) -> str:
    return "true" if value else "false"


def member_pack(
    result: MonthResult,
    member: MemberBill,
    status: str,
    pool_sha256: str | None,
    share_totals: bool,
) -> bytes:
    """The member's evidence zip. ``share_totals`` False (member_visibility = none) leaves out pool totals."""
    month = result.month
    clock = Clock(month.timezone)
    entries: dict[str, bytes] = {}
    lines = []
    for number, line in enumerate(member.lines, start=1):
        item = line_json(number, line, with_detail=True)
        if not share_totals and line.kind == "transit_share":
            item["detail"] = {
                k: v
                for k, v in line.detail.items()
                if k not in ("pool_total", "pool_allocation", "exact_share")
            }
        lines.append(item)
    summary: dict[str, Any] = {
        "document": {
            "type": "peerpool member billing evidence",
            "status": status,
            "month": month.label,
            "member_id": member.member_id,
            "member_name": member.member_name,
            "billing_entity": member.billing_entity,
        },
        "lines": lines,
        "totals": {
            "net": fmt(member.net),
            "vat_rate": str(member.vat_rate),
            "vat": fmt(member.vat),
            "gross": fmt(member.gross),
            "rule": f"VAT = net {fmt(member.net)} x {member.vat_rate} rounded half up to the grosz; "
            "gross = net + VAT",
        },
    }
    if any(line.kind == "transit_share" for line in member.lines):
        series = result.members_transit.series(member.member_id)
        summary["transit_95th"] = _member_transit_json(series, clock)
        entries.update(_member_transit_files(series, clock))
        if share_totals and pool_sha256 is not None:
            summary["pool_evidence"] = {
                "file": "pool.zip",
                "sha256": pool_sha256,
                "note": "the pooled bill's evidence, shared by all members (totals only)",
            }
    outages = result.outages.get(member.member_id, [])
    if outages:
        keys = OUTAGE_COLUMNS
        entries["outages.csv"] = csv_bytes(
            keys,
            [
                [_cell(o[k]) for k in keys]
                for o in sorted(outages, key=lambda o: (o["port_id"], o["start_at"]))
            ],
        )
    entries["summary.json"] = json_bytes(summary)
    pool_note = (
        "pool.zip (beside this pack; its sha256 is in summary.json) holds the pooled transit bill's "
        "evidence.\n"
        if share_totals
        else ""
    )
    entries["README.txt"] = _README_MEMBER.format(
        member=member.member_id,
        name=member.member_name,
        month=month.label,
        status=status,
        pool_note=pool_note,
    ).encode()
    return zip_bytes(entries)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return _bool(value)
    return str(value)


def _member_transit_json(series: MemberSeries, clock: Clock) -> dict[str, Any]:
    times = series.interval_s.tolist()
    counts = Counter(series.source)
    return {
        "percentile": 95,
        "n": series.ranked_in.n,
        "k": series.ranked_in.k,
        "discarded_top": series.ranked_in.discarded,
        "intervals": {
            "measured": counts["measured"],
            "zero_filled": counts["zero_filled"],
            "excluded": counts["excluded"],
        },
        "gap_policy": "n is every interval of the month in which the transit counters scaled the "
        "border-router "
        "flows; an interval in which you had no transit flows counts 0 (zero_filled); intervals without "
        "scaled counters are left out for every member (excluded)",
        "in": _percentile(series.ranked_in, series.in_bytes.tolist(), times, clock),
        "out": _percentile(series.ranked_out, series.out_bytes.tolist(), times, clock),
        "billed_direction": series.billed_direction,
        "billed_bytes": series.billed_bytes,
        "billed_mbps": bytes_to_mbps(series.billed_bytes),
        "mbps_rule": "Mbps = bytes / 37,500,000 rounded half up to 4 decimals",
        "counter_discontinuities": "your samples are scaled to the transit ports' counters; their resets, "
        "wraps, "
        "failed reads and gaps are in pool.zip contracts/<id>/port_flags.csv",
    }


def _member_transit_files(series: MemberSeries, clock: Clock) -> dict[str, bytes]:
    times = series.interval_s.tolist()
    ins = series.in_bytes.tolist()
    outs = series.out_bytes.tolist()
    in_rank = series.ranked_in.ranks.tolist()
    out_rank = series.ranked_out.ranks.tolist()
    in_class = series.ranked_in.classes()
    out_class = series.ranked_out.classes()
    rows = []
    for i, t in enumerate(times):
        utc, local = clock(t)
        rows.append(
            [
                utc,
                local,
                series.source[i],
                str(ins[i]),
                str(outs[i]),
                str(in_rank[i]) if in_rank[i] else "",
                in_class[i],
                str(out_rank[i]) if out_rank[i] else "",
                out_class[i],
            ]
        )
    header = ("interval_start_utc", "interval_start_local", "source", "in_bytes", "out_bytes", "in_rank",
              "in_class", "out_rank", "out_class")  # fmt: skip
    return {
        "transit/samples.csv": csv_bytes(header, rows),
        "transit/top_in.csv": _top_csv(series.ranked_in, ins, times, clock),
        "transit/top_out.csv": _top_csv(series.ranked_out, outs, times, clock),
    }
