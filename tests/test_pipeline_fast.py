"""The pipeline's C-decoder path writes exactly the lake the pure-Python path writes.

``process_files`` decodes sFlow with the C module (``ingest.sflow.fast``) and builds flows, matrix
and loss column-wise unless ``PEERPOOL_SFLOW_PURE=1``; the pure path (decoded ``FlowSample`` tuples,
per-datagram matrix and loss) is the reference. Each test runs both on the same inputs and compares
every table of the two lakes part file by part file (``pyarrow.Table.equals``: same schema, same
rows in the same order) and the per-file summaries:

* a simulated exchange (``peerpool simulate``, with its configuration and an ASN database built from
  its RIB), so members, ports, sites, unknown MACs and origin ASes are all exercised; also with a
  tiny flows chunk size and sFlow and IPFIX interleaved in one spool file, where the order of rows
  depends on where the chunks end;
* every real sFlow capture of ../shared/realdata and the bench corpus;
* damaged datagrams (truncated, bit-flipped, random) next to sound ones: quarantine rows, partial
  decodes and everything kept from them must match.

The loss tracker's run-based entry point and the matrix's column aggregation are also checked
against their per-sample counterparts on hypothesis-generated streams.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import os
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingest.pipeline as pipeline
from ingest import spool as sp
from ingest.enrich import Enricher
from ingest.loss import LossTracker
from ingest.matrix import MatrixAggregator
from ingest.pcap import read_udp_datagrams
from ingest.pipeline import process_files
from ingest.sflow import fast
from peerpool.config.load import load_exchange
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
BENCH_CORPUS = REALDATA / "bench" / "corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz"
T0 = 1_767_225_600 * 10**9  # 2026-01-01 00:00 UTC
JOINED = dt.date(2020, 1, 1)


def _peerpool(*args: str) -> None:
    exe = Path(sys.executable).parent / "peerpool"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"peerpool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim")
    _peerpool(
        "simulate", "--members", "5", "--days", "1", "--out", str(d), "--samples-per-member-day", "8000"
    )  # fmt: skip
    _peerpool("asn", "build", str(d / "rib.mrt"), "--out", str(d / "asn.dat"))
    return d


def lake_tables(lake: Path) -> dict[str, pa.Table]:
    """Every part file of a lake (not the ledger / state) read back, by path."""
    return {
        str(path.relative_to(lake)): pq.read_table(path)
        for path in sorted(lake.rglob("*.parquet"))
        if not path.relative_to(lake).parts[0].startswith("_")
    }


def run_both(
    monkeypatch: pytest.MonkeyPatch, tmp: Path, inputs: list[Path], **options: Any
) -> tuple[dict[str, pa.Table], list[dict[str, Any]]]:
    """process_files on the pure and on the C path; asserts equal lakes and summaries, returns the
    C path's tables and summaries."""
    assert fast.AVAILABLE, "the C decoder is not built: install the package (uv pip install --no-deps -e .)"
    results = {}
    for mode in ("pure", "fast"):
        monkeypatch.setenv(fast.PURE_ENV, "1" if mode == "pure" else "0")
        summary = process_files(inputs, tmp / mode, retention_days=100_000, **options)
        files = [dataclasses.asdict(f) for f in summary.files]
        for f in files:
            f.pop("seconds")
        results[mode] = (lake_tables(tmp / mode), files)
    monkeypatch.delenv(fast.PURE_ENV)
    pure, fast_path = results["pure"], results["fast"]
    assert fast_path[1] == pure[1]
    assert sorted(fast_path[0]) == sorted(pure[0])
    for name, table in pure[0].items():
        other = fast_path[0][name]
        assert other.schema == table.schema, name
        assert other.equals(table), f"{name}: the C path's rows differ from the pure path's"
    return fast_path[0], fast_path[1]


def rows(tables: dict[str, pa.Table], table: str) -> int:
    return sum(t.num_rows for name, t in tables.items() if name.startswith(table + "/"))


# --- simulated exchange ----------------------------------------------------------------------


