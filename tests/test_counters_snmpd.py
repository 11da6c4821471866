"""The poller against a real agent: Debian's snmpd on 127.0.0.1, reading the host's own ``lo``.

Expected values come from outside the code under test: the bytes this test itself sends
over the loopback interface (a lower bound on how far ``lo``'s counters must move, in and
out), and net-snmp's own ``snmpget`` reading the same OID between two polls.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.counters.poller import poll_once
from peerpool.cli import main as peerpool_main
from peerpool.config.model import (
    BorderRouter,
    BorderRouterPort,
    Exchange,
    Member,
    MemberPort,
    Site,
    SnmpSettings,
    Switch,
)
from peerpool.errors import ConfigError
from tests.conftest import require_tool
from tests.snmp_agents import Snmpd, loopback_traffic, run_snmpd

COMMUNITY_ENV = "PEERPOOL_TEST_SNMP_COMMUNITY"
AUTH_ENV = "PEERPOOL_TEST_SNMP_AUTH"
PRIV_ENV = "PEERPOOL_TEST_SNMP_PRIV"
HC_IN_OCTETS_LO = "1.3.6.1.2.1.31.1.1.1.6.1"


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    with run_snmpd(tmp_path_factory.mktemp("snmpd")) as agent:
        yield agent


def exchange(agent: Snmpd, *, extra_ifindex: int | None = None) -> Exchange:
    """A switch polled over v2c and a border router polled over v3, both the local snmpd."""
    v2c = SnmpSettings(version="2c", port=agent.port, community_env=COMMUNITY_ENV, timeout_s=0.5, retries=1)
    v3 = SnmpSettings(
        version="3",
        port=agent.port,
        user=agent.user,
        auth_protocol="SHA",
        auth_key_env=AUTH_ENV,
        priv_protocol="AES",
        priv_key_env=PRIV_ENV,
        timeout_s=0.5,
        retries=1,
    )
    ports = [MemberPort("lab-sw1:lo", "lab-sw1", "lo", 1, 10, 100, "AS64500", ("02:00:00:00:00:01",))]
    if extra_ifindex is not None:
        ports.append(
            MemberPort(
                "lab-sw1:ghost", "lab-sw1", "ghost", extra_ifindex, 10, 100, "AS64500", ("02:00:00:00:00:02",)
            )
        )
    return Exchange(
        name="lab",
        sites=(Site("LAB", "Lab"),),
        switches=(Switch("lab-sw1", "LAB", "127.0.0.1", v2c),),
        members=(Member("AS64500", 64500, "Lab", "Lab", dt.date(2024, 1, 1)),),
        ports=tuple(ports),
        border_routers=(
            BorderRouter(
                "lab-br1",
                "LAB",
                "127.0.0.1",
                "127.0.0.1",
                v3,
                (BorderRouterPort("lab-br1:lo", "lab-br1", "lo", 1, 10),),
            ),
        ),
        transit_contracts=(),
        port_fees=(),
    )


def secrets_env(agent: Snmpd, **override: str) -> dict[str, str]:
    return {COMMUNITY_ENV: agent.community, AUTH_ENV: agent.auth_key, PRIV_ENV: agent.priv_key, **override}


def stored(lake: Path) -> list[dict[str, Any]]:
    files = sorted((lake / "port_counters").glob("date=*/*.parquet"))
    rows: list[dict[str, Any]] = []
    for f in files:
        rows += pq.read_table(f).to_pylist()
    return rows


def snmpget_value(agent: Snmpd, oid: str) -> int:
    """net-snmp's own client reading one OID (bare value), as an independent cross-check."""
    binary = require_tool("snmpget")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(agent.directory / "client"), "MIBS": ""}
    out = subprocess.run(
        [
            binary,
            "-v2c",
            "-c",
            agent.community,
            "-On",
            "-Oqv",
            "-t",
            "2",
            "-r",
            "1",
            f"127.0.0.1:{agent.port}",
            oid,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=15,
        check=True,
    )
    return int(out.stdout.strip())


def test_v2c_and_v3_read_lo_and_counters_follow_our_loopback_traffic(snmpd: Snmpd, tmp_path: Path) -> None:
    ex = exchange(snmpd)
    env = secrets_env(snmpd)
    t0 = dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC)
    first = poll_once(ex, tmp_path, t0, env=env)
    assert (first.devices, first.ports, first.ok, first.failed) == (2, 2, 2, 0)
    rows = {r["device_id"]: r for r in stored(tmp_path)}
    assert set(rows) == {"lab-sw1", "lab-br1"}  # switch over v2c, border router over v3
    for row in rows.values():
        assert row["ok"] is True and row["error"] is None
        assert row["source"] == "snmp" and row["ifindex"] == 1 and row["counter_bits"] == 64
        assert row["if_name"] == "lo" and row["if_oper_status"] == 1
        assert row["device_address"] == "127.0.0.1"
        assert row["sys_uptime_cs"] is not None and row["sys_uptime_cs"] >= 0
    before_in = rows["lab-sw1"]["in_octets"]
    before_out = rows["lab-sw1"]["out_octets"]

    # 300 datagrams of 1,000 payload bytes over lo: at least 300,000 bytes more in AND out
    sent = loopback_traffic(300, 1000)
    assert sent == 300_000

    # net-snmp caches interface statistics for a few seconds: poll again until the counter has
    # moved by what we sent (bounded: at most 20 polls / 30 seconds)
    deadline = time.monotonic() + 30
    later: dict[str, dict[str, Any]] = {}
    for n in range(1, 21):
        lake = tmp_path / f"later-{n}"
        poll_once(ex, lake, t0 + dt.timedelta(minutes=5 * n), env=env)
        later = {r["device_id"]: r for r in stored(lake)}
        if later["lab-sw1"]["in_octets"] - before_in >= sent or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    sw = later["lab-sw1"]
    assert sw["ok"] is True
    assert sw["in_octets"] - before_in >= sent
    assert sw["out_octets"] - before_out >= sent
    assert sw["sys_uptime_cs"] > rows["lab-sw1"]["sys_uptime_cs"]
    # the v3 session reads the same interface: its counter is at least where v2c saw it
    assert later["lab-br1"]["ok"] is True and later["lab-br1"]["in_octets"] >= before_in + sent

    # peer tool: net-snmp's snmpget reads a value between our earlier and a later poll
    peer = snmpget_value(snmpd, HC_IN_OCTETS_LO)
    after = poll_once(ex, tmp_path / "after", t0 + dt.timedelta(hours=3), env=env)
    assert after.ok == 2
    final = {r["device_id"]: r for r in stored(tmp_path / "after")}
    assert sw["in_octets"] <= peer <= final["lab-sw1"]["in_octets"]


