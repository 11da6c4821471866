"""Importing counter reads from CSV / JSON files written by other monitoring systems.

Expected rows are written out in each test from the file text itself (the file is the
independent source); nothing is compared with the importer's own earlier output.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ingest.counters.importer import ImportProblems, import_files, parse
from peerpool.cli import main as peerpool_main
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch

SIMULATOR_HEADER = (
    "polled_at,device_id,device_address,ifindex,port_id,ok,error,sys_uptime_cs,counter_bits,"
    "in_octets,out_octets,in_ucast_pkts,out_ucast_pkts,if_high_speed_mbps,if_oper_status,if_name,if_alias"
)
UTC = dt.UTC


def exchange() -> Exchange:
    snmp = SnmpSettings(community_env="UNUSED")
    return Exchange(
        name="t",
        sites=(Site("S", "S"),),
        switches=(Switch("sw1", "S", "192.0.2.1", snmp), Switch("sw2", "S", "192.0.2.2", snmp)),
        members=(Member("AS64500", 64500, "M", "M", dt.date(2024, 1, 1)),),
        ports=(
            MemberPort("sw1:et-1", "sw1", "et-1", 1001, 10000, 100, "AS64500", ("02:00:00:00:00:01",)),
            MemberPort(
                "sw2:ge-7", "sw2", "ge-7", 7, 1000, 100, "AS64500", ("02:00:00:00:00:02",), counter_bits=32
            ),
        ),
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


def stored(lake: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted((lake / "port_counters").glob("date=*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return sorted(rows, key=lambda r: (r["polled_at"], r["device_id"], r["ifindex"]))


def test_simulator_csv_is_stored_value_for_value(tmp_path: Path) -> None:
    csv = tmp_path / "sim-2026-10-01.csv"
    csv.write_text(
        SIMULATOR_HEADER
        + "\n"
        + "2026-10-01T00:05:02.123Z,sw1,192.0.2.1,1001,sw1:et-1,true,,123456,64,"
        + "18446744073709551615,42,7,8,10000,1,et-1,AS64500 Eyeball\n"
        + "2026-10-01T00:05:03Z,sw2,192.0.2.2,7,sw2:ge-7,false,timeout after 2 s,,32,,,,,,,,\n"
        + "2026-10-01T00:10:02.5Z,sw1,192.0.2.1,1001,sw1:et-1,true,,153456,64,5,43,9,10,10000,2,et-1,\n"
    )
    done, bad = import_files([csv], tmp_path / "lake")
    assert bad == [] and len(done) == 1
    assert (done[0].rows, done[0].ok, done[0].failed) == (3, 2, 1)
    rows = stored(tmp_path / "lake")
    first, failed, third = rows
    assert first == {
        "polled_at": dt.datetime(2026, 10, 1, 0, 5, 2, 123000, tzinfo=UTC),
        "source": "import",
        "device_id": "sw1",
        "device_address": "192.0.2.1",
        "ifindex": 1001,
        "port_id": "sw1:et-1",
        "ok": True,
        "error": None,
        "sys_uptime_cs": 123456,
        "counter_bits": 64,
        "in_octets": 2**64 - 1,  # the largest Counter64, kept exactly (unsigned 64-bit column)
        "out_octets": 42,
        "in_ucast_pkts": 7,
        "out_ucast_pkts": 8,
        "if_high_speed_mbps": 10000,
        "if_oper_status": 1,
        "if_name": "et-1",
        "if_alias": "AS64500 Eyeball",
        "source_file": str(csv),
    }
    assert failed["ok"] is False and failed["error"] == "timeout after 2 s"
    assert failed["in_octets"] is None and failed["out_octets"] is None and failed["counter_bits"] == 32
    assert third["polled_at"] == dt.datetime(2026, 10, 1, 0, 10, 2, 500000, tzinfo=UTC)
    assert third["if_oper_status"] == 2 and third["if_alias"] is None
    # part named after the file, in the day's partition
    assert [p.name for p in (tmp_path / "lake" / "port_counters").glob("date=2026-10-01/*")] == [
        "part-import-sim-2026-10-01.csv.parquet"
    ]


def test_aliases_offsets_words_and_ports_from_the_configuration(tmp_path: Path) -> None:
    """Another system's spelling: timestamp / hostname / ifIndex / ifInOctets (32-bit) / words.

    2026-10-01 02:05:00+02:00 is 00:05:00 UTC; 1790813100 epoch seconds is 2026-10-01 00:05:00 UTC.
    port ids come from the configuration: (sw2, 7) is sw2:ge-7; the 32-bit column names imply
    counter_bits 32; 'Unknown Col' is ignored and reported.
    """
    csv = tmp_path / "nms.csv"
    csv.write_text(
        "Timestamp,Hostname,ifIndex,ifInOctets,ifOutOctets,ifOperStatus,sysUpTime,Unknown Col\n"
        "2026-10-01 02:05:00+02:00,sw2,7,4000000000,17,up,500,x\n"
        "1790813100,sw2,7,12,18,lowerLayerDown,30500,y\n"
    )
    rows, result = parse(csv, exchange())
    assert result.ignored_columns == ["Unknown Col"]
    got = rows.select(
        "polled_at", "device_id", "port_id", "counter_bits", "in_octets", "if_oper_status"
    ).rows()
    t = dt.datetime(2026, 10, 1, 0, 5, tzinfo=UTC)
    assert got == [(t, "sw2", "sw2:ge-7", 32, 4_000_000_000, 1), (t, "sw2", "sw2:ge-7", 32, 12, 7)]
    assert rows["ok"].to_list() == [True, True]  # no ok column: a read with both octet counters is ok


def test_json_array_and_json_lines_give_the_same_rows_as_csv(tmp_path: Path) -> None:
    records = [
        {
            "polled_at": "2026-10-01T00:05:00Z",
            "device_id": "sw1",
            "ifindex": 1001,
            "in_octets": 100,
            "out_octets": 200,
        },
        {
            "polled_at": "2026-10-01T00:10:00Z",
            "device_id": "sw1",
            "ifindex": 1001,
            "ok": False,
            "error": "timeout",
        },
    ]
    array = tmp_path / "a.json"
    array.write_text(json.dumps(records, indent=2))
    lines = tmp_path / "b.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    csv = tmp_path / "c.csv"
    csv.write_text(
        "polled_at,device_id,ifindex,in_octets,out_octets,ok,error\n"
        "2026-10-01T00:05:00Z,sw1,1001,100,200,,\n"
        "2026-10-01T00:10:00Z,sw1,1001,,,false,timeout\n"
    )
    expected = [
        (dt.datetime(2026, 10, 1, 0, 5, tzinfo=UTC), "sw1:et-1", True, 100, 200, None),
        (dt.datetime(2026, 10, 1, 0, 10, tzinfo=UTC), "sw1:et-1", False, None, None, "timeout"),
    ]
    for path in (array, lines, csv):
        rows, _ = parse(path, exchange())
        assert (
            rows.select("polled_at", "port_id", "ok", "in_octets", "out_octets", "error").rows() == expected
        ), path


def test_a_bad_file_stores_nothing_and_says_where_and_what_to_do(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("polled_at,device_id,ifindex,in_octets,out_octets\n2026-10-01T00:05:00Z,sw1,1001,1,2\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "polled_at,device_id,ifindex,in_octets,out_octets,ok\n"
        "2026-10-01T00:05:00Z,sw1,1001,10,20,true\n"  # line 2: fine
        "2026-10-01T00:10:00Z,sw1,1001,-5,20,true\n"  # line 3: negative counter
        "2026-10-01T00:15:00,sw1,1001,30,40,true\n"  # line 4: no time zone
        "2026-10-01T00:20:00Z,sw1,zero,30,40,maybe\n"  # line 5: ifindex and ok wrong
        "2026-10-01T00:25:00Z,sw1,1001,,40,true\n"  # line 6: ok but no in_octets
    )
    lake = tmp_path / "lake"
    done, refused = import_files([good, bad], lake)
    assert [r.path for r in done] == [good]
    assert len(refused) == 1
    message = str(refused[0])
    assert message.startswith(f"{bad}: 5 problems; nothing from this file was stored")
    for fragment in (
        f"{bad}: line 3, column 'in_octets': not a counter value",
        f"{bad}: line 4, column 'polled_at': time without a time zone; add Z for UTC",
        f"{bad}: line 5, column 'ifindex': not an ifIndex",
        f"{bad}: line 5, column 'ok': not true or false",
        f"{bad}: line 6, column 'in_octets': empty on a read marked ok; fill it, or set ok to false",
    ):
        assert fragment in message
    rows = stored(lake)
    assert [r["source_file"] for r in rows] == [str(good)]  # nothing of bad.csv


def test_32_bit_value_too_large_and_missing_columns(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(
        "polled_at,device_id,ifindex,counter_bits,in_octets,out_octets\n2026-10-01T00:05:00Z,sw1,3,32,4294967296,1\n"
    )
    with pytest.raises(
        ImportProblems, match=r"line 2, column 'in_octets': above 2\^32 - 1 on a 32-bit counter"
    ):
        parse(wide)
    bare = tmp_path / "bare.csv"
    bare.write_text("when,what\n1,2\n")
    with pytest.raises(ImportProblems) as caught:
        parse(bare)
    text = str(caught.value)
    assert "no polled_at column; add one (accepted names: polled_at, timestamp" in text
    assert "no ifindex column" in text and "no device_id or device_address column" in text


def test_failed_row_with_counters_keeps_no_counters(tmp_path: Path) -> None:
    """Some systems write zeros on a failed poll: the read is stored as failed, counters dropped."""
    csv = tmp_path / "zeros.csv"
    csv.write_text(
        "polled_at,device_id,ifindex,ok,in_octets,out_octets\n2026-10-01T00:05:00Z,sw1,1001,false,0,0\n"
    )
    done, _ = import_files([csv], tmp_path / "lake")
    assert done[0].counters_dropped == 1
    (row,) = stored(tmp_path / "lake")
    assert row["ok"] is False and row["in_octets"] is None and row["out_octets"] is None
    assert row["error"] == "failed read (no reason given)"


def test_reimport_replaces_including_days_no_longer_in_the_file(tmp_path: Path) -> None:
    csv = tmp_path / "export.csv"
    lake = tmp_path / "lake"
    head = "polled_at,device_id,ifindex,in_octets,out_octets\n"
    csv.write_text(head + "2026-10-01T23:55:00Z,sw1,1001,1,1\n2026-10-02T00:00:00Z,sw1,1001,2,2\n")
    import_files([csv], lake)
    import_files([csv], lake)
    assert len(stored(lake)) == 2  # not 4
    csv.write_text(head + "2026-10-01T23:55:00Z,sw1,1001,1,1\n")  # corrected export: one day only
    import_files([csv], lake)
    assert [r["in_octets"] for r in stored(lake)] == [1]
    assert not list((lake / "port_counters").glob("date=2026-10-02/*"))


def test_cli_import_counts_and_refuses_with_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "polled_at,device_id,ifindex,in_octets,out_octets\n"
        "2026-10-01T00:05:00Z,sw1,1001,1,2\n2026-10-01T00:10:00Z,sw1,1001,3,4\n2026-10-01T01:10:00Z,sw1,1001,5,6\n"
    )
    (folder / "b.csv").write_text(
        "polled_at,device_id,ifindex,in_octets,out_octets\nyesterday,sw1,1001,1,2\n"
    )
    (folder / "notes.txt").write_text("not an export")
    lake = tmp_path / "lake"
    with pytest.raises(SystemExit) as exited:
        peerpool_main(
            [
                "counters",
                "import",
                "--dir",
                str(folder),
                "--lake",
                str(lake),
                "--from",
                "2026-10-01T00:00:00Z",
                "--to",
                "2026-10-01T01:00:00Z",
            ]
        )
    assert exited.value.code == 3
    captured = capsys.readouterr()
    assert f"{folder / 'a.csv'}: 2 rows (2 ok, 0 failed); 1 outside --from/--to" in captured.out
    assert "imported 2 rows from 1 file(s); 1 file(s) refused" in captured.out
    assert f"{folder / 'b.csv'}: line 2, column 'polled_at': not an ISO 8601 time" in captured.err
    assert [r["in_octets"] for r in stored(lake)] == [1, 3]
    # the window is part of the key, so another window of the same file does not replace this one
    assert [p.name for p in (lake / "port_counters" / "date=2026-10-01").iterdir()] == [
        "part-import-a.csv-20261001T000000Z_20261001T010000Z.parquet"
    ]