def test_simulated_exchange(simulated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = load_exchange(simulated / "exchange.toml")
    tables, files = run_both(
        monkeypatch, tmp_path, [simulated / "spool"], exchange=exchange, asn_db=simulated / "asn.dat"
    )
    # the comparison means something: members, ports, ASes and the matrix are all there
    flows = pa.concat_tables(t for name, t in tables.items() if name.startswith("flows/"))
    assert flows.filter(pa.compute.equal(flows["flow_protocol"], "sflow5")).num_rows > 20_000
    for column in ("src_member_id", "dst_port_id", "src_asn", "dst_asn"):
        assert flows[column].null_count < flows.num_rows, column
    assert rows(tables, "member_matrix") > 1000
    assert rows(tables, "port_counters") > 0 and rows(tables, "flow_loss") > 0
    assert sum(f["matrix_samples"] for f in files) > 20_000


def _interleaved_spool(simulated: Path, path: Path) -> Path:
    """sFlow, IPFIX and NetFlow v9 records of the simulated spool in one file, by arrival time."""
    records = [
        record for spool in sorted((simulated / "spool").rglob("*.spool")) for record in sp.read_spool(spool)
    ]
    records.sort(key=lambda r: (r.arrival_ns, r.protocol, r.offset))
    with open(path, "wb") as fh:
        fh.write(sp.MAGIC)
        for r in records:
            af, raw = sp.pack_address(r.source_ip)
            fh.write(sp.encode_record(r.datagram, r.arrival_ns, af, raw, r.source_port, r.protocol))
    return path


def test_small_chunks_with_interleaved_protocols(
    simulated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row order depends on where flow chunks end (sFlow and IPFIX rows are flushed together)."""
    spool = _interleaved_spool(simulated, tmp_path / "20261001T0000-mixed-1-000001.spool")
    monkeypatch.setattr(pipeline, "FLOWS_CHUNK", 700)
    exchange = load_exchange(simulated / "exchange.toml")
    _, files = run_both(monkeypatch, tmp_path, [spool], exchange=exchange)
    (f,) = files
    assert f["flow_samples"] > 20 * 700 and f["flow_records"] > 0 and f["sflow_datagrams"] > 0


# --- real captures -----------------------------------------------------------------------------


def _sflow_pcaps() -> list[Path]:
    found = []
    for pcap in sorted((REALDATA / "pcaps").rglob("*.pcap")):
        if any(d.payload[:4] == b"\0\0\0\x05" for d in read_udp_datagrams(pcap)):
            found.append(pcap)
    return found


def test_every_real_sflow_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pcaps = _sflow_pcaps()
    assert len(pcaps) >= 14
    pcaps.append(REALDATA / "generated" / "pmacct-sfprobe.pcap")
    _, files = run_both(monkeypatch, tmp_path, pcaps)
    assert sum(f["flow_samples"] for f in files) > 700
    assert sum(f["quarantined"] for f in files) >= 1  # tcpdump's malformed sflow capture


def _corpus() -> list[bytes]:
    raw = gzip.decompress(BENCH_CORPUS.read_bytes())
    out, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack_from("!I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def _write_spool(path: Path, datagrams: Iterator[tuple[bytes, str]], step_ns: int = 50_000_000) -> Path:
    with open(path, "wb") as fh:
        fh.write(sp.MAGIC)
        for k, (data, source) in enumerate(datagrams):
            af, raw = sp.pack_address(source)
            fh.write(sp.encode_record(data, T0 + k * step_ns, af, raw, 6343, sp.PROTO_SFLOW5))
    return path


def test_bench_corpus_with_a_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pmacct corpus (every datagram once) with an exchange whose switch is the corpus' agent
    and whose ports own three of its six router MACs (the samples' VLAN is 0, so a MAC on one port
    matches): matrix rows with members and unknown MACs."""
    corpus = _corpus()
    probe = fast.decode_datagram_c
    assert probe is not None
    agent = probe(corpus[0]).agent_address
    macs = sorted({s.src_mac for d in corpus[:300] for s in probe(d).flow_samples if s.src_mac})[:3]
    exchange = Exchange(
        name="bench",
        sites=(Site("KTW", "Katowice"),),
        switches=(Switch(id="sw1", site="KTW", management_address=agent, snmp=SnmpSettings()),),
        members=tuple(
            Member(id=f"AS{64500 + i}", asn=64500 + i, name="m", billing_entity="m", joined=JOINED)
            for i in range(len(macs))
        ),
        ports=tuple(
            MemberPort(id=f"sw1:et{i}", switch="sw1", interface=f"et{i}", ifindex=i + 1, speed_mbps=10000,
                       vlan=100, member=f"AS{64500 + i}", macs=(mac,))
            for i, mac in enumerate(macs)
        ),
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )  # fmt: skip
    spool = _write_spool(tmp_path / "20260101T0000-bench-1-000001.spool", ((d, agent) for d in corpus))
    tables, files = run_both(monkeypatch, tmp_path, [spool], exchange=exchange)
    assert files[0]["matrix_samples"] == files[0]["flow_samples"] > 29_000
    matrix = pa.concat_tables(t for n, t in tables.items() if n.startswith("member_matrix/"))
    assert matrix["src_member_id"].null_count < matrix.num_rows
    assert rows(tables, "unknown_macs") > 0


def test_damaged_datagrams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    corpus = _corpus()
    picked = rng.sample(corpus, 400)
    datagrams: list[tuple[bytes, str]] = []
    for data in picked:
        datagrams.append((data, "192.0.2.1"))
        damaged = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0:
            del damaged[rng.randrange(len(damaged)) :]
        elif kind == 1:
            position = rng.randrange(len(damaged) * 8)
            damaged[position // 8] ^= 1 << (position % 8)
        elif kind == 2:
            at = rng.randrange(len(damaged) - 4)
            damaged[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", rng.randbytes(4)])
        else:
            damaged = bytearray(rng.randbytes(rng.randrange(64)))
        datagrams.append((bytes(damaged), "192.0.2.1"))
    spool = _write_spool(tmp_path / "20260101T0000-damaged-1-000001.spool", iter(datagrams))
    _, files = run_both(monkeypatch, tmp_path, [spool])
    (f,) = files
    assert f["quarantined"] > 100 and f["partially_decoded"] > 20 and f["flow_samples"] > 2000


def test_damaged_spool_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C path reads spool records itself (``FlowBatch.add_spool``) and hands everything that is
    not a whole sFlow record to the spool reader: CRC mismatches, garbage between records, bad
    address families and protocols, records of other protocols and a torn tail must give the same
    damage rows, quarantine and samples as the pure path's reader."""
    rng = random.Random(11)
    corpus = rng.sample(_corpus(), 300)
    af, raw = sp.pack_address("192.0.2.1")
    records = [
        sp.encode_record(d, T0 + k * 10**8, af, raw, 6343, sp.PROTO_SFLOW5) for k, d in enumerate(corpus)
    ]
    blob = bytearray(sp.MAGIC)
    for k, record in enumerate(records):
        kind = k % 10
        if kind == 1:  # a flipped byte inside the datagram: the CRC no longer matches
            damaged = bytearray(record)
            damaged[rng.randrange(40, len(damaged) - 4)] ^= 0x20
            record = bytes(damaged)
        elif kind == 2:  # garbage before the record
            blob += rng.randbytes(rng.randrange(1, 50))
        elif kind == 3:  # an IPFIX-labelled record and an unknown-protocol one carrying sFlow bytes
            blob += sp.encode_record(corpus[k], T0 + k * 10**8, af, raw, 4739, sp.PROTO_IPFIX)
            blob += sp.encode_record(corpus[k], T0 + k * 10**8 + 1, af, raw, 9999, sp.PROTO_UNKNOWN)
        elif kind == 4:  # address family 5 / protocol 9 with a valid CRC: damaged for the reader
            body = bytearray(record[4:-4])
            body[8 if k % 20 == 4 else 27] = 5 if k % 20 == 4 else 9
            record = struct.pack(">I", len(body)) + bytes(body) + struct.pack(">I", zlib.crc32(body))
        blob += record
    blob += records[0][: len(records[0]) // 2]  # a torn tail
    spool = tmp_path / "20260101T0000-torn-1-000001.spool"
    spool.write_bytes(bytes(blob))
    _, files = run_both(monkeypatch, tmp_path, [spool])
    (f,) = files
    assert f["spool_damaged_records"] > 50 and f["flow_samples"] > 1000 and f["quarantined"] >= 25


def test_arrival_times_beyond_int64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spool record's arrival time is a u64; past 2**63 no lake timestamp holds it. On both paths
    that datagram (counter or flow samples alike) is quarantined, filed under the file's newest good
    arrival, and the rest of the file is stored."""
    from tests.test_sflow_decode import counter_sample, datagram, flow_sample, generic_counters, raw_header

    counters_only = datagram([counter_sample([generic_counters()])])
    with_flow = datagram([flow_sample([raw_header(bytes(60))])])
    af, raw = sp.pack_address("192.0.2.1")
    late = 2**63 + 5
    spool = tmp_path / "20260101T0000-late-1-000001.spool"
    spool.write_bytes(
        sp.MAGIC
        + sp.encode_record(counters_only, T0, af, raw, 6343, sp.PROTO_SFLOW5)
        + sp.encode_record(counters_only, late, af, raw, 6343, sp.PROTO_SFLOW5)
        + sp.encode_record(with_flow, late, af, raw, 6343, sp.PROTO_SFLOW5)
        + sp.encode_record(with_flow, T0 + 1, af, raw, 6343, sp.PROTO_SFLOW5)
    )
    tables, files = run_both(monkeypatch, tmp_path / "late", [spool])
    assert (files[0]["counter_samples"], files[0]["flow_samples"], files[0]["quarantined"]) == (1, 1, 2)
    quarantine = pa.concat_tables(t for name, t in tables.items() if name.startswith("quarantine/"))
    assert quarantine.num_rows == 2 and rows(tables, "flows") == 1
    assert all("arrival time 9223372036854775813 ns" in r for r in quarantine["reason"].to_pylist())
    # filed under the newest good arrival of the file (T0 + 1 ns; the lake keeps microseconds)
    assert quarantine["received_at"].cast(pa.int64()).to_pylist() == [(T0 + 1) // 1000] * 2


def test_a_value_the_lake_cannot_hold_is_quarantined_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sampled IPv4 record's 32-bit protocol field of 70,000 does not fit the int16 ``ip_protocol``
    column: both decoders reject the datagram (protocol bound 0..255), both paths quarantine it with
    that reason and store the datagrams around it (more cases: tests/test_sflow_limits.py)."""
    from tests.test_sflow_decode import datagram, flow_sample, sampled_ipv4

    bad = datagram([flow_sample([sampled_ipv4(100, 70_000, "192.0.2.7", "198.51.100.9", 1, 2, 0)])])
    good = datagram([flow_sample([sampled_ipv4(100, 6, "192.0.2.7", "198.51.100.9", 1, 2, 0)])])
    spool = _write_spool(
        tmp_path / "20260101T0000-range-1-000001.spool", iter([(good, "192.0.2.1"), (bad, "192.0.2.1")])
    )
    tables, files = run_both(monkeypatch, tmp_path, [spool])
    assert (files[0]["quarantined"], files[0]["flow_samples"]) == (1, 1)
    (reason,) = (
        r for name, t in tables.items() if name.startswith("quarantine/") for r in t["reason"].to_pylist()
    )
    assert "(sampled_ipv4): protocol 70000 is outside 0..255" in reason


# --- loss: runs against samples one by one -----------------------------------------------------

SOURCES = [(0, 1), (0, 2), (1, 7)]


@st.composite
def sflow_streams(draw: st.DrawFn) -> list[tuple[int, str, int, int, int, list[tuple[int, int, int]]]]:
    """Datagrams of two agents: arrival, agent, sub agent, sequence, uptime and sample sequences
    with in-order runs, gaps, repeats, late arrivals, restarts and uptime jumps back."""
    heads: dict[tuple[str, int, tuple[int, int]], int] = {}
    out = []
    received = T0
    uptime = {"a": 1_000_000, "b": 5_000_000}
    dseq = {("a", 0): 10, ("a", 1): 2**32 - 3, ("b", 0): 0}
    for _ in range(draw(st.integers(1, 60))):
        agent, sub = draw(st.sampled_from(list(dseq)))
        received += draw(st.sampled_from([1, 1_000_000, 60 * 10**9, 301 * 10**9]))
        step = draw(st.sampled_from([1, 1, 1, 2, 5, 0, -1, -70, 2**21]))
        dseq[(agent, sub)] = (dseq[(agent, sub)] + step) % (1 << 32)
        jump = draw(st.sampled_from([1000, 1000, 1000, -10_000, 0]))
        uptime[agent] = max(0, uptime[agent] + jump)
        samples: list[tuple[int, int, int]] = []
        for _ in range(draw(st.integers(0, 9))):
            source = draw(st.sampled_from(SOURCES))
            key = (agent, sub, source)
            move = draw(st.sampled_from([1, 1, 1, 1, 2, 0, -1, -3, -2000, 3 * 2**24]))
            heads[key] = (heads.get(key, draw(st.sampled_from([0, 2**32 - 2, 500]))) + move) % (1 << 32)
            samples.append((source[0], source[1], heads[key]))
        out.append((received, agent, sub, dseq[(agent, sub)], uptime[agent], samples))
    return out


def _runs(samples: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    runs: list[list[int]] = []
    for t, i, seq in samples:
        if runs and (runs[-1][0], runs[-1][1]) == (t, i) and (runs[-1][2] + runs[-1][3]) % (1 << 32) == seq:
            runs[-1][3] += 1
        else:
            runs.append([t, i, seq, 1])
    return [(a, b, c, d) for a, b, c, d in runs]


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sflow_streams(), st.integers(1, 3))
def test_loss_runs_equal_samples_one_by_one(
    stream: list[tuple[int, str, int, int, int, list[tuple[int, int, int]]]], files: int
) -> None:
    per_sample, per_run = LossTracker(), LossTracker()
    cut = [len(stream) * k // files for k in range(files + 1)]
    for k in range(files):  # the state carries over file boundaries; rows are per file
        per_sample.begin_file()
        per_run.begin_file()
        for received, agent, sub, seq, uptime, samples in stream[cut[k] : cut[k + 1]]:
            per_sample.sflow_datagram(received, agent, sub, seq, uptime, samples)
            per_run.sflow_datagram_runs(received, agent, sub, seq, uptime, _runs(samples))
        assert per_run.end_file() == per_sample.end_file()
        assert per_run.state() == per_sample.state()
        assert per_run.events == per_sample.events


# --- matrix: the C decoder's sums against samples one by one ---------------------------------

u32 = st.integers(0, 2**32 - 1)
lengths = st.integers(0, 2**24) | u32  # within the frame-length bound, or anywhere
MACS = [bytes.fromhex(m) for m in ("020000000001", "020000000002", "a4b1c2d3e4f5")]


@st.composite
def matrix_datagrams(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """Datagrams whose samples vary in everything the matrix key and sums read: tag or no tag,
    extended-switch VLAN (also above 4095), IP version, MACs (also none), rate and frame length
    (also at their bounds, 2**32 - 1 and 2**24, and frame lengths past theirs, which end the
    datagram's decode), arrival across 5-minute bins."""
    from tests.test_packet import eth, ipv4, ipv6, tcp, udp
    from tests.test_sflow_decode import datagram, extended_switch, flow_sample, raw_header, sampled_ethernet

    out = []
    received = T0
    for _ in range(draw(st.integers(1, 25))):
        received += draw(st.sampled_from([0, 10**9, 299 * 10**9]))
        samples: list[bytes] = []
        for _ in range(draw(st.integers(0, 5))):
            records = []
            kind = draw(st.sampled_from(["raw", "raw", "short", "sampled", "none"]))
            if kind in ("raw", "short"):
                tags = draw(st.sampled_from([(), ((0x8100, 10),), ((0x8100, 4095),)]))
                payload = draw(st.sampled_from([ipv4(6, tcp(1, 2)), ipv6(17, udp(3, 4))]))
                frame = eth(0x0800 if payload[0] >> 4 == 4 else 0x86DD, payload, tags=tags)
                frame = draw(st.sampled_from(MACS)) + draw(st.sampled_from(MACS)) + frame[12:]
                if kind == "short":
                    frame = frame[: draw(st.integers(0, 13))]
                length = draw(st.sampled_from([None, 64, 2**24, 2**32 - 1]) | lengths)
                records.append(raw_header(frame, frame_length=length))
            elif kind == "sampled":
                records.append(
                    sampled_ethernet(
                        draw(lengths), draw(st.sampled_from(MACS)), draw(st.sampled_from(MACS)), 0x0800
                    )
                )
            if draw(st.booleans()):
                records.append(extended_switch(draw(st.sampled_from([0, 10, 20, 4096, 2**32 - 1])), 0, 0, 0))
            rate = draw(st.sampled_from([1, 2048, 2**32 - 1]) | u32)
            samples.append(flow_sample(records, rate=rate, seq=len(samples)))
        agent = draw(st.sampled_from(["192.0.2.1", "2001:db8::1", "192.0.2.2"]))
        out.append((received, datagram(samples, agent=agent)))
    return out


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrix_datagrams(), st.integers(1, 40))
def test_matrix_sums_of_the_c_decoder_equal_samples_one_by_one(
    datagrams: list[tuple[int, bytes]], clear_every: int
) -> None:
    """``FlowBatch.groups`` (summed in C while decoding, kept across ``clear``) folded with
    ``add_groups`` gives the raw aggregate, sample count and rows that ``add_samples`` gives on the
    reference decoder's samples, datagram by datagram; only exchange agents' sums are folded."""
    from ingest.sflow.decode import SflowDatagram, SflowDecodeError
    from ingest.sflow.decode import decode_datagram as decode_py

    exchange = {"192.0.2.1", "2001:db8::1"}  # 192.0.2.2 is no exchange switch
    per_sample, from_c = MatrixAggregator(), MatrixAggregator()
    batch = fast.new_batch(from_c.interval_ns)
    for k, (received, data) in enumerate(datagrams):
        try:
            decoded: SflowDatagram | None = decode_py(data)
        except SflowDecodeError as exc:  # e.g. a frame length past 2**24: the samples before it count
            decoded = exc.partial
        if decoded is not None and decoded.agent_address in exchange:
            per_sample.add_samples(received, decoded.agent_address, decoded.flow_samples)
        batch.add(data, received)
        if k % clear_every == 0:
            batch.clear()
    agents = batch.agents()
    from_c.add_groups(
        (i, agents[a], v, p, src, dst, b, n, c)
        for i, a, v, p, src, dst, b, n, c in batch.groups()
        if agents[a] in exchange
    )
    assert from_c.raw == per_sample.raw
    assert from_c.samples == per_sample.samples
    enricher = Enricher()
    assert from_c.rows(enricher) == per_sample.rows(enricher)


# --- the environment switch -------------------------------------------------------------------


def test_pure_switch_reaches_the_package_decoder() -> None:
    code = (
        "import ingest.sflow as s, ingest.sflow.decode as d, ingest.sflow.fast as f; "
        "print(s.decode_datagram is d.decode_datagram, f.enabled())"
    )
    env = {**os.environ, fast.PURE_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["True", "False"], done.stderr
    env[fast.PURE_ENV] = ""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr
