"""peerpool check: freshness, sample loss and reconciliation on hand-made lake tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from peerpool import lake as lakemod
from peerpool.checks import CheckFailed, check_exporters, check_reconciliation, check_sample_loss
from peerpool.cli import cli
from tests.conftest import REPO

UTC = dt.UTC
EXAMPLE = REPO / "examples" / "exchange.toml"
AT = dt.datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def write(lake: Path, table: str, rows: list[dict[str, object]], key: str = "t") -> None:
    schema = lakemod.TABLES[table]
    full = [{name: row.get(name) for name in schema.names} for row in rows]
    lakemod.write_part(lake, table, pa.Table.from_pylist(full, schema=schema), AT.date(), key)


def test_exporter_heard_five_minutes_ago_is_fine_one_silent_for_twenty_is_not(tmp_path: Path) -> None:
    write(tmp_path, "flows", [
        {"received_at": AT - dt.timedelta(minutes=5), "exporter_address": "10.255.0.1"},
        {"received_at": AT - dt.timedelta(minutes=20), "exporter_address": "10.255.0.2"},
        {"received_at": AT + dt.timedelta(minutes=1), "exporter_address": "10.255.0.2"},  # later: ignored
    ])  # fmt: skip
    exporters = {"10.255.0.1": "ktw-sw1", "10.255.0.2": "waw-sw1", "10.255.1.1": "ktw-br1"}
    problems = check_exporters(tmp_path, exporters, AT, dt.timedelta(minutes=15))
    assert sorted(p.subject for p in problems) == ["ktw-br1 (10.255.1.1)", "waw-sw1 (10.255.0.2)"]


def test_sample_loss_over_the_threshold_is_a_problem(tmp_path: Path) -> None:
    start = AT - dt.timedelta(minutes=30)
    write(tmp_path, "flow_loss", [
        # agent a: 940 received, 60 missing = 6.0 % lost > 5 %
        {"interval_start": start, "exporter_address": "a", "samples_received": 940, "samples_missing": 60},
        # agent b: 990 + 10 = 1.0 % lost
        {"interval_start": start, "exporter_address": "b", "samples_received": 990, "samples_missing": 10},
        # agent c: outside the one-hour window
        {"interval_start": AT - dt.timedelta(hours=2), "exporter_address": "c", "samples_received": 1,
         "samples_missing": 99},
    ])  # fmt: skip
    problems = check_sample_loss(tmp_path, AT, dt.timedelta(hours=1), 0.05)
    assert [p.subject for p in problems] == ["a"]
    assert "60 of 1000 samples missing (6.0%)" in problems[0].detail


def rates_row(port: str, when: dt.datetime, in_bytes: int, in_packets: int) -> dict[str, object]:
    return {"interval_start": when, "port_id": port, "in_bytes": in_bytes, "in_packets": in_packets,
            "is_trusted": True, "source": "snmp"}  # fmt: skip


PORT = "ktw-sw1:et-0/0/1"  # sampling 1:16384 in the example configuration


def hour_of_traffic(lake: Path, start: dt.datetime, ratio: float, key: str = "t") -> None:
    """One aligned hour on PORT: counters of 3e9 bytes and 3e6 packets per interval, so
    36e6 / 16384 = 2,197 samples are expected in the hour, above the 2,165 a ±10 % verdict needs
    (2 x (3.29 / 0.10)^2); sFlow estimates ``ratio`` times the counter bytes."""
    slots = [start + dt.timedelta(minutes=5 * i) for i in range(12)]
    write(lake, "port_rates_5min", [rates_row(PORT, t, 3_000_000_000, 3_000_000) for t in slots], key)
    write(lake, "member_matrix", [
        {"interval_start": t, "src_port_id": PORT, "estimated_bytes": round(3e9 * ratio), "sample_count": 183}
        for t in slots
    ], key)  # fmt: skip


def test_a_port_whose_sflow_is_half_again_its_counters_raises_a_reconciliation_problem(
    tmp_path: Path,
) -> None:
    hour_of_traffic(tmp_path, dt.datetime(2026, 10, 1, 10, 0, tzinfo=UTC), 1.5)
    problems = check_reconciliation(tmp_path, EXAMPLE, 0.10, dt.timedelta(hours=1))
    assert len(problems) == 1
    assert problems[0].subject == f"port {PORT} 2026-10-01 10:00Z"
    assert "sflow/counters = 1.500" in problems[0].detail


def test_a_port_within_the_threshold_passes(tmp_path: Path) -> None:
    hour_of_traffic(tmp_path, dt.datetime(2026, 10, 1, 10, 0, tzinfo=UTC), 1.03)
    assert check_reconciliation(tmp_path, EXAMPLE, 0.10, dt.timedelta(hours=1)) == []


def test_too_few_samples_cannot_raise_a_problem(tmp_path: Path) -> None:
    """A third of the traffic: 732 samples expected, below 2,165, so even 50 % off is not judged."""
    slots = [dt.datetime(2026, 10, 1, 10, 0, tzinfo=UTC) + dt.timedelta(minutes=5 * i) for i in range(12)]
    write(tmp_path, "port_rates_5min", [rates_row(PORT, t, 1_000_000_000, 1_000_000) for t in slots])
    write(tmp_path, "member_matrix", [
        {"interval_start": t, "src_port_id": PORT, "estimated_bytes": 1_500_000_000, "sample_count": 61}
        for t in slots
    ])  # fmt: skip
    assert check_reconciliation(tmp_path, EXAMPLE, 0.10, dt.timedelta(hours=1)) == []


def test_only_recent_windows_fail_the_check(tmp_path: Path) -> None:
    """An alert two days before the newest window is left to the dashboards; one within the last
    day fails the check; with ``recent=None`` both count."""
    newest = dt.datetime(2026, 10, 3, 10, 0, tzinfo=UTC)
    hour_of_traffic(tmp_path, newest - dt.timedelta(days=2), 1.5, "old")
    hour_of_traffic(tmp_path, newest, 1.02, "new")
    hour_of_traffic(tmp_path, newest - dt.timedelta(hours=3), 1.5, "recent")
    found = check_reconciliation(tmp_path, EXAMPLE, 0.10, dt.timedelta(hours=1))
    assert [p.subject for p in found] == [f"port {PORT} 2026-10-03 07:00Z"]
    everything = check_reconciliation(tmp_path, EXAMPLE, 0.10, dt.timedelta(hours=1), recent=None)
    assert [p.subject for p in everything] == [
        f"port {PORT} 2026-10-01 10:00Z",
        f"port {PORT} 2026-10-03 07:00Z",
    ]


def test_cli_exits_non_zero_and_lists_every_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["check", "exporters", "--lake", str(tmp_path), "--config", str(EXAMPLE), "--at", AT.isoformat()],
    )
    assert isinstance(result.exception, CheckFailed)
    message = str(result.exception)
    # the example configures 2 switches and 1 border router; an empty lake has heard none of them
    assert message.startswith("3 exporter problem(s)")
    for device in ("ktw-sw1", "waw-sw1", "ktw-br1"):
        assert device in message


def test_bad_duration_is_refused_with_an_example() -> None:
    from peerpool.checks import parse_duration

    assert parse_duration("15m") == dt.timedelta(minutes=15)
    with pytest.raises(Exception, match=r"write e\.g\. 15m"):
        parse_duration("fifteen")


def test_an_exporter_sending_only_counter_samples_is_heard_through_the_loss_table(tmp_path: Path) -> None:
    # no flow rows at all; the loss table saw 3 datagrams of the agent in [11:50, 11:55)
    write(tmp_path, "flow_loss", [
        {"interval_start": AT - dt.timedelta(minutes=10), "exporter_address": "10.255.0.1",
         "datagrams_received": 3, "samples_received": 0},
        {"interval_start": AT - dt.timedelta(minutes=40), "exporter_address": "10.255.0.2",
         "datagrams_received": 3, "samples_received": 0},
    ])  # fmt: skip
    exporters = {"10.255.0.1": "ktw-sw1", "10.255.0.2": "waw-sw1"}
    problems = check_exporters(tmp_path, exporters, AT, dt.timedelta(minutes=15))
    # ktw-sw1 heard at 11:55 (5 min before), waw-sw1 at 11:25 (35 min before: silent)
    assert [p.subject for p in problems] == ["waw-sw1 (10.255.0.2)"]


def test_only_switches_with_a_connected_port_and_the_border_routers_are_expected() -> None:
    from peerpool.checks import expected_exporters
    from peerpool.config.load import load_exchange

    exchange = load_exchange(EXAMPLE)
    # example: ktw-sw1 has a port since 2024-01-01, waw-sw1 one since 2024-03-15; router ktw-br1
    assert expected_exporters(exchange, dt.date(2024, 2, 1)) == {
        "10.255.0.1": "ktw-sw1",
        "10.255.1.1": "ktw-br1",
    }
    assert set(expected_exporters(exchange, dt.date(2026, 10, 1)).values()) == {
        "ktw-sw1",
        "waw-sw1",
        "ktw-br1",
    }
