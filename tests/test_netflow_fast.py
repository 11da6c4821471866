"""The column-wise NetFlow v9 / IPFIX path gives exactly what the reference row path gives.

``NetflowDecoder.decode_into`` + ``ColumnarBatch`` (numpy over the bytes of fixed-length data sets;
``ingest.netflow.columnar``) is what the pipeline runs by default; ``NetflowDecoder.decode`` and its
generated row converters (``ingest.netflow.layout``) are the reference, themselves checked against
tshark, pmacct and hand-built messages (tests/test_netflow_tshark.py, test_netflow_decode.py). Here
the two are run side by side and must agree on everything:

* decoder level: the table of every record (``Table.equals``: same rows, same order, same nulls),
  the error raised for each datagram (kind, message, offset), the statistics and the template
  cache (templates, exporter state, pending data) afterwards; on every IPFIX / NetFlow v9 capture
  of ../shared/realdata (one by one, and all in one stream with tables taken every few datagrams),
  on the pmacct nfprobe / softflowd recipe output, on mutated datagrams (truncated at every length,
  bit-flipped, overwritten) and on hypothesis-generated templates and records that exercise every
  column rule (time encodings, sampling from records / options / overrides, address families,
  reduced-size and out-of-range values, padding, variable-length fields);
* lake level: ``process_files`` with ``PEERPOOL_NETFLOW_PURE=1`` and without, every lake table
  part file by part file and the per-file summaries: the real captures; the recipe output as spool
  files interleaved with sFlow, with damaged and one-byte datagrams, data before its template and a
  small flow chunk size; the simulator's exchange with its configuration and an ASN database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import random
import struct
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingest.pipeline as pipeline
from ingest import spool as sp
from ingest.netflow import NetflowDecodeError, NetflowDecoder, TemplateCache, columnar
from ingest.netflow.columnar import RECORDS_SCHEMA, ColumnarBatch
from ingest.pcap import read_udp_datagrams
from ingest.pipeline import process_files
from peerpool.config.load import load_exchange

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
T0 = 1_767_225_600 * 10**9  # 2026-01-01 00:00 UTC
RECIPES = ["pmacct-nfprobe-v9", "pmacct-nfprobe-v10", "softflowd-v9", "softflowd-v10"]

Item = tuple[bytes, str, int]  # datagram, exporter, arrival ns


def _netflow(payload: bytes) -> bool:
    return payload[:2] in (b"\x00\x09", b"\x00\x0a")


def _captures() -> list[Path]:
    """Every shared capture holding NetFlow v9 or IPFIX, and the recipe captures."""
    found = [
        pcap
        for pcap in sorted((REALDATA / "pcaps").rglob("*.pcap"))
        if any(_netflow(d.payload) for d in read_udp_datagrams(pcap))
    ]
    return found + [REALDATA / "generated" / f"{name}.pcap" for name in RECIPES]


CAPTURES = _captures()


def _items(pcap: Path) -> list[Item]:
    return [(d.payload, d.src_ip, d.timestamp_ns) for d in read_udp_datagrams(pcap) if _netflow(d.payload)]


# --- decoder level ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    table: pa.Table
    errors: list[tuple[str, str, int] | None]  # per datagram
    decoder: NetflowDecoder


def _error(exc: NetflowDecodeError) -> tuple[str, str, int]:
    return (exc.kind, str(exc), exc.offset)


def reference(items: Iterable[Item], decoder: NetflowDecoder | None = None) -> Outcome:
    decoder = decoder or NetflowDecoder(TemplateCache())
    rows: list[dict[str, object]] = []
    errors: list[tuple[str, str, int] | None] = []
    for payload, exporter, received in items:
        try:
            rows.extend(decoder.decode(payload, exporter, received))
            errors.append(None)
        except NetflowDecodeError as exc:
            rows.extend(exc.records)  # what the pipeline keeps of a damaged datagram
            errors.append(_error(exc))
    return Outcome(pa.Table.from_pylist(rows, schema=RECORDS_SCHEMA), errors, decoder)


def columnwise(items: Iterable[Item], decoder: NetflowDecoder | None = None, every: int = 0) -> Outcome:
    """``decode_into``; with ``every``, the batch's table is taken every that many datagrams."""
    decoder = decoder or NetflowDecoder(TemplateCache())
    batch = ColumnarBatch(decoder.stats)
    tables: list[pa.Table] = []
    errors: list[tuple[str, str, int] | None] = []
    for k, (payload, exporter, received) in enumerate(items, 1):
        try:
            decoder.decode_into(batch, payload, exporter, received)
            errors.append(None)
        except NetflowDecodeError as exc:
            assert exc.records == []  # they are in the batch
            errors.append(_error(exc))
        if every and k % every == 0:
            tables.append(batch.table())
    tables.append(batch.table())
    assert len(batch) == 0
    return Outcome(pa.concat_tables(tables).combine_chunks(), errors, decoder)


