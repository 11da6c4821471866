"""Counter hygiene on crafted series: every expected number is worked out by hand in the test.

Time is counted in seconds from T = 2026-10-01 00:00:00 UTC; interval k covers
[300k, 300k + 300) seconds. The rules being checked are written in docs/counters.md.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.counters import hygiene
from ingest.counters.quality import quality
from ingest.counters.reads import reads_table, write_reads_by_day
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch

T = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
SNMP = SnmpSettings(community_env="UNUSED")


def at(seconds: float) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def exchange(*ports: tuple[str, int, int, int], connected: dict[str, dt.date] | None = None) -> Exchange:
    """Ports given as (name, ifindex, speed_mbps, counter_bits), all on switch sw1; ids are sw1:<name>."""
    connected = connected or {}
    return Exchange(
        name="t",
        sites=(Site("S", "S"),),
        switches=(Switch("sw1", "S", "192.0.2.1", SNMP),),
        members=(Member("AS64500", 64500, "M", "M", dt.date(2024, 1, 1)),),
        ports=tuple(
            MemberPort(
                f"sw1:{name}",
                "sw1",
                name,
                ifindex,
                speed,
                100,
                "AS64500",
                (f"02:00:00:00:00:{ifindex:02x}",),
                connected=connected.get(name, dt.date(2024, 1, 1)),
                counter_bits=32 if bits == 32 else 64,
            )
            for name, ifindex, speed, bits in ports
        ),
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


def read(
    t: float,
    ifindex: int,
    in_octets: int | None = None,
    out_octets: int | None = None,
    *,
    uptime: int | None = None,
    ok: bool = True,
    bits: int = 64,
    high_speed: int | None = None,
    oper: int | None = 1,
    source: str = "snmp",
    in_pkts: int | None = None,
    out_pkts: int | None = None,
    device: str = "sw1",
) -> dict[str, Any]:
    """One raw read; uptime defaults to a device up for 1000 s plus t (never a reboot)."""
    return {
        "polled_at": at(t),
        "source": source,
        "device_id": device,
        "device_address": "192.0.2.1",
        "ifindex": ifindex,
        "ok": ok,
        "error": None if ok else "timeout",
        "sys_uptime_cs": (uptime if uptime is not None else int((1000 + t) * 100)) if ok else None,
        "counter_bits": bits,
        "in_octets": in_octets if ok else None,
        "out_octets": out_octets if ok else None,
        "in_ucast_pkts": in_pkts if ok else None,
        "out_ucast_pkts": out_pkts if ok else None,
        "if_high_speed_mbps": high_speed if ok else None,
        "if_oper_status": oper if ok else None,
    }


def store(lake: Path, rows: list[dict[str, Any]], key: str = "test") -> None:
    write_reads_by_day(lake, reads_table(rows), key)


def rates(lake: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted((lake / "port_rates_5min").glob("date=*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return sorted(rows, key=lambda r: (r["interval_start"], r["port_id"]))


def outages(lake: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted((lake / "port_outages").glob("date=*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return sorted(rows, key=lambda r: (r["port_id"], r["start_at"]))


def column(rows: list[dict[str, Any]], name: str, port: str | None = None) -> list[Any]:
    return [r[name] for r in rows if port is None or r["port_id"] == port]


FLAGS = ("is_trusted", "is_gap", "is_failed_read", "is_reset", "is_wrap", "is_over_speed")


def flags(rows: list[dict[str, Any]], port: str | None = None) -> list[str]:
    """Each interval's raised flags as one string ('trusted', 'gap+failed_read', ...)."""
    return ["+".join(f[3:] for f in FLAGS if r[f]) for r in rows if port is None or r["port_id"] == port]


def test_deltas_split_over_intervals_with_largest_remainder(tmp_path: Path) -> None:
    """Reads at 0, 300, 500, 1400, 1500 s.

    in:  0 -> 300,000 -> 300,700 -> 300,710 -> 301,710
    out: 0 -> 600,000 -> 600,200 -> 600,207 -> 600,257

    (0,300)    lies in k0:            in 300,000       out 600,000
    (300,500)  lies in k1 (200 s):    in 700           out 200
    (500,1400) spans 900 s: k1 100 s, k2 300 s, k3 300 s, k4 200 s
       in  10: shares 1.111 3.333 3.333 2.222 -> floors 1 3 3 2 (sum 9), 1 left over;
               largest remainders .333 / .333 tie -> the earlier (k2) gets it: 1 4 3 2
       out  7: shares 0.777 2.333 2.333 1.555 -> floors 0 2 2 1 (sum 5), 2 left over;
               largest remainders .777 (k1), .555 (k4): 1 2 2 2
       (cumulative rounding would give in 1 3 3 3: a different, wrong answer here)
    (1400,1500) lies in k4 (100 s):   in 1,000         out 50

    k0 in 300,000 out 600,000 | k1 701 / 201 | k2 4 / 2 | k3 3 / 2 | k4 1,002 / 52; all trusted.
    bps = bytes x 8 / 300: k0 in 8,000.0, out 16,000.0.
    """
    ex = exchange(("p1", 1, 1000, 64))
    reads = [
        read(0, 1, 0, 0),
        read(300, 1, 300_000, 600_000),
        read(500, 1, 300_700, 600_200),
        read(1400, 1, 300_710, 600_207),
        read(1500, 1, 301_710, 600_257),
    ]
    store(tmp_path, reads)
    store(tmp_path, reads, key="same-reads-again")  # duplicates of the same reads change nothing
    stats = hygiene.run(tmp_path, ex, start=T, end=at(1500))
    rows = rates(tmp_path)
    assert column(rows, "interval_start") == [at(300 * k) for k in range(5)]
    assert column(rows, "in_bytes") == [300_000, 701, 4, 3, 1002]
    assert column(rows, "out_bytes") == [600_000, 201, 2, 2, 52]
    assert sum(column(rows, "in_bytes")) == 301_710 and sum(column(rows, "out_bytes")) == 600_257
    assert flags(rows) == ["trusted"] * 5
    assert rows[0]["in_bps"] == 8000.0 and rows[0]["out_bps"] == 16000.0
    assert column(rows, "source") == ["snmp"] * 5
    assert column(rows, "in_packets") == [None] * 5  # no packet counters were read
    assert (rows[0]["device_id"], rows[0]["ifindex"], rows[0]["speed_mbps"]) == ("sw1", 1, 1000)
    assert stats.pairs == {"good": 4} and stats.trusted == 5


def test_misaligned_polls_split_by_overlap(tmp_path: Path) -> None:
    """Reads at 10, 310, 660, 910 s; packets counted too.

    (10,310): in 30,000 over k0 290 s / k1 10 s -> 29,000 / 1,000 exactly.
    (310,660): in 700,000 over k1 290 s / k2 60 s (span 350): 580,000 / 120,000 exactly;
               out 400,000: 331,428.57 / 68,571.43 -> floors 331,428 / 68,571, 1 left to the
               larger remainder (.57, k1): 331,429 / 68,571.
    (660,910): in 5 over k2 240 s / k3 10 s: 4.8 / 0.2 -> floors 4 / 0, 1 left -> k2: 5 / 0.
    packets in: (10,310) 300 -> 290 / 10; (310,660) 7 -> 5.8 / 1.2 -> 5 / 1 plus 1 to k1 (.8): 6 / 1;
               (660,910) 0.
    k0 is not fully covered (0..10 s has no pair): a gap, untrusted. k3 only to 910 s: a gap.
    k1 = 1,000 + 580,000 = 581,000 in; k2 = 120,000 + 5 = 120,005 in.
    k1 out = 1,000 + 331,429; k2 out = 68,571 + 0 (out delta (660,910) is 0).
    k1 packets in = 10 + 6 = 16, k2 = 1 + 0 = 1.
    """
    ex = exchange(("p1", 1, 1000, 64))
    store(
        tmp_path,
        [
            read(10, 1, 0, 0, in_pkts=0, out_pkts=0),
            read(310, 1, 30_000, 30_000, in_pkts=300, out_pkts=300),
            read(660, 1, 730_000, 430_000, in_pkts=307, out_pkts=300),
            read(910, 1, 730_005, 430_000, in_pkts=307, out_pkts=300),
        ],
    )
    hygiene.run(tmp_path, ex, start=T, end=at(1200))
    rows = rates(tmp_path)
    assert flags(rows) == ["gap", "trusted", "trusted", "gap"]
    assert column(rows, "in_bytes") == [None, 581_000, 120_005, None]
    assert column(rows, "out_bytes") == [None, 1_000 + 331_429, 68_571, None]
    assert column(rows, "in_packets") == [None, 16, 1, None]
    # out packets: (10,310) 300 -> 290 / 10; (310,660) and (660,910) 0 -> k1 10, k2 0
    assert column(rows, "out_packets") == [None, 10, 0, None]