def test_wrong_community_is_a_failed_read_row_never_a_zero(snmpd: Snmpd, tmp_path: Path) -> None:
    ex = exchange(snmpd)
    stats = poll_once(
        ex,
        tmp_path,
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        env=secrets_env(snmpd, **{COMMUNITY_ENV: "not-it"}),
    )
    assert (stats.ok, stats.failed) == (1, 1)
    rows = {r["device_id"]: r for r in stored(tmp_path)}
    bad = rows["lab-sw1"]
    assert bad["ok"] is False
    assert "timeout" in bad["error"] and "community" in bad["error"]
    for column in ("in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts", "sys_uptime_cs"):
        assert bad[column] is None, column  # null in the Parquet file, not 0
    assert bad["port_id"] == "lab-sw1:lo" and bad["ifindex"] == 1
    assert rows["lab-br1"]["ok"] is True  # the v3 device on the same agent is unaffected


def test_wrong_v3_key_is_an_authentication_failure_row(snmpd: Snmpd, tmp_path: Path) -> None:
    ex = exchange(snmpd)
    poll_once(
        ex,
        tmp_path,
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        env=secrets_env(snmpd, **{AUTH_ENV: "wrong-key-123"}),
    )
    rows = {r["device_id"]: r for r in stored(tmp_path)}
    assert rows["lab-br1"]["ok"] is False
    assert "authentication" in rows["lab-br1"]["error"]
    assert rows["lab-br1"]["in_octets"] is None
    assert rows["lab-sw1"]["ok"] is True


def test_missing_instance_fails_only_that_port(snmpd: Snmpd, tmp_path: Path) -> None:
    ex = exchange(snmpd, extra_ifindex=4_000_000)
    poll_once(ex, tmp_path, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), env=secrets_env(snmpd))
    rows = {r["port_id"]: r for r in stored(tmp_path)}
    assert rows["lab-sw1:lo"]["ok"] is True
    ghost = rows["lab-sw1:ghost"]
    assert ghost["ok"] is False and ghost["in_octets"] is None
    assert "no such instance" in ghost["error"] and "4000000" in ghost["error"]


def test_unset_secret_names_the_variable_and_polls_nothing(snmpd: Snmpd, tmp_path: Path) -> None:
    env = secrets_env(snmpd)
    del env[PRIV_ENV]
    with pytest.raises(ConfigError, match=PRIV_ENV):
        poll_once(exchange(snmpd), tmp_path, env=env)
    assert not (tmp_path / "port_counters").exists()


def test_same_poll_time_replaces_its_parts(snmpd: Snmpd, tmp_path: Path) -> None:
    ex = exchange(snmpd)
    moment = dt.datetime(2026, 10, 1, 0, 5, tzinfo=dt.UTC)
    first = poll_once(ex, tmp_path, moment, env=secrets_env(snmpd))
    second = poll_once(ex, tmp_path, moment, env=secrets_env(snmpd))
    assert sorted(first.parts) == sorted(second.parts)
    names = sorted(p.name for p in (tmp_path / "port_counters" / "date=2026-10-01").iterdir())
    assert names == [
        "part-snmp-20261001T000500Z-lab-br1.parquet",
        "part-snmp-20261001T000500Z-lab-sw1.parquet",
    ]
    assert len(stored(tmp_path)) == 2


def test_cli_poll_once_with_a_toml_configuration(
    snmpd: Snmpd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "exchange.toml"
    config.write_text(
        f"""
[exchange]
name = "Lab IX"

[[sites]]
id = "LAB"
name = "Lab"

[snmp.lab]
version = "2c"
community_env = "{COMMUNITY_ENV}"
port = {snmpd.port}
timeout_s = 0.5
retries = 1

[[switches]]
id = "lab-sw1"
site = "LAB"
management_address = "127.0.0.1"
snmp = "lab"

[[members]]
id = "AS64500"
asn = 64500
name = "Lab Member"
billing_entity = "Lab Member"
joined = 2024-01-01

[[ports]]
switch = "lab-sw1"
interface = "lo"
ifindex = 1
speed_mbps = 10
vlan = 100
member = "AS64500"
macs = ["02:00:00:00:00:01"]
connected = 2024-01-01

[[port_fees]]
speed_mbps = 10
monthly_fee = "100.00"
"""
    )
    monkeypatch.setenv(COMMUNITY_ENV, snmpd.community)
    lake = tmp_path / "lake"
    peerpool_main(
        [
            "counters",
            "poll",
            "--once",
            "--config",
            str(config),
            "--lake",
            str(lake),
            "--poll-id",
            "2026-10-01T00:05:00+00:00",
        ]
    )
    out = capsys.readouterr().out
    assert "1 ports on 1 devices, 1 ok, 0 failed" in out
    rows = stored(lake)
    assert len(rows) == 1 and rows[0]["port_id"] == "lab-sw1:lo" and rows[0]["ok"] is True
    assert (
        lake / "port_counters" / "date=2026-10-01" / "part-snmp-20261001T000500Z-lab-sw1.parquet"
    ).exists()
