"""Spool files: round trip, torn tail, damaged records, crash recovery.

The expected bytes come from an encoder and a parser written here from the format in
docs/architecture.md (not from ingest.spool), so the reader and writer are checked against
the contract, not against each other.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct
import zlib
from pathlib import Path

import pytest

from ingest import spool
from peerpool.errors import InputError

MAGIC = b"PPSPOOL1"


def contract_record(arrival_ns: int, ip: str, port: int, protocol: int, datagram: bytes) -> bytes:
    """A record exactly as docs/architecture.md defines it."""
    addr = ipaddress.ip_address(ip)
    af = addr.version
    raw = addr.packed.ljust(16, b"\0")
    body = struct.pack(">QB16sHB", arrival_ns, af, raw, port, protocol) + datagram
    return struct.pack(">I", len(body)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def contract_parse(data: bytes) -> list[tuple[int, str, int, int, bytes]]:
    """Parse a clean spool file per the contract (asserting it is clean)."""
    assert data[:8] == MAGIC
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        body = data[pos + 4 : pos + 4 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 4 + length)
        assert zlib.crc32(body) == crc
        arrival, af, raw, port, proto = struct.unpack_from(">QB16sHB", body)
        ip = str(ipaddress.ip_address(raw[:4] if af == 4 else raw))
        out.append((arrival, ip, port, proto, body[28:]))
        pos += 8 + length
    return out


def sample_records(n: int, seed: int = 1) -> list[tuple[int, str, int, int, bytes]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ip = rnd.choice(["192.0.2.10", "198.51.100.7", "2001:db8::1", "fe80::1:2"])
        size = rnd.choice([0, 1, 28, 300, 1400, 9000, 65535])
        out.append(
            (
                1_700_000_000_000_000_000 + i * 1000,
                ip,
                rnd.randint(0, 65535),
                rnd.randint(0, 3),
                rnd.randbytes(size),
            )
        )
    return out


def write_contract_file(path: Path, records: list[tuple[int, str, int, int, bytes]]) -> list[int]:
    """Write records with the contract encoder; return each record's offset."""
    offsets, data = [], bytearray(MAGIC)
    for r in records:
        offsets.append(len(data))
        data += contract_record(*r)
    path.write_bytes(bytes(data))
    return offsets


def as_tuples(records: list[spool.SpoolRecord]) -> list[tuple[int, str, int, int, bytes]]:
    return [(r.arrival_ns, r.source_ip, r.source_port, r.protocol, r.datagram) for r in records]


def test_reader_reads_contract_file(tmp_path: Path) -> None:
    records = sample_records(50)
    path = tmp_path / "a.spool"
    offsets = write_contract_file(path, records)
    stats = spool.SpoolReadStats()
    got = list(spool.read_spool(path, stats))
    assert as_tuples(got) == records
    assert [r.offset for r in got] == offsets
    assert stats.records == 50 and not stats.damaged and stats.torn_tail is None
    assert stats.datagram_bytes == sum(len(r[4]) for r in records)


def test_writer_output_matches_contract(tmp_path: Path) -> None:
    records = sample_records(40, seed=2)
    clock = [records[0][0]]
    writer = spool.SpoolWriter(
        tmp_path / "sflow5", spool.PROTO_SFLOW5, host="test-host", clock_ns=lambda: clock[0]
    )
    for arrival, ip, port, _proto, datagram in records:
        writer.write(datagram, arrival, ip, port)
    assert writer.current_path is not None and writer.current_path.suffix == ".open"
    closed = writer.close()
    assert closed is not None and closed.suffix == ".spool" and closed.exists()
    assert not list((tmp_path / "sflow5").glob("*.open"))
    parsed = contract_parse(closed.read_bytes())
    # the writer stamps its own protocol on every record
    assert parsed == [(a, ip, p, spool.PROTO_SFLOW5, d) for a, ip, p, _x, d in records]
    # "-" separates the fields of the name, so the host's own "-" becomes "_"
    assert "-test_host-" in closed.name and closed.name.startswith("20231114T2213")


def test_writer_rotates_on_period_boundaries(tmp_path: Path) -> None:
    base = 1_700_000_040 * 10**9  # 2023-11-14 22:14:00 UTC, a minute boundary
    writer = spool.SpoolWriter(tmp_path, spool.PROTO_IPFIX, rotate_seconds=60, host="h")
    times = [base + 1, base + 59 * 10**9, base + 60 * 10**9, base + 200 * 10**9]
    for t in times:
        writer.write(b"x", t, "192.0.2.1", 1)
    writer.close()
    files = writer.closed_files
    # minute 22:14 holds two records, 22:15 one, 22:17 one
    assert [len(contract_parse(f.read_bytes())) for f in files] == [2, 1, 1]
    assert [f.name[:13] for f in files] == ["20231114T2214", "20231114T2215", "20231114T2217"]
    assert len({f.name for f in files}) == 3


def test_torn_tail_keeps_every_whole_record(tmp_path: Path) -> None:
    records = sample_records(10, seed=3)
    path = tmp_path / "t.spool"
    offsets = write_contract_file(path, records)
    data = path.read_bytes()
    cut = offsets[9] + 10  # the last record loses all but its first 10 bytes
    path.write_bytes(data[:cut])
    stats = spool.SpoolReadStats()
    got = list(spool.read_spool(path, stats))
    assert as_tuples(got) == records[:9]
    assert stats.torn_tail is not None
    assert stats.torn_tail.offset == offsets[9] and stats.torn_tail.length == 10
    assert not stats.damaged


@pytest.mark.parametrize("where", ["datagram", "length", "crc"])
def test_damaged_record_in_the_middle_is_skipped_and_reported(tmp_path: Path, where: str) -> None:
    records = sample_records(12, seed=4)
    records[5] = (records[5][0], "192.0.2.1", 6343, 1, bytes(range(200)))  # a known-size victim
    path = tmp_path / "d.spool"
    offsets = write_contract_file(path, records)
    data = bytearray(path.read_bytes())
    victim = offsets[5]
    if where == "datagram":
        data[victim + 4 + 28 + 100] ^= 0xFF
    elif where == "length":
        data[victim : victim + 4] = struct.pack(">I", 0xFFFF_FFF0)
    else:
        crc_at = victim + 4 + 28 + 200
        data[crc_at] ^= 0x01
    path.write_bytes(bytes(data))
    stats = spool.SpoolReadStats()
    got = list(spool.read_spool(path, stats))
    assert as_tuples(got) == records[:5] + records[6:]
    assert len(stats.damaged) == 1
    assert stats.damaged[0].offset == victim
    assert stats.damaged[0].length == offsets[6] - victim
    assert stats.torn_tail is None


def test_garbage_between_records_and_at_end(tmp_path: Path) -> None:
    records = sample_records(6, seed=5)
    parts = [
        MAGIC,
        contract_record(*records[0]),
        b"\x00" * 7,
        contract_record(*records[1]),
        contract_record(*records[2]),
        b"\xff" * 100,
    ]
    path = tmp_path / "g.spool"
    path.write_bytes(b"".join(parts))
    stats = spool.SpoolReadStats()
    got = list(spool.read_spool(path, stats))
    assert as_tuples(got) == records[:3]
    first_gap = 8 + len(parts[1])
    assert stats.damaged[0].offset == first_gap and stats.damaged[0].length == 7
    assert stats.damaged[-1].length == 100 or (stats.torn_tail and stats.torn_tail.length == 100)
    assert stats.damaged_bytes == 107


def test_not_a_spool_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"hello world")
    with pytest.raises(InputError, match=r"notes\.txt: not a spool file"):
        list(spool.read_spool(bad))
    with pytest.raises(InputError, match="no such spool file"):
        list(spool.read_spool(tmp_path / "missing.spool"))


def test_recovery_truncates_to_last_whole_record(tmp_path: Path) -> None:
    records = sample_records(8, seed=6)
    proto_dir = tmp_path / "sflow5"
    proto_dir.mkdir()
    path = proto_dir / "20231114T2213-h-1-000001.open"
    offsets = write_contract_file(path, records)
    with open(path, "ab") as fh:
        fh.write(contract_record(*records[0])[:17])  # a torn write
    result = spool.recover_open_files(tmp_path)
    assert len(result) == 1 and result[0].records == 8 and result[0].truncated_bytes == 17
    final = proto_dir / "20231114T2213-h-1-000001.spool"
    assert result[0].spool_path == final and not path.exists()
    assert final.stat().st_size == offsets[-1] + len(contract_record(*records[7]))
    assert contract_parse(final.read_bytes()) == records


def test_recovery_leaves_a_live_writers_file_alone(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path / "ipfix", spool.PROTO_IPFIX, host="h")
    writer.write(b"abc", 1_700_000_000 * 10**9, "192.0.2.1", 4739)
    writer.flush()
    assert spool.recover_open_files(tmp_path) == []
    assert writer.current_path is not None and writer.current_path.exists()
    writer.close()


def test_recovery_removes_file_without_records(tmp_path: Path) -> None:
    path = tmp_path / "x.open"
    path.write_bytes(MAGIC[:5])
    result = spool.recover_open_files(tmp_path)
    assert result[0].spool_path is None and not path.exists()


def test_writer_never_overwrites_an_existing_spool_file(tmp_path: Path) -> None:
    t = 1_700_000_000 * 10**9
    first = spool.SpoolWriter(tmp_path, spool.PROTO_SFLOW5, host="h")
    first.write(b"one", t, "192.0.2.1", 1)
    a = first.close()
    # pretend a restarted collector got the same pid and file number: create every candidate name
    assert a is not None
    second = spool.SpoolWriter(tmp_path, spool.PROTO_SFLOW5, host="h")
    second.write(b"two", t, "192.0.2.1", 1)
    b = second.close()
    assert b is not None and a != b
    assert contract_parse(a.read_bytes())[0][4] == b"one"
    assert contract_parse(b.read_bytes())[0][4] == b"two"
    assert os.path.getsize(a) == 8 + 8 + 28 + 3