def test_32_bit_wraps_and_uptime_resets(tmp_path: Path) -> None:
    """A 32-bit port (ifInOctets), reads every 300 s with sysUpTime in hundredths.

    t=0    in 4,294,967,000  up 100,000
    t=300  in 704            up 130,000 -> went down, 32-bit: wrap, delta 704 + 2^32 - 4,294,967,000 = 1,000
    t=600  in 500            up 160,000 -> wrap again: 500 + 2^32 - 704 = 4,294,967,092 (114.5 Mbit/s)
    t=900  in 600            up     500 -> sysUpTime went back: reset, delta discarded
    t=1200 in 700            up  30,500 -> 305 s up >= 300 s since the last read: good, delta 100
    out rises by 10 each time (no wrap).
    """
    ex = exchange(("p32", 7, 1000, 32))
    store(
        tmp_path,
        [
            read(0, 7, 4_294_967_000, 10, uptime=100_000, bits=32),
            read(300, 7, 704, 20, uptime=130_000, bits=32),
            read(600, 7, 500, 30, uptime=160_000, bits=32),
            read(900, 7, 600, 40, uptime=500, bits=32),
            read(1200, 7, 700, 50, uptime=30_500, bits=32),
        ],
    )
    hygiene.run(tmp_path, ex, start=T, end=at(1200))
    rows = rates(tmp_path)
    assert flags(rows) == ["trusted+wrap", "trusted+wrap", "reset", "trusted"]
    assert column(rows, "in_bytes") == [1_000, 4_294_967_092, None, 100]
    assert column(rows, "out_bytes") == [10, 10, None, 10]


def test_64_bit_decrease_and_reboots_are_resets(tmp_path: Path) -> None:
    """A 64-bit port:

    t=0    in 5,000,000  up 100,000
    t=300  in 1,000      up 130,000 -> a 64-bit counter went down: reset (never a wrap, never negative)
    t=600  in 2,000      up 160,000 -> good: 1,000
    t=900  in 3,000      up   6,000 -> sysUpTime went back: reset
    t=1200 in 9,000      up   8,000 -> up 80 s but 300 s passed since the last read: it rebooted
                                        again after it, so the counters restarted: reset
    t=1500 in 10,000     up  38,000 -> good: 1,000
    """
    ex = exchange(("p1", 1, 10_000, 64))
    values = [(0, 5_000_000, 100_000), (300, 1_000, 130_000), (600, 2_000, 160_000), (900, 3_000, 6_000)]
    values += [(1200, 9_000, 8_000), (1500, 10_000, 38_000)]
    store(tmp_path, [read(t, 1, v, v, uptime=u) for t, v, u in values])
    stats = hygiene.run(tmp_path, ex, start=T, end=at(1500))
    rows = rates(tmp_path)
    assert flags(rows) == ["reset", "trusted", "reset", "reset", "trusted"]
    assert column(rows, "in_bytes") == [None, 1_000, None, None, 1_000]
    assert stats.pairs == {"reset": 3, "good": 2}


def test_failed_reads_gaps_and_gap_policy(tmp_path: Path) -> None:
    """Reads (in octets): 0:0, 300:3,000, 600:FAILED, 900:9,000, 1200:12,000, then nothing until
    2400:24,000, 2700:27,000. Period 0..3000 s = k0..k9.

    k0 (0,300) 3,000 trusted. k1 (300,600) and k2 (600,900) touch the failed read: failed, and
    no delta is taken from 3,000 to 9,000 across it. k3 (900,1200) 3,000 trusted.
    (1200,2400) is 1,200 s > 900 s: too long to spread: k4..k7 are gaps. k8 (2400,2700) 3,000.
    k9 has no read after 2700: gap. Trusted k0, k3, k8.
    gap policy exclude: untrusted bytes are null; zero: they are 0.
    """
    ex = exchange(("p1", 1, 1000, 64))
    reads = [read(0, 1, 0, 0), read(300, 1, 3_000, 3_000), read(600, 1, ok=False), read(900, 1, 9_000, 9_000)]
    reads += [read(1200, 1, 12_000, 12_000), read(2400, 1, 24_000, 24_000), read(2700, 1, 27_000, 27_000)]
    store(tmp_path, reads)
    stats = hygiene.run(tmp_path, ex, start=T, end=at(3000))
    rows = rates(tmp_path)
    expected_flags = [
        "trusted",
        "failed_read",
        "failed_read",
        "trusted",
        "gap",
        "gap",
        "gap",
        "gap",
        "trusted",
        "gap",
    ]
    assert flags(rows) == expected_flags
    assert column(rows, "in_bytes") == [3000, None, None, 3000, None, None, None, None, 3000, None]
    assert stats.pairs == {"good": 3, "failed": 2, "long": 1}
    assert (stats.trusted, stats.gaps, stats.failed_read) == (3, 5, 2)

    hygiene.run(tmp_path, ex, start=T, end=at(3000), gap_policy="zero")
    zero = rates(tmp_path)
    assert flags(zero) == expected_flags  # the flags do not change, only the filled value
    assert column(zero, "in_bytes") == [3000, 0, 0, 3000, 0, 0, 0, 0, 3000, 0]
    assert column(zero, "in_bps") == [80.0, 0.0, 0.0, 80.0, 0.0, 0.0, 0.0, 0.0, 80.0, 0.0]
    assert len(zero) == 10  # replaced, not appended


def test_rate_above_port_speed_is_flagged_and_excluded(tmp_path: Path) -> None:
    """Port a: configured 1,000 Mbit/s, ifHighSpeed 1000. In 300 s it can carry
    1,000 x 10^6 x 300 / 8 = 37,500,000,000 bytes (+1 % tolerance: 37,875,000,000).
    (0,300) +40,000,000,000 bytes = 1,066.7 Mbit/s: over speed, excluded.
    (300,600) +37,500,000,000 = exactly 1,000 Mbit/s: trusted.
    (600,900) in +1,000 but out +38,000,000,000 (1,013 Mbit/s): the pair is over speed.
    Port b: configured 1,000 but ifHighSpeed says 10,000 (a 10G optic): +40,000,000,000 is
    1,066.7 Mbit/s, well under 10,000: trusted (the device's own speed wins when it gives one).
    """
    ex = exchange(("a", 1, 1000, 64), ("b", 2, 1000, 64))
    g = 1_000_000_000
    store(
        tmp_path,
        [
            read(0, 1, 0, 0, high_speed=1000),
            read(300, 1, 40 * g, 0, high_speed=1000),
            read(600, 1, 40 * g + 37_500_000_000, 0, high_speed=1000),
            read(900, 1, 40 * g + 37_500_001_000, 38 * g, high_speed=1000),
            read(0, 2, 0, 0, high_speed=10_000),
            read(300, 2, 40 * g, 40 * g, high_speed=10_000),
        ],
    )
    hygiene.run(tmp_path, ex, start=T, end=at(900), ports_per_chunk=1)
    rows = rates(tmp_path)
    assert column(rows, "port_id") == ["sw1:a", "sw1:b"] * 3  # sorted by interval, then port
    assert flags(rows, "sw1:a") == ["over_speed", "trusted", "over_speed"]
    assert column(rows, "in_bytes", "sw1:a") == [None, 37_500_000_000, None]
    assert column(rows, "in_bps", "sw1:a")[1] == 1e9
    assert flags(rows, "sw1:b") == ["trusted", "gap", "gap"]
    assert column(rows, "in_bytes", "sw1:b") == [40 * g, None, None]