def assert_same(ref: Outcome, col: Outcome) -> None:
    assert col.errors == ref.errors
    assert col.table.schema == ref.table.schema
    if not col.table.equals(ref.table):
        for name in RECORDS_SCHEMA.names:  # name the first column that differs
            assert col.table[name].to_pylist() == ref.table[name].to_pylist(), name
        raise AssertionError("tables differ")
    assert col.decoder.stats == ref.decoder.stats
    assert col.decoder.cache.to_json() == ref.decoder.cache.to_json()


def test_records_schema_is_the_pipelines() -> None:
    assert RECORDS_SCHEMA == pipeline._RECORDS_SCHEMA


@pytest.mark.parametrize("pcap", CAPTURES, ids=lambda p: str(p.relative_to(REALDATA)))
def test_every_capture(pcap: Path) -> None:
    items = _items(pcap)
    ref = reference(items)
    assert_same(ref, columnwise(items))


def test_all_captures_in_one_stream_with_frequent_tables() -> None:
    """One decoder for everything (exporters shared between captures re-define templates), the
    batch read out every 7 datagrams: pending data, template changes and sampling state cross
    the table boundaries."""
    items = [item for pcap in CAPTURES for item in _items(pcap)]
    ref = reference(items)
    assert_same(ref, columnwise(items, every=7))
    # the comparison covers what it should
    assert ref.table.num_rows > 12_000
    assert ref.decoder.stats.pending_released > 0 and ref.decoder.stats.sampling_updates > 0
    assert ref.decoder.stats.unknown_sampling > 0
    assert {"ipfix", "netflow9"} == set(ref.table["flow_protocol"].to_pylist())
    for column in ("flow_start", "src_mac", "vlan", "sampling_rate", "input_ifindex"):
        assert ref.table[column].null_count < ref.table.num_rows, column


def test_sampling_overrides_and_a_restart(tmp_path: Path) -> None:
    """Configured rates (used where nothing is announced), and a cache saved and loaded half-way."""
    items = [item for pcap in CAPTURES for item in _items(pcap)]
    overrides = {"192.0.2.1": 64, "238.0.0.1": 3, "127.0.0.1": 10}
    half = len(items) // 2
    outcomes = []
    for name, run in (("reference", reference), ("columnwise", columnwise)):
        first = NetflowDecoder(TemplateCache(), sampling_overrides=overrides)
        a = run(items[:half], first)
        first.cache.save(tmp_path / f"{name}.json")
        second = NetflowDecoder(TemplateCache.load(tmp_path / f"{name}.json"), sampling_overrides=overrides)
        b = run(items[half:], second)
        outcomes.append((a, b))
    (ref_a, ref_b), (col_a, col_b) = outcomes
    assert_same(ref_a, col_a)
    assert_same(ref_b, col_b)
    assert 64 in ref_a.table["sampling_rate"].to_pylist() + ref_b.table["sampling_rate"].to_pylist()


# --- mutations ---------------------------------------------------------------------------------------

FUZZ_CAPTURES = [
    "pcaps/akvorado/netflow/data+templates.pcap",
    "pcaps/akvorado/netflow-combined/v9-multiplesamplingrates.pcap",
    "pcaps/akvorado/netflow-combined/ipfix-ipfixprobe-biflow.pcap",
    "pcaps/akvorado/netflow/physicalinterfaces.pcap",
    "pcaps/logstash-codec-netflow/ipfix_netscaler_with_variable_length_fields.pcap",
    "pcaps/logstash-codec-netflow/netflow_9_ipt_netflow_reduced_size_encoding.pcap",
    "pcaps/logstash-codec-netflow/ipfix_yaf_basic_with_applabel.pcap",
    "pcaps/pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap",
    "pcaps/pmacct/112-IPFIXv10-CISCO-options-map-reassignment/traffic-00.pcap",
    "generated/softflowd-v10.pcap",
    "generated/pmacct-nfprobe-v9.pcap",
]


def _fuzz_corpus() -> list[Item]:
    return [item for capture in FUZZ_CAPTURES for item in _items(REALDATA / capture)[:6]]


def _primed_pair(corpus: list[Item]) -> list[NetflowDecoder]:
    """Two decoders that know every template of the corpus, so mutated data sets get decoded."""
    pair = []
    for _ in range(2):
        decoder = NetflowDecoder(TemplateCache(max_pending_total=64, max_templates=512))
        for payload, exporter, _received in corpus:
            with contextlib.suppress(NetflowDecodeError):
                decoder.decode(payload, exporter, 1)
        pair.append(decoder)
    return pair


def _compare_mutations(mutated: list[Item]) -> Outcome:
    corpus = _fuzz_corpus()
    ref_decoder, col_decoder = _primed_pair(corpus)
    ref = reference(mutated, ref_decoder)
    assert_same(ref, columnwise(mutated, col_decoder, every=50))
    return ref


@pytest.mark.timeout(300)
def test_truncations() -> None:
    mutated: list[Item] = []
    for payload, exporter, received in _fuzz_corpus():
        for cut in range(0, len(payload), 3):
            mutated.append((payload[:cut], exporter, received + cut))
            if payload[:2] == b"\x00\x0a" and cut >= 4:
                # an IPFIX header that agrees with the cut, so the sets themselves are cut short
                fixed = payload[:2] + struct.pack("!H", cut) + payload[4:cut]
                mutated.append((fixed, exporter, received + cut))
    ref = _compare_mutations(mutated)
    assert ref.table.num_rows > 1000 and sum(e is not None for e in ref.errors) > 1000


@pytest.mark.timeout(300)
def test_bit_flips_and_overwrites() -> None:
    rng = random.Random(20261121)
    mutated: list[Item] = []
    corpus = _fuzz_corpus()
    for round_ in range(25):
        for payload, exporter, received in corpus:
            data = bytearray(payload)
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(data))
                if rng.random() < 0.5:
                    data[position] ^= 1 << rng.randrange(8)
                else:
                    data[position] = rng.choice((0x00, 0xFF, 0x80, 0x01, rng.randrange(256)))
            mutated.append((bytes(data), exporter, received + round_))
    ref = _compare_mutations(mutated)
    assert ref.table.num_rows > 1000 and any(e is not None for e in ref.errors)


# --- generated templates and records ------------------------------------------------------------------

# (element, lengths): everything the converters read, in their usual and reduced / odd sizes
PALETTE: list[tuple[int, tuple[int, ...]]] = [
    (1, (1, 3, 4, 8)), (2, (2, 4, 5, 8)), (4, (1, 2)), (7, (2, 4)), (11, (2,)), (10, (2, 4, 8)),
    (14, (4,)), (252, (4,)), (253, (4,)), (8, (4,)), (12, (4,)), (27, (16,)), (28, (16,)),
    (60, (1,)), (56, (6,)), (80, (6,)), (57, (6,)), (81, (6,)), (58, (2,)), (243, (2, 4)),
    (256, (2,)), (23, (4,)), (24, (4,)), (21, (4, 8)), (22, (4,)), (150, (4, 8)), (151, (4,)),
    (152, (8, 6)), (153, (8,)), (154, (8,)), (155, (8,)), (156, (8,)), (157, (8,)), (158, (4, 8)),
    (159, (4,)), (160, (8,)), (34, (4, 8)), (50, (4,)), (48, (1, 2)), (302, (4,)), (305, (4, 8)),
    (306, (4,)), (309, (4,)), (310, (4, 8)), (5, (1,)), (82, (65535,)), (94, (0,)),
]  # fmt: skip


@st.composite
def template_and_records(draw: st.DrawFn) -> tuple[list[tuple[int, int]], bytes, int]:
    """A template of 1-12 distinct elements (some repeated), records of random bytes with values
    pushed to the edges, and trailing padding."""
    chosen = draw(st.lists(st.sampled_from(PALETTE), min_size=1, max_size=12, unique_by=lambda e: e[0]))
    fields = [(element, draw(st.sampled_from(lengths))) for element, lengths in chosen]
    if draw(st.booleans()):  # an element twice (the first usable one counts)
        fields.append(draw(st.sampled_from(fields)))
    records = b""
    for _ in range(draw(st.integers(1, 6))):
        for _element, length in fields:
            if length == 65535:
                size = draw(st.integers(0, 20))
                records += bytes([size]) + b"v" * size
            else:
                value = draw(
                    st.one_of(
                        st.integers(0, 2 ** (8 * length) - 1),
                        st.sampled_from([0, 1, 4, 6, 2 ** (8 * length) - 1, 2 ** (8 * length - 1)]),
                    )
                )
                records += (value % 2 ** (8 * length)).to_bytes(length, "big") if length else b""
    padding = draw(st.integers(0, 3))
    return fields, records + b"\x00" * padding, draw(st.integers(256, 260))


def _spec(fields: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("!HH", e, n) for e, n in fields)


def _v9(*flowsets: tuple[int, bytes], uptime: int, secs: int) -> bytes:
    body = b"".join(struct.pack("!HH", i, 4 + len(b)) + b for i, b in flowsets)
    return struct.pack("!HHIIII", 9, len(flowsets), uptime, secs, 11, 7) + body


def _ipfix(*sets: tuple[int, bytes], export: int) -> bytes:
    body = b"".join(struct.pack("!HH", i, 4 + len(b)) + b for i, b in sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export, 11, 7) + body


@st.composite
def streams(draw: st.DrawFn) -> list[Item]:
    """A few datagrams of one exporter: templates, options data with sampling rates (exporter-wide
    and per sampler / selector, and a system init time), data before and after its template."""
    version = draw(st.sampled_from([9, 10]))
    export = draw(st.sampled_from([1_700_000_000, 5, 4_294_967_295]))
    uptime = draw(st.sampled_from([0, 1_000, 4_294_967_295]))
    items: list[Item] = []
    exporter = "192.0.2.9"
    options_id = 300
    if draw(st.booleans()):
        # an options template and its data: a scope (v9 system / IPFIX selectorId), samplerId,
        # a rate (v9 samplingInterval / PSAMP samplingPacketInterval) and systemInitTimeMilliseconds;
        # records of 4 + 2 + 4 + 8 bytes
        if version == 9:
            scope, options = _spec([(1, 4)]), _spec([(48, 2), (34, 4), (160, 8)])
            template_set = (1, struct.pack("!HHH", options_id, len(scope), len(options)) + scope + options)
        else:
            template_set = (
                3,
                struct.pack("!HHH", options_id, 4, 1) + _spec([(302, 4), (48, 2), (305, 4), (160, 8)]),
            )
        data = b""
        for sampler in draw(st.lists(st.integers(0, 3), min_size=1, max_size=3)):
            rate = draw(st.sampled_from([0, 1, 10, 512, 2**32 - 1]))
            init = draw(st.sampled_from([0, 1_600_000_000_000, 2**64 - 1]))
            data += struct.pack("!IHIQ", sampler, sampler, rate, init)
        sets = [template_set, (options_id, data)]
        items.append((_datagram(version, sets, uptime, export), exporter, 10))
    for k in range(draw(st.integers(1, 3))):
        fields, records, template_id = draw(template_and_records())
        if version == 9:
            fields = [f for f in fields if f[1] != 65535 or draw(st.booleans())]
            if not fields:
                continue
        template: tuple[int, bytes] = (
            0 if version == 9 else 2,
            struct.pack("!HH", template_id, len(fields)) + _spec(fields),
        )
        data_set: tuple[int, bytes] = (template_id, records)
        order = draw(st.sampled_from(["together", "data first", "apart"]))
        at = 100 + k * 10
        plan: list[list[tuple[int, bytes]]]
        if order == "together":
            plan = [[template, data_set, data_set]]
        elif order == "data first":
            plan = [[data_set], [template], [data_set]]
        else:
            plan = [[template], [data_set]]
        for i, sets in enumerate(plan):
            items.append((_datagram(version, sets, uptime + at + i, export), exporter, at + i))
    return items


def _datagram(version: int, sets: list[tuple[int, bytes]], uptime: int, export: int) -> bytes:
    return _v9(*sets, uptime=uptime % 2**32, secs=export) if version == 9 else _ipfix(*sets, export=export)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), override=st.sampled_from([None, 7]))
def test_generated_templates_and_records(stream: list[Item], override: int | None) -> None:
    overrides = {"192.0.2.9": override} if override else None
    ref = reference(stream, NetflowDecoder(TemplateCache(), sampling_overrides=overrides))
    col = columnwise(stream, NetflowDecoder(TemplateCache(), sampling_overrides=overrides))
    assert_same(ref, col)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([9, 10]), bodies=st.lists(st.binary(max_size=400), min_size=1, max_size=4))
def test_random_bodies_after_a_valid_header(version: int, bodies: list[bytes]) -> None:
    """Garbage after a sound header, each body sent twice (the second time with whatever the first
    taught): the same errors, rows and state on both paths."""
    items: list[Item] = []
    for k, body in enumerate(bodies):
        if version == 9:
            header = struct.pack("!HHIIII", 9, 3, 1000, 1_700_000_000, k, 0)
        else:
            header = struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000, k, 0)
        items += [(header + body, "192.0.2.1", 2 * k), (header + body, "192.0.2.1", 2 * k + 1)]
    assert_same(reference(items), columnwise(items))


def test_huge_in_record_rates_and_counters_exactly() -> None:
    """Rates from PSAMP interval + space past 2**60 (Python-int arithmetic in the column path) and
    byte counts whose product with the rate passes the int64. Template 400's records reach 2**64,
    template 401's stay below 2**61 yet their sum's double passes 2**63 inside the rounding."""
    fields = [(1, 8), (2, 4), (305, 8), (306, 8)]
    templates = b"".join(struct.pack("!HH", t, len(fields)) + _spec(fields) for t in (400, 401))

    def records(values: list[tuple[int, int, int]]) -> bytes:
        return b"".join(
            struct.pack("!QIQQ", octets, 1, interval, space) for octets, interval, space in values
        )

    huge = records(
        [
            (10, 2**63 + 7, 2**32 - 1),  # rate (interval + space) / interval rounds to 1
            (2**40, 2**62, 2**32 - 1),
            (3, 0, 5),  # interval 0: no usable in-record rate, the fallback decides
            (2**62, 5, 5),  # rate 2; 2**62 x 2 passes the int64
            (1, 2**64 - 1, 0),  # rate 1
            (2**63, 4, 4),  # a byte count past the int64
        ]
    )
    large = records([(7, 2**61 - 1, 2**61 - 1), (7, 3, 0)])  # (2 x 2i + i) // 2i = 2; 3 // 3 = 1
    items: list[Item] = [
        (_ipfix((2, templates), (400, huge), (401, large), export=1_700_000_000), "192.0.2.3", 5)
    ]
    ref = reference(items)
    assert_same(ref, columnwise(items))
    assert ref.table["sampling_rate"].to_pylist() == [1, 1, 1, 2, 1, 2, 2, 1]
    assert ref.table["estimated_bytes"].to_pylist() == [10, 2**40, 3, None, 1, None, 14, 7]


