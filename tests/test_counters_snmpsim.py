"""The poller at scale: one simulated switch with 1,000 ports served by snmpsim 1.2.2.

The ``.snmprec`` data is written by ``tests/snmp_agents.py``: port ``i`` is named
``et-0/0/i``, its ifHCInOctets starts at ``i x 1,000,000`` and rises by ``i x 1,000`` bytes
per second (ifHCOutOctets twice that). Those formulas, not the poller, give the expected
values: every port must come back, with its own name, and two polls apart must show each
port's own rate. How fast the poll runs is measured in bench/bench_counters.py, not here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.counters.poller import PollOptions, poll_once
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch
from tests.snmp_agents import Snmpsim, in_rate, initial_in, run_snmpsim

PORTS = 1000
COMMUNITY_ENV = "PEERPOOL_TEST_SIM_COMMUNITY"
AUTH_ENV = "PEERPOOL_TEST_SIM_AUTH"
PRIV_ENV = "PEERPOOL_TEST_SIM_PRIV"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[Snmpsim]:
    with run_snmpsim(PORTS) as agent:
        yield agent


def exchange(agent: Snmpsim, version: str) -> Exchange:
    if version == "2c":
        snmp = SnmpSettings(
            version="2c", port=agent.port, community_env=COMMUNITY_ENV, timeout_s=3.0, retries=2
        )
    else:
        snmp = SnmpSettings(
            version="3",
            port=agent.port,
            user=agent.user,
            auth_protocol="SHA",
            auth_key_env=AUTH_ENV,
            priv_protocol="AES",
            priv_key_env=PRIV_ENV,
            timeout_s=3.0,
            retries=2,
        )
    ports = tuple(
        MemberPort(
            f"sim-sw1:et-0/0/{i}",
            "sim-sw1",
            f"et-0/0/{i}",
            i,
            10000,
            100,
            "AS64500",
            (f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",),
        )
        for i in range(1, PORTS + 1)
    )
    return Exchange(
        name="sim",
        sites=(Site("SIM", "Sim"),),
        switches=(Switch("sim-sw1", "SIM", "127.0.0.1", snmp),),
        members=(Member("AS64500", 64500, "Sim", "Sim", dt.date(2024, 1, 1)),),
        ports=ports,
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


def env(agent: Snmpsim) -> dict[str, str]:
    return {COMMUNITY_ENV: agent.community, AUTH_ENV: agent.auth_key, PRIV_ENV: agent.priv_key}


def rows_of(lake: Path) -> dict[int, dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for f in sorted((lake / "port_counters").glob("date=*/*.parquet")):
        for row in pq.read_table(f).to_pylist():
            assert row["ifindex"] not in rows, "one row per port and poll"
            rows[row["ifindex"]] = row
    return rows


@pytest.mark.parametrize("version", ["2c", "3"])
def test_every_one_of_1000_ports_gets_a_row_with_its_own_values(
    snmpsim: Snmpsim, tmp_path: Path, version: str
) -> None:
    ex = exchange(snmpsim, version)
    options = PollOptions(max_varbinds=48, in_flight_per_device=2)
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    first = poll_once(ex, tmp_path / "a", t0, options=options, env=env(snmpsim))
    second = poll_once(ex, tmp_path / "b", t0 + dt.timedelta(minutes=5), options=options, env=env(snmpsim))
    assert (first.ports, first.ok, first.failed) == (PORTS, PORTS, 0), first.errors
    assert (second.ports, second.ok) == (PORTS, PORTS), second.errors
    a, b = rows_of(tmp_path / "a"), rows_of(tmp_path / "b")
    assert sorted(a) == sorted(b) == list(range(1, PORTS + 1))
    for i in range(1, PORTS + 1):
        row = a[i]
        assert row["port_id"] == f"sim-sw1:et-0/0/{i}"
        assert row["if_name"] == f"et-0/0/{i}" and row["if_alias"] == f"member port {i}"
        assert row["if_high_speed_mbps"] == 10000 and row["if_oper_status"] == 1
        assert row["in_octets"] >= initial_in(i) and row["out_octets"] >= 2 * initial_in(i)
        # each port rises at its own configured rate between the two polls (timestamps are the
        # request midpoints; 15 % absorbs round trips and snmpsim's float arithmetic)
        seconds = (b[i]["polled_at"] - row["polled_at"]).total_seconds()
        assert seconds > 0
        in_rate_seen = (b[i]["in_octets"] - row["in_octets"]) / seconds
        out_rate_seen = (b[i]["out_octets"] - row["out_octets"]) / seconds
        assert in_rate_seen == pytest.approx(in_rate(i), rel=0.15), i
        assert out_rate_seen == pytest.approx(2 * in_rate(i), rel=0.15), i