def test_preferred_source_wins_and_is_named(tmp_path: Path) -> None:
    """One port, three sources, reads at 0, 300, 600, 900 s:
    snmp:   0, 1,000, FAILED, 3,000           -> k0 1,000; k1, k2 failed
    import: 0, 1,100, 2,300, 3,600            -> k0 1,100; k1 1,200; k2 1,300
    sflow:  0, 1,200, 2,500, 3,900 (counter samples) -> k0 1,200; k1 1,300; k2 1,400
    k0: snmp is trusted and preferred -> 1,000 "snmp"; k1, k2: snmp untrusted, import trusted
    and preferred over sflow -> 1,200 / 1,300 "import".
    """
    ex = exchange(("p1", 1, 1000, 64))
    rows_in = [read(0, 1, 0, 0), read(300, 1, 1000, 1000), read(600, 1, ok=False), read(900, 1, 3000, 3000)]
    for source, values in (("import", (0, 1100, 2300, 3600)), ("sflow", (0, 1200, 2500, 3900))):
        rows_in += [read(300 * n, 1, v, v, source=source) for n, v in enumerate(values)]
    store(tmp_path, rows_in)
    hygiene.run(tmp_path, ex, start=T, end=at(900))
    rows = rates(tmp_path)
    assert column(rows, "source") == ["snmp", "import", "import"]
    assert column(rows, "in_bytes") == [1000, 1200, 1300]
    assert flags(rows) == ["trusted"] * 3


def test_every_interval_of_every_existing_port_is_present(tmp_path: Path) -> None:
    """Two ports; 'new' is connected on 2026-10-02. Period 2026-10-01 23:50 to 10-02 00:10 (4 intervals):
    'old' has 4 rows, all gaps (no reads at all), 'new' only the 2 intervals from its connection.
    Reads of an unconfigured ifIndex (99) are ignored and counted.
    """
    ex = exchange(("old", 1, 1000, 64), ("new", 2, 1000, 64), connected={"new": dt.date(2026, 10, 2)})
    store(tmp_path, [read(86_100, 99, 0, 0), read(86_400, 99, 10, 10)])  # 23:55 and 00:00
    start = dt.datetime(2026, 10, 1, 23, 50, tzinfo=dt.UTC)
    stats = hygiene.run(tmp_path, ex, start=start, end=start + dt.timedelta(minutes=20), ports_per_chunk=1)
    rows = rates(tmp_path)
    old = [r for r in rows if r["port_id"] == "sw1:old"]
    new = [r for r in rows if r["port_id"] == "sw1:new"]
    assert [r["interval_start"] for r in old] == [start + dt.timedelta(minutes=5 * i) for i in range(4)]
    assert [r["interval_start"] for r in new] == [start + dt.timedelta(minutes=10 + 5 * i) for i in range(2)]
    assert all(r["is_gap"] and not r["is_trusted"] and r["source"] is None for r in rows)
    assert stats.reads_unknown_port == 2 and stats.unknown_ports == ["sw1/99"]
    # parts are per UTC day
    assert sorted(p.parent.name for p in (tmp_path / "port_rates_5min").glob("date=*/*.parquet")) == [
        "date=2026-10-01",
        "date=2026-10-02",
    ]


def test_rerun_of_part_of_a_day_keeps_the_rest(tmp_path: Path) -> None:
    """Hygiene for 0..900 s from in 0, 100, 300, 600 at 0/300/600/900 s: k0 100, k1 200, k2 300.
    Then the read at 600 s is corrected to 250 (stored again under the same key, replacing it) and
    only 300..600 s is recomputed: k1 becomes 250 - 100 = 150; k0 and k2 keep the first run's
    values (k2 stays 300 although the corrected raw data would now give 350): a run only
    replaces its own intervals, even inside a day file.
    """
    ex = exchange(("p1", 1, 1000, 64))
    store(
        tmp_path, [read(0, 1, 0, 0), read(300, 1, 100, 100), read(600, 1, 300, 300), read(900, 1, 600, 600)]
    )
    hygiene.run(tmp_path, ex, start=T, end=at(900))
    assert column(rates(tmp_path), "in_bytes") == [100, 200, 300]
    # same key: the stored reads are replaced; 600 s now reads 250
    store(
        tmp_path, [read(0, 1, 0, 0), read(300, 1, 100, 100), read(600, 1, 250, 250), read(900, 1, 600, 600)]
    )
    hygiene.run(tmp_path, ex, start=at(300), end=at(600))
    assert column(rates(tmp_path), "in_bytes") == [100, 150, 300]
    assert len(list((tmp_path / "port_rates_5min").glob("date=*/*.parquet"))) == 1


def test_outages_oper_down_and_unreachable_kept_apart(tmp_path: Path) -> None:
    """Two ports on sw1, polled every 300 s (oper status 1 up, 2 down, 7 lowerLayerDown):

    t      p1          p2
    0      up          up
    300    down(2)     up
    600    down(2)     up
    900    up          up
    1200   FAILED      FAILED   <- every read of the device failed: unreachable
    1500   FAILED      FAILED
    1800   up          down(7)
    2100   up          down(7)
    2400   FAILED*     down(7)  <- *only p1 failed while the device answered: no state, p1 stays up

    p1 oper_down:    from the last read showing up (0) to the first read showing the next state (900): 900 s
    p1 unreachable:  from the last up read (900) to the first read after (1800): 900 s
    p2 unreachable:  900 -> 1800 (900 s)
    p2 oper_down:    the state before was unreachable, so it starts at its own first read (1800);
                     still down at the last read: no end, no duration.
    """
    ex = exchange(("p1", 1, 1000, 64), ("p2", 2, 1000, 64))
    plan = {
        0: (1, 1),
        300: (2, 1),
        600: (2, 1),
        900: (1, 1),
        1200: (None, None),
        1500: (None, None),
        1800: (1, 7),
        2100: (1, 7),
        2400: (None, 7),
    }
    reads = []
    for t, (s1, s2) in plan.items():
        reads.append(read(t, 1, t, t, oper=s1) if s1 else read(t, 1, ok=False))
        reads.append(read(t, 2, t, t, oper=s2) if s2 else read(t, 2, ok=False))
    store(tmp_path, reads)
    # one port per chunk: the two ports are computed separately and must not affect each other
    stats = hygiene.run(tmp_path, ex, start=T, end=at(2400), ports_per_chunk=1)
    got = [
        (
            o["port_id"],
            o["cause"],
            (o["start_at"] - T).total_seconds(),
            o["end_at"] and (o["end_at"] - T).total_seconds(),
            o["duration_s"],
        )
        for o in outages(tmp_path)
    ]
    assert got == [
        ("sw1:p1", "oper_down", 0, 900, 900),
        ("sw1:p1", "unreachable", 900, 1800, 900),
        ("sw1:p2", "unreachable", 900, 1800, 900),
        ("sw1:p2", "oper_down", 1800, None, None),
    ]
    assert stats.outages == 4
    assert all(o["device_id"] == "sw1" for o in outages(tmp_path))


def test_quality_score_per_port_and_billing_month(tmp_path: Path) -> None:
    """The failed-read/gap series of test_failed_reads_gaps_and_gap_policy: 10 intervals computed,
    3 trusted, 2 failed, 5 gaps. October 2026 in Europe/Warsaw runs from 2026-09-30 22:00 UTC to
    2026-10-31 23:00 UTC: 31 days x 288 + 12 (the extra hour when DST ends on 25 October) = 8,940
    intervals. Score 3 / 8,940; 8,930 intervals not computed yet count as missing.
    """
    ex = exchange(("p1", 1, 1000, 64))
    reads = [read(0, 1, 0, 0), read(300, 1, 3_000, 3_000), read(600, 1, ok=False), read(900, 1, 9_000, 9_000)]
    reads += [read(1200, 1, 12_000, 12_000), read(2400, 1, 24_000, 24_000), read(2700, 1, 27_000, 27_000)]
    store(tmp_path, reads)
    hygiene.run(tmp_path, ex, start=T, end=at(3000))
    table = quality(tmp_path, ex, "2026-10").to_dicts()
    assert len(table) == 1
    row = table[0]
    assert (
        row["port_id"],
        row["intervals"],
        row["trusted"],
        row["failed_read"],
        row["gap"],
        row["missing"],
    ) == (
        "sw1:p1",
        8940,
        3,
        2,
        5,
        8930,
    )
    assert row["score"] == pytest.approx(3 / 8940)
    assert quality(tmp_path, ex, "2026-11").to_dicts()[0]["intervals"] == 30 * 288