def test_ipfix_uptime_times_with_and_without_a_system_init_time() -> None:
    """flowStart/EndSysUpTime in IPFIX need the exporter's systemInitTimeMilliseconds: from the
    record itself (when not 0), else from options data, else the time is unknown."""
    export = 1_700_000_000
    with_init = [(22, 4), (21, 4), (160, 8)]
    without = [(22, 4), (21, 4)]
    templates = (
        2,
        struct.pack("!HH", 400, 3) + _spec(with_init) + struct.pack("!HH", 401, 2) + _spec(without),
    )
    boot_ms = export * 1000 - 3_600_000  # booted an hour before the export
    data_400 = struct.pack("!IIQ", 1_000, 2_000, boot_ms) + struct.pack("!IIQ", 3_000, 3_500, 0)
    data_401 = struct.pack("!II", 10, 20)
    options_template = (3, struct.pack("!HHH", 300, 2, 1) + _spec([(302, 4), (160, 8)]))
    options_data = (300, struct.pack("!IQ", 1, boot_ms - 60_000))
    items: list[Item] = [
        (_ipfix(templates, (400, data_400), (401, data_401), export=export), "192.0.2.4", 1),
        (_ipfix(options_template, options_data, export=export), "192.0.2.4", 2),
        (_ipfix((400, data_400), (401, data_401), export=export), "192.0.2.4", 3),
    ]
    ref = reference(items)
    assert_same(ref, columnwise(items))
    starts = ref.table["flow_start"].to_pylist()
    ms = 1_000_000
    assert starts == [
        (boot_ms + 1_000) * ms,  # the record's own init time
        None,  # init 0 in the record, nothing learnt yet
        None,  # no init field, nothing learnt yet
        (boot_ms + 1_000) * ms,
        (boot_ms - 60_000 + 3_000) * ms,  # init 0 in the record: the one options data taught
        (boot_ms - 60_000 + 10) * ms,
    ]


# --- lake level --------------------------------------------------------------------------------------


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
    """process_files on the row path and on the column path: equal lakes and summaries."""
    results = {}
    for mode in ("rows", "columns"):
        monkeypatch.setenv(columnar.PURE_ENV, "1" if mode == "rows" else "0")
        summary = process_files(inputs, tmp / mode, retention_days=100_000, **options)
        files = [dataclasses.asdict(f) for f in summary.files]
        for f in files:
            f.pop("seconds")
        results[mode] = (lake_tables(tmp / mode), files)
    monkeypatch.delenv(columnar.PURE_ENV)
    rows, columns = results["rows"], results["columns"]
    assert columns[1] == rows[1]
    assert sorted(columns[0]) == sorted(rows[0])
    for name, table in rows[0].items():
        other = columns[0][name]
        assert other.schema == table.schema, name
        assert other.equals(table), f"{name}: the column path's rows differ from the row path's"
    # and so is the template cache the pipeline keeps between runs
    caches = [sorted((tmp / mode).rglob("templates.json")) for mode in ("rows", "columns")]
    assert len(caches[0]) == 1 and caches[0][0].read_bytes() == caches[1][0].read_bytes()
    return columns


def count(tables: dict[str, pa.Table], table: str) -> int:
    return sum(t.num_rows for name, t in tables.items() if name.startswith(table + "/"))


def test_lake_of_the_real_captures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # part files are named after the input's stem and pmacct's are all traffic-00: links with
    # names made of the whole relative path
    # (every capture: NetFlow v5 ones are quarantined, sFlow ones go their own way on both runs)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    links = []
    for pcap in sorted(set(CAPTURES) | set((REALDATA / "pcaps").rglob("*.pcap"))):
        link = inputs / str(pcap.relative_to(REALDATA)).replace("/", "_")
        link.symlink_to(pcap)
        links.append(link)
    tables, files = run_both(monkeypatch, tmp_path, links)
    assert count(tables, "flows") > 12_000 and count(tables, "quarantine") >= 6
    assert count(tables, "flow_loss") > 0
    assert sum(f["released_records"] for f in files) > 0


