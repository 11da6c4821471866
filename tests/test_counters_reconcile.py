"""Reconciliation of sFlow-estimated bytes against counter bytes, with hand-made numbers.

Four member ports on sw1 (sampling rate 1:250), counters read every 300 s from
T = 2026-10-01 00:00 UTC to T + 70 min, sFlow matrix rows for the first hour only. A window needs
2 x (3.29 / 0.10)^2 = 2,164.8 -> 2,165 samples (seen or expected) to be judged at ±10 %:

port  counter in / interval        sFlow est. / interval        window verdict (1 h, ±10 %)
p1    10,000,000 B, 100,000 pkts   10,300,000 B, 400 samples    ratio 1.03: ok
      (a failed read at T+30 min makes intervals 5 and 6 untrusted: both sides of them drop out,
       10 intervals remain: 103,000,000 / 100,000,000, 4,000 samples)
p2    10,000,000 B, 100,000 pkts    8,500,000 B, 400 samples    ratio 0.85 with 4,800 samples: alert
p3    10,000,000 B,   1,000 pkts    5,000,000 B,   4 samples    expected 1,000 / 250 = 4 samples
                                                                per interval, 48 in the hour, below
                                                                2,165: few_samples
p4    10,000,000 B, 100,000 pkts    nothing                     ratio 0 with 4,800 samples expected: alert

Counters of 01:00-01:10 have no matrix rows (the matrix ends at 00:55): not compared.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.counters import hygiene
from ingest.counters.reads import reads_table, write_reads_by_day
from ingest.counters.reconcile import min_samples, reconcile
from peerpool.cli import main as peerpool_main
from peerpool.config.dump import dump_exchange
from peerpool.config.model import Exchange, Member, MemberPort, PortFee, Site, SnmpSettings, Switch
from peerpool.lake import MEMBER_MATRIX, write_part

T = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
PACKETS = {"p1": 100_000, "p2": 100_000, "p3": 1_000, "p4": 100_000}
SFLOW = {"p1": (10_300_000, 400), "p2": (8_500_000, 400), "p3": (5_000_000, 4)}


def exchange() -> Exchange:
    return Exchange(
        name="Reconcile IX",
        sites=(Site("S", "Site"),),
        switches=(
            Switch(
                "sw1",
                "S",
                "192.0.2.1",
                SnmpSettings(community_env="UNUSED", profile="default"),
                sampling_rate=250,
            ),
        ),
        members=(Member("AS64500", 64500, "M", "M Sp. z o.o.", dt.date(2024, 1, 1)),),
        ports=tuple(
            MemberPort(
                f"sw1:{name}",
                "sw1",
                name,
                i,
                10000,
                100,
                "AS64500",
                (f"02:00:00:00:00:0{i}",),
                connected=dt.date(2024, 1, 1),
            )
            for i, name in enumerate(("p1", "p2", "p3", "p4"), start=1)
        ),
        border_routers=(),
        transit_contracts=(),
        port_fees=(PortFee(10000, Decimal("900.00")),),
    )


def build_lake(lake: Path) -> None:
    reads = []
    for i, name in enumerate(("p1", "p2", "p3", "p4"), start=1):
        for n in range(15):  # 00:00 .. 01:10
            ok = not (name == "p1" and n == 6)  # p1's read at 00:30 failed
            reads.append(
                {
                    "polled_at": T + dt.timedelta(minutes=5 * n),
                    "source": "snmp",
                    "device_id": "sw1",
                    "ifindex": i,
                    "ok": ok,
                    "error": None if ok else "timeout",
                    "sys_uptime_cs": 100_000 + n * 30_000 if ok else None,
                    "counter_bits": 64,
                    "in_octets": n * 10_000_000 if ok else None,
                    "out_octets": n * 10_000_000 if ok else None,
                    "in_ucast_pkts": n * PACKETS[name] if ok else None,
                    "out_ucast_pkts": n * PACKETS[name] if ok else None,
                    "if_oper_status": 1 if ok else None,
                }
            )
    write_reads_by_day(lake, reads_table(reads), "test")
    hygiene.run(lake, exchange(), start=T, end=T + dt.timedelta(minutes=70))
    matrix = []
    for k in range(12):  # 00:00 .. 00:55
        for name, (est, samples) in SFLOW.items():
            # split over two destination members to check that the source port's rows are summed
            for dst, share in (("AS64501", 0.4), ("AS64502", 0.6)):
                matrix.append(
                    {
                        "interval_start": T + dt.timedelta(minutes=5 * k),
                        "site": "S",
                        "exporter_address": "10.255.0.1",
                        "vlan": 100,
                        "ip_version": 4,
                        "src_member_id": "AS64500",
                        "dst_member_id": dst,
                        "src_port_id": f"sw1:{name}",
                        "dst_port_id": None,
                        "estimated_bytes": round(est * share),
                        "estimated_packets": 0,
                        "sample_count": samples if dst == "AS64502" else 0,
                        "source_file": "test",
                    }
                )
    write_part(lake, "member_matrix", pa.Table.from_pylist(matrix, schema=MEMBER_MATRIX), T.date(), "test")


def test_min_samples_is_the_sampling_error_bound() -> None:
    # 3.29 * sqrt(2 / n) <= 0.10  <=>  n >= 2 * 32.9^2 = 2164.82
    assert min_samples(0.10) == 2165
    assert min_samples(0.05) == 8660  # 2 * 65.8^2 = 8659.28


def test_windows_ratios_and_alerts(tmp_path: Path) -> None:
    build_lake(tmp_path)
    result = reconcile(tmp_path, exchange(), threshold=0.10, window_s=3600)
    windows = {r["port_id"]: r for r in result.windows.to_dicts()}
    assert set(windows) == {"sw1:p1", "sw1:p2", "sw1:p3", "sw1:p4"}  # one window each: 00:00-01:00
    p1, p2, p3, p4 = (windows[f"sw1:{p}"] for p in ("p1", "p2", "p3", "p4"))
    assert (p1["intervals"], p1["sflow_bytes"], p1["counter_bytes"], p1["status"]) == (
        10,
        103_000_000,
        100_000_000,
        "ok",
    )
    assert p1["ratio"] == pytest.approx(1.03) and p1["samples"] == 4000
    assert (p2["intervals"], p2["sflow_bytes"], p2["counter_bytes"], p2["status"]) == (
        12,
        102_000_000,
        120_000_000,
        "alert",
    )
    assert p2["ratio"] == pytest.approx(0.85) and p2["drift"] == pytest.approx(-0.15)
    assert p2["sampling_error_95"] == pytest.approx(1.96 * (2 / 4800) ** 0.5)
    assert (p3["status"], p3["expected_samples"], p3["samples"]) == ("few_samples", 48.0, 48)
    assert p3["ratio"] == pytest.approx(0.5)
    assert (p4["status"], p4["sflow_bytes"], p4["samples"], p4["expected_samples"]) == ("alert", 0, 0, 4800.0)
    assert p4["ratio"] == 0.0
    assert sorted(result.alerts["port_id"].to_list()) == ["sw1:p2", "sw1:p4"]
    assert all(
        w["window_start"] == T and w["window_end"] == T + dt.timedelta(hours=1) for w in windows.values()
    )
    # per interval: p1's first interval is 10,300,000 / 10,000,000; its untrusted interval 5 has
    # sFlow bytes but no counter bytes, and no ratio
    per = {(r["port_id"], r["interval_start"]): r for r in result.intervals.to_dicts()}
    first = per[("sw1:p1", T)]
    assert (first["sflow_bytes"], first["counter_bytes"], first["samples"]) == (10_300_000, 10_000_000, 400)
    assert first["ratio"] == pytest.approx(1.03)
    fifth = per[("sw1:p1", T + dt.timedelta(minutes=25))]
    assert fifth["counter_bytes"] is None and fifth["ratio"] is None and fifth["sflow_bytes"] == 10_300_000
    # nothing after the matrix's last interval (00:55) is compared
    assert max(r["interval_start"] for r in per.values()) == T + dt.timedelta(minutes=55)


def test_thirty_minute_windows_split_the_hour(tmp_path: Path) -> None:
    """p1 with 30-minute windows: 00:00-00:30 has 5 trusted intervals (0..4), 00:30-01:00 has 5 (7..11)."""
    build_lake(tmp_path)
    result = reconcile(tmp_path, exchange(), threshold=0.10, window_s=1800)
    p1 = result.windows.filter(result.windows["port_id"] == "sw1:p1").to_dicts()
    assert [(w["window_start"], w["intervals"], w["counter_bytes"]) for w in p1] == [
        (T, 5, 50_000_000),
        (T + dt.timedelta(minutes=30), 5, 50_000_000),
    ]


def test_cli_lists_alerts_as_json_and_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    build_lake(lake)
    config = tmp_path / "exchange.toml"
    config.write_text(dump_exchange(exchange()))
    peerpool_main(
        ["counters", "reconcile", "--lake", str(lake), "--config", str(config), "--window", "1h", "--json"]
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["windows_checked"] == 4 and payload["threshold"] == 0.10 and payload["window_s"] == 3600
    assert payload["status_counts"] == {"alert": 2, "few_samples": 1, "ok": 1}
    assert [a["port_id"] for a in payload["alerts"]] == ["sw1:p2", "sw1:p4"]
    assert payload["alerts"][0]["window_start"] == "2026-10-01T00:00:00+00:00"
    peerpool_main(
        ["counters", "reconcile", "--lake", str(lake), "--config", str(config), "--threshold", "0.2"]
    )
    text = capsys.readouterr().out
    assert "4 port-windows checked, 1 alert(s) (threshold ±20%)" in text  # p2's 15 % is now within
    assert "ALERT sw1:p4 2026-10-01 00:00Z: sflow/counter = 0.000" in text


def test_cli_per_interval_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """4 ports x 12 intervals of the matrix hour: p1's two untrusted intervals are listed with
    sFlow bytes and no counter bytes; p4's with counter bytes and 0 sFlow bytes."""
    lake = tmp_path / "lake"
    build_lake(lake)
    config = tmp_path / "exchange.toml"
    config.write_text(dump_exchange(exchange()))
    peerpool_main(
        ["counters", "reconcile", "--lake", str(lake), "--config", str(config), "--json", "--per-interval"]
    )
    rows = json.loads(capsys.readouterr().out)["intervals"]
    assert len(rows) == 48
    p1 = [r for r in rows if r["port_id"] == "sw1:p1"]
    assert [r["counter_bytes"] for r in p1].count(None) == 2
    assert {r["sflow_bytes"] for r in rows if r["port_id"] == "sw1:p4"} == {0}