def test_cli_clean_and_quality(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The commands over the same series as test_failed_reads_gaps_and_gap_policy, with a real
    exchange.toml (written by the configuration module's dump_exchange, read by its loader)."""
    from decimal import Decimal

    from peerpool.cli import main as peerpool_main
    from peerpool.config.dump import dump_exchange
    from peerpool.config.model import PortFee

    ex = exchange(("p1", 1, 1000, 64))
    ex = Exchange(
        name=ex.name,
        sites=ex.sites,
        switches=(Switch("sw1", "S", "192.0.2.1", SnmpSettings(community_env="UNUSED", profile="default")),),
        members=ex.members,
        ports=ex.ports,
        border_routers=(),
        transit_contracts=(),
        port_fees=(PortFee(1000, Decimal("300.00")),),
    )
    config = tmp_path / "exchange.toml"
    config.write_text(dump_exchange(ex))
    lake = tmp_path / "lake"
    reads = [read(0, 1, 0, 0), read(300, 1, 3_000, 3_000), read(600, 1, ok=False), read(900, 1, 9_000, 9_000)]
    reads += [read(1200, 1, 12_000, 12_000), read(2400, 1, 24_000, 24_000), read(2700, 1, 27_000, 27_000)]
    store(lake, reads)
    args = ["--lake", str(lake), "--config", str(config)]
    peerpool_main(
        ["counters", "clean", *args, "--start", "2026-10-01T00:00:00Z", "--end", "2026-10-01T00:50:00Z"]
    )
    out = capsys.readouterr().out
    assert "00:00 to 2026-10-01 00:50 UTC: 7 reads, 10 port-intervals, 3 trusted, 5 gap, 2 failed-read" in out
    assert column(rates(lake), "in_bytes") == [3000, None, None, 3000, None, None, None, None, 3000, None]
    peerpool_main(["counters", "quality", *args, "--month", "2026-10", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["port_id"], row["intervals"], row["trusted"], row["missing"]) == ("sw1:p1", 8940, 3, 8930)


def test_outage_crossing_midnight_gets_its_end_from_the_next_days_run(tmp_path: Path) -> None:
    """p1 polled every 5 min: up at 23:40 and 23:45, down(2) 23:50 .. 00:05, up from 00:10.

    The run for the evening sees the outage from 23:45 (last up read) still going on. The
    run for the next day (start 00:00) reads a week back, finds the same outage ending at
    00:10 (first up read) and rewrites the evening's day file: 23:45 -> 00:10, 1,500 s.
    """
    ex = exchange(("p1", 1, 1000, 64))
    minutes = [23 * 60 + 40 + 5 * i for i in range(9)]  # 23:40 .. 00:20 (minutes after T)
    status = [1, 1, 2, 2, 2, 2, 1, 1, 1]
    reads = [read(m * 60, 1, m, m, oper=s) for m, s in zip(minutes, status, strict=True)]
    store(tmp_path, reads[:4], key="evening")  # up to 23:55
    hygiene.run(tmp_path, ex, start=at(23 * 3600 + 30 * 60), end=at(86_400))
    (first,) = outages(tmp_path)
    assert (first["start_at"], first["end_at"], first["duration_s"]) == (at(23 * 3600 + 45 * 60), None, None)
    store(tmp_path, reads[4:], key="night")
    stats = hygiene.run(tmp_path, ex, start=at(86_400), end=at(86_400 + 30 * 60))
    (second,) = outages(tmp_path)  # one outage, in the evening's file, now with its end
    assert (second["cause"], second["start_at"], second["end_at"], second["duration_s"]) == (
        "oper_down",
        at(23 * 3600 + 45 * 60),
        at(86_400 + 10 * 60),
        1500,
    )
    assert stats.outages == 1
    assert [p.parent.name for p in (tmp_path / "port_outages").glob("date=*/*.parquet")] == [
        "date=2026-10-01"
    ]