def _length_prefixed(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("!I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def _spool(path: Path, records: list[tuple[bytes, str, int, int]]) -> Path:
    """records: (datagram, exporter, arrival ns, spool protocol)."""
    with open(path, "wb") as fh:
        fh.write(sp.MAGIC)
        for data, exporter, arrival, protocol in records:
            af, raw = sp.pack_address(exporter)
            fh.write(sp.encode_record(data, arrival, af, raw, 40000, protocol))
    return path


def test_lake_of_recipe_spools_with_damage_and_small_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The four recipe outputs as spool files (split in two, so templates cross files), interleaved
    with pmacct sfprobe sFlow, with truncated and bit-flipped datagrams, one-byte datagrams, data
    sets moved before their templates and values the lake cannot hold; flows flushed every 300 rows
    (sFlow and NetFlow rows share the chunks, so their order depends on where chunks end)."""
    monkeypatch.setattr(pipeline, "FLOWS_CHUNK", 300)
    rng = random.Random(5)
    sflow = _length_prefixed(REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin")
    records: list[tuple[bytes, str, int, int]] = []
    for n, name in enumerate(RECIPES):
        protocol = sp.PROTO_NETFLOW9 if name.endswith("v9") else sp.PROTO_IPFIX
        exporter = f"192.0.2.{n + 1}"
        datagrams = _length_prefixed(REALDATA / "generated" / f"{name}.datagrams.bin")
        datagrams[0], datagrams[1] = datagrams[1], datagrams[0]  # data before its template
        for k, data in enumerate(datagrams):
            if k % 37 == 5:
                data = data[: rng.randrange(len(data))]
            elif k % 41 == 7:
                mutable = bytearray(data)
                mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
                data = bytes(mutable)
            records.append((data, exporter, T0 + (k * 4 + n) * 1_000_000, protocol))
    for k, data in enumerate(sflow):
        records.append((data, "192.0.2.50", T0 + k * 3_000_000 + 7, sp.PROTO_SFLOW5))
    records.append((b"\x00", "192.0.2.1", T0 + 11, sp.PROTO_IPFIX))
    records.append((b"", "192.0.2.1", T0 + 12, sp.PROTO_NETFLOW9))
    records.append((_out_of_range_message(), "192.0.2.77", T0 + 13, sp.PROTO_IPFIX))
    records.sort(key=lambda r: r[2])
    half = len(records) // 2
    first = _spool(tmp_path / "20260101T0000-mix-1-000001.spool", records[:half])
    second = _spool(tmp_path / "20260101T0000-mix-1-000002.spool", records[half:])
    tables, files = run_both(monkeypatch, tmp_path, [first, second])
    assert sum(f["flow_records"] for f in files) > 10_000 and sum(f["flow_samples"] for f in files) > 2 * 300
    assert sum(f["quarantined"] for f in files) > 30 and sum(f["partially_decoded"] for f in files) > 0
    assert sum(f["released_records"] for f in files) > 0 and sum(f["pending_sets"] for f in files) > 0
    flows = pa.concat_tables(t for name, t in tables.items() if name.startswith("flows/"))
    assert flows.filter(pc.equal(flows["exporter_address"], "192.0.2.77"))["ip_version"].to_pylist() == [None]


def _out_of_range_message() -> bytes:
    fields = [(8, 4), (12, 4), (60, 1), (1, 8)]
    template = struct.pack("!HH", 300, len(fields)) + _spec(fields)
    record = ipaddress.ip_address("10.0.0.1").packed + ipaddress.ip_address("10.0.0.2").packed
    record += bytes([200]) + struct.pack("!Q", 2**64 - 1)
    return _ipfix((2, template), (300, record), export=1_767_225_600)


def _peerpool(*args: str) -> None:
    exe = Path(sys.executable).parent / "peerpool"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"peerpool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def test_lake_of_the_simulated_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``peerpool simulate`` (border routers exporting IPFIX and NetFlow v9 next to the exchange's
    sFlow) with its configuration and an ASN database built from its RIB: members, ports and origin
    ASes are looked up for the NetFlow rows too."""
    sim = tmp_path / "sim"
    _peerpool(
        "simulate", "--members", "5", "--days", "1", "--out", str(sim), "--samples-per-member-day", "2000"
    )
    _peerpool("asn", "build", str(sim / "rib.mrt"), "--out", str(sim / "asn.dat"))
    exchange = load_exchange(sim / "exchange.toml")
    tables, files = run_both(
        monkeypatch, tmp_path / "lakes", [sim / "spool"], exchange=exchange, asn_db=sim / "asn.dat"
    )
    assert sum(f["ipfix_datagrams"] for f in files) > 0 and sum(f["netflow9_datagrams"] for f in files) > 0
    flows = pa.concat_tables(t for name, t in tables.items() if name.startswith("flows/"))
    netflow = flows.filter(pc.not_equal(flows["flow_protocol"], "sflow5"))
    assert netflow.num_rows > 500
    assert (
        netflow["src_asn"].null_count < netflow.num_rows or netflow["dst_asn"].null_count < netflow.num_rows
    )
