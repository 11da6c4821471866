"""Spool and pcap files to the lake: decode, enrich, aggregate, account for loss, write parts.

``process_files`` is the one code path for the ``peerpool decode`` command and the Airflow task.

Per input file, in order:

1. Read its datagrams (spool records with their protocol, or UDP datagrams of a pcap: port
   6343/16343 is sFlow, anything else is told apart by its version field).
2. Decode: sFlow with ``ingest.sflow``; NetFlow v9 / IPFIX with ``ingest.netflow`` and the
   template cache persisted in ``LAKE/_state/templates.json`` (sampling overrides from the
   configuration's border routers). A datagram that fails to decode goes to ``quarantine``
   with the reason and the byte offset, is counted, and the rest of the file goes on (the sound
   part of a damaged datagram, which the decoders hand back, is kept).
3. sFlow flow samples from exchange switches are aggregated into the member matrix as they are
   decoded (``ingest.matrix``); every flow sample/record becomes a ``flows`` row, enriched with
   members, ports and origin ASes (``ingest.enrich``). Counter samples become ``port_counters``.
   Sequence numbers feed ``flow_loss`` (``ingest.loss``).
4. Write each table's part files, named by the input's stem (re-processing replaces them),
   delete parts an earlier processing of the same input wrote and this one did not, then
   record the input in the ledger together with the carried state, in one transaction.

After all inputs, raw ``flows`` partitions older than ``retention_days`` before the newest data
ever processed are removed (the matrix and the other tables are kept).

Two paths for sFlow, one result. When the C decoder is built (``ingest.sflow.fast``; switched off
with ``PEERPOOL_SFLOW_PURE=1``) spool files are read and their sFlow datagrams decoded in C
(``FlowBatch.add_spool``), straight into fixed-size records from which the flows table's columns are
built in one pass, while the matrix's raw key is summed in C; only loss accounting and counter
samples stay per datagram in Python. Records the C side does not take (another protocol, a datagram
with an error, damaged bytes) go through the spool reader, and pcap datagrams come one by one; their
sFlow datagrams go into the same batch with ``FlowBatch.add``. Without the C decoder the pure path
decodes to ``FlowSample`` objects. tests/test_pipeline_fast.py checks that both write the same lake.

Two paths for NetFlow v9 / IPFIX, one result. By default (``ingest.netflow.columnar``; switched off
with ``PEERPOOL_NETFLOW_PURE=1``) the decoder hands the bytes of fixed-length data sets to the file's
``ColumnarBatch``, which reads them with numpy at each flush; variable-length sets keep the reference
row dicts in their place. Chunk boundaries and row order are those of the row path;
tests/test_netflow_fast.py checks that both write the same lake.
"""

from __future__ import annotations

import datetime as dt
import itertools
import mmap
import os
import re
import shutil
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest import spool as sp
from ingest.enrich import AsnLookup, Enricher
from ingest.loss import LossTracker
from ingest.matrix import MatrixAggregator
from ingest.netflow import NetflowDecodeError, NetflowDecoder, TemplateCache, columnar
from ingest.pcap import PcapStats, read_udp_datagrams
from ingest.sflow import fast
from ingest.sflow.decode import CounterSample, FlowSample, SflowDatagram, SflowDecodeError, decode_datagram
from ingest.sflow.limits import split_int64_sums
from ingest.state import LakeState, LedgerEntry, sha256_file
from peerpool import lake as lk
from peerpool.config.model import Exchange
from peerpool.errors import DecodeError, InputError, LakeError

if TYPE_CHECKING:
    from ingest.sflow._fastsflow import FlowBatch

SFLOW_PORTS = frozenset({6343, 16343})
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
FLOWS_CHUNK = 250_000  # flow rows held as Python objects before they become an Arrow chunk
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS

_F = FlowSample._fields
_I = {name: i for i, name in enumerate(_F)}
_ENRICHED = lk.FLOWS_ENRICHMENT
_RECORD_TIMES = tuple(f.name for f in lk.FLOWS if f.type == lk.TS)
_RECORDS_SCHEMA = lk.FLOWS_DECODED
_SAMPLE_SEQ = itemgetter(_I["source_id_type"], _I["source_id_index"], _I["sequence_number"])


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    path: Path
    kind: str  # spool | pcap

    @property
    def part_key(self) -> str:
        return part_key_for(self.path)


def part_key_for(path: Path) -> str:
    """The lake part key of an input: its file stem, with characters outside [A-Za-z0-9._=-] as '_'."""
    return _KEY_UNSAFE.sub("_", path.stem)


def sniff_kind(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file; give spool files, folders of spool files or pcap files"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    if head == sp.MAGIC:
        return "spool"
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        raise InputError(
            f"{path}: is pcapng; convert it with 'editcap -F pcap {path} {path.with_suffix('.pcap')}'"
        )
    if path.suffix == sp.OPEN_SUFFIX:
        raise InputError(
            f"{path}: is a spool file still being written (.open); decode the closed .spool files"
        )
    raise InputError(
        f"{path}: neither a spool file nor a pcap file; give .spool files from 'peerpool collect' "
        "or libpcap captures of the flow datagrams"
    )


def expand_inputs(inputs: Sequence[Path | str]) -> tuple[list[InputFile], list[Path]]:
    """Files to process (folders give their ``.spool`` files, sorted by name) and ``.open`` files skipped."""
    files: list[InputFile] = []
    still_open: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.rglob("*" + sp.SPOOL_SUFFIX), key=lambda p: (p.name, str(p)))
            still_open.extend(sorted(path.rglob("*" + sp.OPEN_SUFFIX)))
            for f in found:
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    files.append(InputFile(f, "spool"))
            continue
        if not path.exists():
            raise InputError(
                f"{path}: no such file or folder; give spool files, folders of spool files or pcap files"
            )
        kind = sniff_kind(path)
        if path.resolve() not in seen:
            seen.add(path.resolve())
            files.append(InputFile(path, kind))
    return files, still_open


@dataclass(frozen=True, slots=True)
class Datagram:
    received_ns: int
    source_ip: str
    source_port: int
    protocol: int
    data: bytes
    file_offset: int  # spool: offset of the record; pcap: -1


def classify(data: bytes, dst_port: int) -> int:
    """Protocol of a pcap datagram: sFlow by its port, otherwise by the version field."""
    if dst_port in SFLOW_PORTS:
        return sp.PROTO_SFLOW5
    if len(data) >= 4 and data[:4] == b"\x00\x00\x00\x05":
        return sp.PROTO_SFLOW5
    if len(data) >= 2:
        version = (data[0] << 8) | data[1]
        if version == 10:
            return sp.PROTO_IPFIX
        if version in (1, 5, 7, 8, 9):
            return sp.PROTO_NETFLOW9  # the NetFlow decoder says what it cannot decode
    return sp.PROTO_UNKNOWN


# --- per-file accumulation ------------------------------------------------------------------


@dataclass
class FileSummary:
    path: str
    kind: str
    part_key: str
    status: str = "processed"  # processed | unchanged (skipped) | failed
    datagrams: int = 0
    sflow_datagrams: int = 0
    ipfix_datagrams: int = 0
    netflow9_datagrams: int = 0
    flow_samples: int = 0
    counter_samples: int = 0
    flow_records: int = 0  # IPFIX / NetFlow v9 rows
    options_records: int = 0  # IPFIX / NetFlow v9 options data records (exporter state, no rows)
    released_records: int = 0  # rows of earlier datagrams decoded when their template arrived
    pending_sets: int = 0  # data sets held for a template that had not arrived yet
    quarantined: int = 0
    partially_decoded: int = 0
    values_out_of_range: int = 0  # IPFIX / NetFlow v9 fields the lake cannot hold, stored as null
    ignored: int = 0  # pcap datagrams that are no flow protocol
    matrix_samples: int = 0
    unknown_mac_samples: int = 0
    spool_damaged_records: int = 0
    spool_damaged_bytes: int = 0
    datagrams_missing: int = 0
    samples_missing: int = 0
    loss_restarts: int = 0
    parts_written: int = 0
    parts_removed: int = 0
    newest_ns: int = 0
    seconds: float = 0.0


class _FlowsBuffer:
    """Flow rows of one file: sFlow samples kept as decoded tuples, NetFlow rows as dicts,
    turned into enriched Arrow chunks every ``FLOWS_CHUNK`` rows.

    With the C decoder (``batch`` given) the sFlow samples are instead decoded straight into the
    batch's array of records; each flush turns them into the same Arrow chunk column by column, and
    ``finish`` folds the matrix sums the batch made while decoding into ``matrix`` (the pure path
    adds samples to it per datagram). Chunk boundaries are the same on both paths, so the rows come
    out in the same order."""

    def __init__(
        self,
        enricher: Enricher,
        source_file: str,
        batch: FlowBatch | None = None,
        matrix: MatrixAggregator | None = None,
    ) -> None:
        self.enricher = enricher
        self.source_file = source_file
        self.samples: list[FlowSample] = []
        self.sample_ctx: list[tuple[int, int, str, int]] = []  # (count, received_ns, agent, sub agent)
        self.records: list[dict[str, object]] = []
        self.chunks: list[pa.Table] = []
        self.batch = batch
        self.matrix = matrix
        # NetFlow / IPFIX decoded column-wise (NetflowDecoder.decode_into); None: rows in ``records``
        self.netflow: columnar.ColumnarBatch | None = None

    def batch_added(self) -> None:
        """Samples went into the batch (``FlowBatch.add`` / ``add_spool``): flush it when full, as
        ``add_sflow`` does."""
        assert self.batch is not None
        if len(self.batch) >= FLOWS_CHUNK:
            self._flush()

    def add_sflow(self, received_ns: int, agent: str, sub_agent: int, samples: list[FlowSample]) -> None:
        self.samples.extend(samples)
        self.sample_ctx.append((len(samples), received_ns, agent, sub_agent))
        if len(self.samples) >= FLOWS_CHUNK:
            self._flush()

    def netflow_added(self) -> None:
        """Records went into the NetFlow batch: flush it when full, as ``add_records`` does."""
        assert self.netflow is not None
        if len(self.netflow) >= FLOWS_CHUNK:
            self._flush()

    def add_records(self, rows: list[dict[str, object]]) -> None:
        self.records.extend(rows)
        if len(self.records) >= FLOWS_CHUNK:
            self._flush()

    def finish(self) -> None:
        """After the file's last datagram: turn everything held into chunks and, batched, fold the
        matrix sums the batch made of the exchange switches' samples into ``matrix`` (the pure path
        adds them per datagram)."""
        self._flush()
        if self.batch is not None and self.matrix is not None:
            agents = self.batch.agents()
            exchange = [self.enricher.is_exchange_agent(agent) for agent in agents]
            self.matrix.add_groups(
                (i, agents[a], v, p, src, dst, est_bytes, est_packets, count)
                for i, a, v, p, src, dst, est_bytes, est_packets, count in self.batch.groups()
                if exchange[a]
            )

    def table(self) -> pa.Table | None:
        self._flush()
        if not self.chunks:
            return None
        return pa.concat_tables(self.chunks) if len(self.chunks) > 1 else self.chunks[0]

    def _flush(self) -> None:
        if self.samples:
            self.chunks.append(self._enrich(self._sflow_table()))
            self.samples, self.sample_ctx = [], []
        if self.batch is not None and len(self.batch):
            self.chunks.append(self._batch_chunk())
            self.batch.clear()
        if self.records:
            self.chunks.append(self._enrich(self._records_table()))
            self.records = []
        if self.netflow is not None and len(self.netflow):
            # the batch's table is the one from_pylist makes of the same rows, in the same order
            self.chunks.append(self._enrich(_record_times(self.netflow.table(_RECORDS_SCHEMA))))

    def _sflow_table(self) -> pa.Table:
        samples = self.samples
        n = len(samples)
        ctx = self.sample_ctx
        counts = np.fromiter((c[0] for c in ctx), dtype=np.int64, count=len(ctx))
        received = np.repeat(np.fromiter((c[1] for c in ctx), dtype=np.int64, count=len(ctx)), counts)
        agents = list(itertools.chain.from_iterable(itertools.repeat(c[2], c[0]) for c in ctx))
        subs = np.repeat(np.fromiter((c[3] for c in ctx), dtype=np.int64, count=len(ctx)), counts)

        def col(name: str, typ: pa.DataType) -> pa.Array:
            # one field of every sample; map + itemgetter is the cheapest way out of the tuples
            return pa.array(list(map(itemgetter(_I[name]), samples)), type=typ)

        rate = col("sampling_rate", pa.int64())
        length = col("frame_length", pa.int64())
        vlan = pc.coalesce(col("vlan", pa.int64()), col("src_vlan", pa.int64()))
        vlan = pc.if_else(pc.less_equal(vlan, 4095), vlan, pa.scalar(None, pa.int64())).cast(pa.int32())
        nulls_ts = pa.nulls(n, lk.TS)
        return pa.table(
            {
                "received_at": pa.array(received // 1000, type=lk.TS),
                "flow_protocol": pa.array(["sflow5"] * n, pa.string()),
                "exporter_address": pa.array(agents, pa.string()),
                "observation_domain": pa.array(subs, pa.int64()),
                "sequence_number": col("sequence_number", pa.int64()),
                "sampling_rate": rate,
                "sample_pool": col("sample_pool", pa.int64()),
                "drops": col("drops", pa.int64()),
                "input_ifindex": col("input_ifindex", pa.int64()),
                "output_ifindex": col("output_ifindex", pa.int64()),
                "src_mac": col("src_mac", pa.string()),
                "dst_mac": col("dst_mac", pa.string()),
                "vlan": vlan,
                "ethertype": col("ethertype", pa.int32()),
                "ip_version": col("ip_version", pa.int8()),
                "src_ip": col("src_ip", pa.string()),
                "dst_ip": col("dst_ip", pa.string()),
                "ip_protocol": col("ip_protocol", pa.int16()),
                "src_port": col("src_port", pa.int32()),
                "dst_port": col("dst_port", pa.int32()),
                "bytes": length,
                "packets": pa.array(np.ones(n, dtype=np.int64)),
                "estimated_bytes": pc.multiply(length, rate),
                "estimated_packets": rate,
                "flow_start": nulls_ts,
                "flow_end": nulls_ts,
            }
        )

    def _batch_chunk(self) -> pa.Table:
        """The batch as an enriched flows chunk (its columns built in C, ``fast.batch_columns``)."""
        batch = self.batch
        assert batch is not None
        cols = fast.batch_columns(batch)
        agents = batch.agents()
        ints = cols.ints
        received = ints["received_ns"]
        columns = cols.lake
        if columns is None:
            # a value the lake cannot hold: the pure path raises there; take it, to fail as it does
            self.samples = batch.samples()  # type: ignore[assignment]
            self.sample_ctx = [
                (1, int(r), agents[int(a)], int(sub))
                for r, a, sub in zip(received, ints["agent_code"], ints["sub_agent_id"], strict=True)
            ]
            table = self._enrich(self._sflow_table())
            self.samples, self.sample_ctx = [], []
            return table
        n = len(batch)
        rate = columns["sampling_rate"]
        nulls_ts = pa.nulls(n, lk.TS)
        text = cols.text
        table = pa.table(
            {
                "received_at": pa.array(received // 1000, type=lk.TS),
                "flow_protocol": pa.repeat(pa.scalar("sflow5", pa.string()), n),
                "exporter_address": pa.array(agents, pa.string()).take(pa.array(ints["agent_code"])),
                "observation_domain": pa.array(ints["sub_agent_id"], pa.int64()),
                "sequence_number": columns["sequence_number"],
                "sampling_rate": rate,
                "sample_pool": columns["sample_pool"],
                "drops": columns["drops"],
                "input_ifindex": columns["input_ifindex"],
                "output_ifindex": columns["output_ifindex"],
                "src_mac": text["src_mac"],
                "dst_mac": text["dst_mac"],
                "vlan": columns["vlan"],
                "ethertype": columns["ethertype"],
                "ip_version": columns["ip_version"],
                "src_ip": text["src_ip"],
                "dst_ip": text["dst_ip"],
                "ip_protocol": columns["ip_protocol"],
                "src_port": columns["src_port"],
                "dst_port": columns["dst_port"],
                "bytes": columns["bytes"],
                "packets": pa.array(np.ones(n, dtype=np.int64)),
                "estimated_bytes": columns["estimated_bytes"],
                "estimated_packets": rate,
                "flow_start": nulls_ts,
                "flow_end": nulls_ts,
            }
        )
        return self._finish(table, self._member_columns_numeric(ints))

    def _member_columns_numeric(self, ints: dict[str, np.ndarray]) -> dict[str, pa.Array]:
        """Members and ports by (MAC, lake VLAN) as integers, looked up once per distinct pair (hash
        dictionary encoding): the lookups ``_enrich`` makes from the text,
        ``port_for_mac(mac or None, vlan or None)``."""
        vlan = ints["vlan"]
        lake_vlan = np.where(vlan <= 4095, vlan, -1)  # the lake's vlan (valid_vlan), -1 = None
        columns: dict[str, pa.Array] = {}
        for side in ("src", "dst"):
            # MAC (48 bits, -1 = None) and lake VLAN + 1 (0..4096) in one int64
            key = ints[f"{side}_mac"] * 8192 + (lake_vlan + 1)
            encoded = pc.dictionary_encode(pa.array(key))
            members, ports = [], []
            for value in encoded.dictionary.to_pylist():
                mac_value, vlan_value = divmod(value, 8192)
                mac_text = None if mac_value < 0 else mac_value.to_bytes(6, "big").hex(":")
                port = self.enricher.port_for_mac(mac_text, vlan_value - 1 if vlan_value else None)
                members.append(port.member if port is not None else None)
                ports.append(port.id if port is not None else None)
            columns[f"{side}_member_id"] = pa.array(members, pa.string()).take(encoded.indices)
            columns[f"{side}_port_id"] = pa.array(ports, pa.string()).take(encoded.indices)
        return columns

    def _records_table(self) -> pa.Table:
        """NetFlow / IPFIX row dicts -> Arrow; times arrive as ns integers and become us timestamps."""
        return _record_times(pa.Table.from_pylist(self.records, schema=_RECORDS_SCHEMA))

    def _enrich(self, table: pa.Table) -> pa.Table:
        """Members, ports and origin ASes, looked up once per distinct value (dictionary encoding)."""
        vlan_text = pc.fill_null(pc.cast(table.column("vlan"), pa.string()), "")
        columns: dict[str, pa.Array] = {}
        for side in ("src", "dst"):
            mac = table.column(f"{side}_mac")
            key = pc.binary_join_element_wise(pc.fill_null(mac, ""), vlan_text, "|")
            encoded = key.combine_chunks().dictionary_encode() if isinstance(key, pa.ChunkedArray) else key
            if not isinstance(encoded, pa.DictionaryArray):
                encoded = encoded.dictionary_encode()
            members, ports = [], []
            for text in encoded.dictionary.to_pylist():
                mac_text, _, vlan_value = text.rpartition("|")
                port = self.enricher.port_for_mac(mac_text or None, int(vlan_value) if vlan_value else None)
                members.append(port.member if port is not None else None)
                ports.append(port.id if port is not None else None)
            columns[f"{side}_member_id"] = pa.array(members, pa.string()).take(encoded.indices)
            columns[f"{side}_port_id"] = pa.array(ports, pa.string()).take(encoded.indices)
        return self._finish(table, columns)

    def _finish(self, table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
        """Add the origin ASes and the source file to a table with its member columns."""
        n = table.num_rows
        asn = self.enricher.asn
        for side in ("src", "dst"):
            if asn is None:
                columns[f"{side}_asn"] = pa.nulls(n, pa.int64())
                continue
            ips = table.column(f"{side}_ip").combine_chunks().dictionary_encode()
            origins = pa.array([asn.lookup(ip) for ip in ips.dictionary.to_pylist()], pa.int64())
            columns[f"{side}_asn"] = origins.take(ips.indices)
        for name, values in columns.items():
            table = table.append_column(name, values)
        table = table.append_column("source_file", pa.repeat(pa.scalar(self.source_file, pa.string()), n))
        return table.select(lk.FLOWS.names).cast(lk.FLOWS)


@dataclass
class _FileWork:
    """Everything one input produces before it is written."""

    summary: FileSummary
    flows: _FlowsBuffer
    matrix: MatrixAggregator
    counters: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    newest_ns: int = 0  # arrival of the newest datagram read by FlowBatch.add_spool


# --- the pipeline ---------------------------------------------------------------------------


@dataclass
class PipelineSummary:
    files: list[FileSummary] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    retention_removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files if f.status == "processed")

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [asdict(f) for f in self.files],
            "still_open": self.still_open,
            "retention_removed": self.retention_removed,
            "warnings": self.warnings,
        }


class Pipeline:
    """State shared by the files of one run: decoders, template cache, loss tracker, enrichment."""

    def __init__(self, lake: Path, state: LakeState, enricher: Enricher) -> None:
        self.lake = lake
        self.state = state
        self.enricher = enricher
        templates = state.templates_path
        self.cache = TemplateCache.load(templates) if templates.exists() else TemplateCache()
        self.netflow = NetflowDecoder(self.cache, enricher.sampling_overrides)
        self.loss = LossTracker(state.load_loss())
        self.newest_ns = state.newest_ns()
        self.fast = fast.enabled()  # the C sFlow decoder and the columnar path (same lake, faster)
        self.netflow_columnar = columnar.enabled()  # NetFlow / IPFIX decoded column-wise (same lake)

    # --- reading --------------------------------------------------------------------------

    def _datagrams(self, item: InputFile, work: _FileWork) -> Iterator[Datagram]:
        if item.kind == "spool":
            stats = sp.SpoolReadStats()
            records = (
                self._spool_batched(item.path, stats, work) if self.fast else sp.read_spool(item.path, stats)
            )
            for record in records:
                yield Datagram(
                    record.arrival_ns,
                    record.source_ip,
                    record.source_port,
                    record.protocol,
                    record.datagram,
                    record.offset,
                )
            damages = [*stats.damaged, *([stats.torn_tail] if stats.torn_tail else [])]
            work.summary.spool_damaged_records = len(damages)
            work.summary.spool_damaged_bytes = stats.damaged_bytes
            if damages:
                with open(item.path, "rb") as fh:
                    for damage in damages:
                        fh.seek(damage.offset)
                        raw = fh.read(min(damage.length, sp.MAX_BODY))
                        work.quarantine.append(
                            {
                                "received_at": None,
                                "flow_protocol": "spool",
                                "exporter_address": None,
                                "reason": f"damaged spool record at byte {damage.offset} "
                                f"({damage.length} bytes): {damage.reason}",
                                "offset": damage.offset,
                                "datagram": raw,
                            }
                        )
        else:
            pstats = PcapStats()
            for d in read_udp_datagrams(item.path, pstats):
                yield Datagram(
                    d.timestamp_ns, d.src_ip, d.src_port, classify(d.payload, d.dst_port), d.payload, -1
                )

    def _spool_batched(
        self, path: Path, stats: sp.SpoolReadStats, work: _FileWork
    ) -> Iterator[sp.SpoolRecord]:
        """``sp.read_spool`` for the C path: runs of whole spool records holding sFlow datagrams that
        decode without error are read and decoded by ``FlowBatch.add_spool`` (the same record checks
        as the spool reader) and accounted by ``_sflow_spooled``; every other record (another
        protocol, a datagram with an error) and any damaged stretch go through the spool reader
        itself and are yielded to the usual per-datagram path, in file order."""
        sp.check_spool_file(path)
        batch = work.flows.batch
        assert batch is not None
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= len(sp.MAGIC):
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                pos = len(sp.MAGIC)
                while pos < size:
                    before = len(batch)
                    pos, why, datagrams = batch.add_spool(buf, pos, size, FLOWS_CHUNK)
                    if datagrams:
                        self._sflow_spooled(work, datagrams, len(batch) - before)
                    if why == _SPOOL_FULL:
                        work.flows.batch_added()
                    elif why == _SPOOL_HAND_OVER:
                        record = next(sp._iter_records(buf, pos, size, stats), None)
                        if record is None:
                            return
                        yield record
                        pos = record.offset + sp.RECORD_OVERHEAD + len(record.datagram)

    def _sflow_spooled(
        self,
        work: _FileWork,
        datagrams: list[
            tuple[int, str, int, int, int, list[tuple[int, int, int, int]], list[CounterSample] | None]
        ],
        samples: int,
    ) -> None:
        """What ``_sflow_batched`` does per datagram, for datagrams ``add_spool`` decoded."""
        s = work.summary
        s.datagrams += len(datagrams)
        s.sflow_datagrams += len(datagrams)
        s.flow_samples += samples
        newest = work.newest_ns
        observe = self.loss.sflow_datagram_runs
        for received, agent, sub_agent, sequence, uptime_ms, runs, counter_samples in datagrams:
            if received > newest:
                newest = received
            observe(received, agent, sub_agent, sequence, uptime_ms, runs)
            if counter_samples:
                s.counter_samples += len(counter_samples)
                for cs in counter_samples:
                    row = self._counter_row(received, agent, uptime_ms, cs)
                    if row is not None:
                        work.counters.append(row)
        work.newest_ns = newest

    # --- decoding -------------------------------------------------------------------------

    def _quarantine(
        self, work: _FileWork, d: Datagram, protocol: str, error: DecodeError, *, timed: bool = True
    ) -> None:
        """``timed=False``: file the row under the file's newest arrival (set in ``process``)."""
        where = f"spool record at byte {d.file_offset}: " if d.file_offset >= 0 else ""
        work.quarantine.append(
            {
                "received_at": d.received_ns if timed else None,
                "flow_protocol": protocol,
                "exporter_address": d.source_ip,
                "reason": where + str(error),
                "offset": error.offset,
                "datagram": d.data,
            }
        )
        work.summary.quarantined += 1

    def _quarantine_arrival(self, work: _FileWork, d: Datagram) -> None:
        """An arrival time no lake timestamp can hold (before 1970 or past 2262: the spool record is
        damaged or not written by ``peerpool collect``): the datagram is quarantined whole, filed
        under the file's newest arrival like damaged spool bytes, and the rest of the file goes on."""
        error = DecodeError(
            f"arrival time {d.received_ns} ns is outside what the lake stores (0..2**63-1 ns since 1970); "
            "the spool record is damaged or was not written by 'peerpool collect'",
            offset=0,
        )
        protocol = {sp.PROTO_SFLOW5: "sflow5", sp.PROTO_IPFIX: "ipfix", sp.PROTO_NETFLOW9: "netflow9"}
        self._quarantine(work, d, protocol.get(d.protocol, "unknown"), error, timed=False)

    def _sflow(self, work: _FileWork, d: Datagram) -> None:
        s = work.summary
        try:
            dg: SflowDatagram | None = decode_datagram(d.data)
        except SflowDecodeError as exc:
            self._quarantine(work, d, "sflow5", exc)
            dg = exc.partial
            if dg is None:
                return
            s.partially_decoded += 1
        assert dg is not None
        s.sflow_datagrams += 1
        agent = dg.agent_address
        samples = dg.flow_samples
        received = d.received_ns
        if samples:
            s.flow_samples += len(samples)
            work.flows.add_sflow(received, agent, dg.sub_agent_id, samples)
            if self.enricher.is_exchange_agent(agent):
                work.matrix.add_samples(received, agent, samples)
        self.loss.sflow_datagram(
            received,
            agent,
            dg.sub_agent_id,
            dg.sequence_number,
            dg.uptime_ms,
            list(map(_SAMPLE_SEQ, samples)),
        )
        if dg.counter_samples:
            s.counter_samples += len(dg.counter_samples)
            for cs in dg.counter_samples:
                row = self._counter_row(received, agent, dg.uptime_ms, cs)
                if row is not None:
                    work.counters.append(row)

    def _sflow_batched(self, work: _FileWork, d: Datagram) -> None:
        """``_sflow`` on the C decoder: the samples go straight into the file's batch (matrix and
        flow rows are made from it at each flush), the rest is the same per datagram."""
        s = work.summary
        flows = work.flows
        assert flows.batch is not None
        received = d.received_ns
        # ``process`` quarantined arrival times outside 0..2**63-1 before they got here
        added, agent, sub_agent, sequence, uptime_ms, runs, counter_samples, error = flows.batch.add(
            d.data, received
        )
        if error is not None:
            self._quarantine(work, d, "sflow5", error)
            if agent is None:
                return
            s.partially_decoded += 1
        assert agent is not None and runs is not None
        s.sflow_datagrams += 1
        if added:
            s.flow_samples += added
            flows.batch_added()
        self.loss.sflow_datagram_runs(received, agent, sub_agent, sequence, uptime_ms, runs)
        if counter_samples:
            s.counter_samples += len(counter_samples)
            for cs in counter_samples:
                row = self._counter_row(received, agent, uptime_ms, cs)
                if row is not None:
                    work.counters.append(row)

    def _counter_row(
        self, received_ns: int, agent: str, uptime_ms: int, cs: CounterSample
    ) -> dict[str, Any] | None:
        g = cs.generic
        if g is None:
            return None  # only interface counters (record 1) are port counters
        return {
            "polled_at": received_ns,
            "source": "sflow",
            "device_id": self.enricher.device_id(agent),
            "device_address": agent,
            "ifindex": g.if_index,
            "port_id": self.enricher.port_id_for_ifindex(agent, g.if_index),
            "ok": True,
            "error": None,
            "sys_uptime_cs": uptime_ms // 10,
            "counter_bits": 64,
            "in_octets": g.in_octets,
            "out_octets": g.out_octets,
            "in_ucast_pkts": g.in_ucast_pkts,
            "out_ucast_pkts": g.out_ucast_pkts,
            "if_high_speed_mbps": g.if_speed // 1_000_000,
            "if_oper_status": 1 if g.oper_up else 2,
            "if_name": None,
            "if_alias": None,
        }

    def _netflow(self, work: _FileWork, d: Datagram) -> None:
        """One NetFlow v9 / IPFIX datagram: decoded into the file's column-wise batch (or, with
        ``PEERPOOL_NETFLOW_PURE=1``, into row dicts), quarantined when damaged (what decoded before
        the damage is kept), counted, and its sequence number given to the loss tracker."""
        s = work.summary
        stats = self.netflow.stats
        batch = work.flows.netflow
        options_before, pending_before = stats.options_records, stats.pending
        failed = False
        data = d.data
        version = (data[0] << 8) | data[1] if len(data) >= 2 else -1
        if batch is not None:
            rows_before, own_before = batch.rows, batch.own
            try:
                self.netflow.decode_into(batch, data, d.source_ip, d.received_ns)
            except NetflowDecodeError as exc:
                self._quarantine(work, d, {9: "netflow9", 10: "ipfix"}.get(version, "netflow"), exc)
                failed = True
                if batch.rows > rows_before:
                    s.partially_decoded += 1
            except DecodeError as exc:  # the decoder raises NetflowDecodeError only; as below
                self._quarantine(work, d, "netflow", exc)
                return
            count, own = batch.rows - rows_before, batch.own - own_before
        else:
            try:
                rows = self.netflow.decode(data, d.source_ip, d.received_ns)
            except NetflowDecodeError as exc:
                self._quarantine(work, d, {9: "netflow9", 10: "ipfix"}.get(version, "netflow"), exc)
                rows, failed = exc.records, True
                if rows:
                    s.partially_decoded += 1
            except DecodeError as exc:
                self._quarantine(work, d, "netflow", exc)
                return
            count = len(rows)
            own = sum(1 for r in rows if r["received_at"] == d.received_ns)
        s.released_records += count - own
        s.flow_records += count
        pending = stats.pending - pending_before
        s.pending_sets += pending
        s.options_records += stats.options_records - options_before
        if batch is not None:
            work.flows.netflow_added()
        elif rows:
            work.flows.add_records(rows)
        if version == 10 and len(data) >= 16:
            s.ipfix_datagrams += 1
            sequence, domain = struct.unpack_from("!II", data, 8)
            records = None if pending or failed else own + stats.options_records - options_before
            self.loss.ipfix_message(d.received_ns, d.source_ip, domain, sequence, records)
        elif version == 9 and len(data) >= 20:
            s.netflow9_datagrams += 1
            uptime_ms, _secs, sequence, source_id = struct.unpack_from("!IIII", data, 4)
            self.loss.netflow9_packet(d.received_ns, d.source_ip, source_id, sequence, uptime_ms, own)

    # --- one file -------------------------------------------------------------------------

    def process(self, item: InputFile, *, force: bool) -> FileSummary:
        started = time.perf_counter()
        key = item.part_key
        summary = FileSummary(str(item.path), item.kind, key)
        sha = sha256_file(item.path)
        previous = self.state.entry(key)
        if previous is not None:
            same_content = previous.sha256 == sha
            if (
                not same_content
                and Path(previous.path).resolve() != item.path.resolve()
                and Path(previous.path).exists()
            ):
                raise LakeError(
                    f"{item.path}: has the same part key '{key}' as {previous.path}, which was processed "
                    "with other content; rename one of them (part files are named after the file stem)"
                )
            if same_content and not force:
                summary.status = "unchanged"
                return summary
        matrix = MatrixAggregator()
        if self.fast:
            flows = _FlowsBuffer(self.enricher, str(item.path), fast.new_batch(matrix.interval_ns), matrix)
            sflow = self._sflow_batched
        else:
            flows = _FlowsBuffer(self.enricher, str(item.path))
            sflow = self._sflow
        if self.netflow_columnar:
            flows.netflow = columnar.ColumnarBatch(self.netflow.stats)
        work = _FileWork(summary, flows, matrix)
        self.loss.begin_file(previous.loss_before if previous is not None and force else None)
        newest = 0
        out_of_range_before = self.netflow.stats.errors.get(_OUT_OF_RANGE, 0)
        for d in self._datagrams(item, work):
            summary.datagrams += 1
            if not 0 <= d.received_ns <= _INT64_MAX:
                self._quarantine_arrival(work, d)
                continue
            if d.received_ns > newest:
                newest = d.received_ns
            if d.protocol == sp.PROTO_SFLOW5:
                sflow(work, d)
            elif d.protocol in (sp.PROTO_IPFIX, sp.PROTO_NETFLOW9):
                self._netflow(work, d)
            else:
                protocol = classify(d.data, 0)
                if protocol == sp.PROTO_SFLOW5:
                    sflow(work, d)
                elif protocol != sp.PROTO_UNKNOWN:
                    self._netflow(work, d)
                elif item.kind == "pcap":
                    summary.ignored += 1
                else:
                    self._quarantine(
                        work,
                        d,
                        "unknown",
                        DecodeError("not sflow v5, ipfix or netflow v9 (unknown version field)", offset=0),
                    )
        newest = max(newest, work.newest_ns)
        summary.newest_ns = newest
        work.flows.finish()  # the batched path completes the matrix here
        summary.values_out_of_range = self.netflow.stats.errors.get(_OUT_OF_RANGE, 0) - out_of_range_before
        for row in work.quarantine:
            if row["received_at"] is None:  # damaged spool bytes: file them under the file's time
                row["received_at"] = newest
        loss_rows, loss_before = self.loss.end_file()
        summary.datagrams_missing = sum(r["datagrams_missing"] or 0 for r in loss_rows)
        summary.samples_missing = sum(r["samples_missing"] or 0 for r in loss_rows)
        summary.loss_restarts = self.loss.events.restarts
        summary.matrix_samples = work.matrix.samples
        parts = self._write(item, work, loss_rows)
        removed = 0
        if previous is not None:
            for stale in set(previous.parts) - set(parts):
                target = self.lake / stale
                if target.exists():
                    target.unlink()
                    removed += 1
        summary.parts_written = len(parts)
        summary.parts_removed = removed
        self.cache.save(self.state.templates_path)
        self.newest_ns = max(self.newest_ns, newest)
        summary.seconds = round(time.perf_counter() - started, 3)
        self.state.record(
            LedgerEntry(
                key,
                str(item.path),
                sha,
                item.path.stat().st_size,
                time.time_ns(),
                tuple(sorted(parts)),
                {k: v for k, v in loss_before.items()},
                asdict(summary),
            ),
            loss_state=self.loss.state(),
            newest_ns=self.newest_ns,
        )
        return summary

    # --- writing --------------------------------------------------------------------------

    def _write(self, item: InputFile, work: _FileWork, loss_rows: list[dict[str, Any]]) -> list[str]:
        key = item.part_key
        source = str(item.path)
        written: list[str] = []
        flows = work.flows.table()
        if flows is not None:
            written += self._write_table("flows", flows, "received_at", key, hourly=True)
        # exact sums past int64 (crafted input) become several rows of one key, see ingest.sflow.limits
        matrix_rows, unknown_rows = (split_int64_sums(rows) for rows in work.matrix.rows(self.enricher))
        work.summary.unknown_mac_samples = sum(
            r["sample_count"] for r in unknown_rows if r["direction"] == "src"
        ) + sum(r["sample_count"] for r in unknown_rows if r["direction"] == "dst")
        tables: list[tuple[str, list[dict[str, Any]], str]] = [
            ("member_matrix", matrix_rows, "interval_start"),
            ("unknown_macs", unknown_rows, "interval_start"),
            ("port_counters", work.counters, "polled_at"),
            ("flow_loss", loss_rows, "interval_start"),
            ("quarantine", work.quarantine, "received_at"),
        ]
        for table_name, rows, time_column in tables:
            if not rows:
                continue
            for row in rows:
                row["source_file"] = source
            table = _rows_table(table_name, rows)
            written += self._write_table(table_name, table, time_column, key, hourly=False)
        return written

    def _write_table(
        self, table_name: str, table: pa.Table, time_column: str, key: str, *, hourly: bool
    ) -> list[str]:
        times = table.column(time_column).cast(pa.int64()).fill_null(0).to_numpy()
        bucket = times // (_HOUR_NS // 1000 if hourly else _DAY_NS // 1000)
        values = np.unique(bucket)
        out = []
        for value in values:
            part = table.filter(pa.array(bucket == value)) if len(values) > 1 else table
            start_us = int(value) * (_HOUR_NS // 1000 if hourly else _DAY_NS // 1000)
            moment = dt.datetime.fromtimestamp(start_us / 1_000_000, tz=dt.UTC)
            path = lk.write_part(
                self.lake, table_name, part, moment.date(), key, moment.hour if hourly else None
            )
            out.append(str(path.relative_to(self.lake)))
        return out


_INT64_MAX = (1 << 63) - 1
_OUT_OF_RANGE = "value out of range"  # the NetFlow decoders' count of values left out of rows
_SPOOL_FULL = 1  # FlowBatch.add_spool stopped: the batch holds FLOWS_CHUNK samples
_SPOOL_HAND_OVER = 2  # ... before a record for the spool reader and the per-datagram path


def _rows_table(table_name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = lk.TABLES[table_name]
    columns = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if f.type == lk.TS:
            columns[f.name] = _ts_array(values)
        else:
            columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=schema)


def _record_times(table: pa.Table) -> pa.Table:
    """NetFlow / IPFIX records with their times as ns integers -> the lake's us timestamps."""
    for name in _RECORD_TIMES:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.divide(table.column(name), 1000).cast(lk.TS))
    return table


def _ts_array(values: list[Any]) -> pa.Array:
    """Nanoseconds since the epoch (or None) -> the lake's microsecond UTC timestamps."""
    return pa.array([None if v is None else int(v) // 1000 for v in values], type=lk.TS)


def apply_retention(lake: Path, newest_ns: int, retention_days: int) -> list[str]:
    """Remove ``flows`` day partitions older than ``retention_days`` before the newest data."""
    if newest_ns <= 0 or retention_days < 0:
        return []
    newest_day = dt.datetime.fromtimestamp(newest_ns / 1e9, tz=dt.UTC).date()
    try:
        cutoff = newest_day - dt.timedelta(days=retention_days)
    except OverflowError:
        return []  # a retention longer than the calendar: keep everything
    removed: list[str] = []
    flows = lake / "flows"
    if not flows.is_dir():
        return removed
    for partition in sorted(flows.glob("date=*")):
        try:
            day = dt.date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            continue
        if day < cutoff:
            shutil.rmtree(partition)
            removed.append(str(partition.relative_to(lake)))
    return removed


def process_files(
    inputs: Sequence[Path | str],
    lake: Path | str,
    *,
    exchange: Exchange | None = None,
    asn_db: Path | str | None = None,
    force: bool = False,
    retention_days: int = 35,
    progress: Callable[[FileSummary], None] | None = None,
    files_found: Callable[[int], None] | None = None,
) -> PipelineSummary:
    """Decode spool / pcap files into the lake; see the module docstring. Idempotent per input."""
    lake = Path(lake)
    files, still_open = expand_inputs(inputs)
    summary = PipelineSummary(still_open=[str(p) for p in still_open])
    if still_open:
        summary.warnings.append(
            f"{len(still_open)} .open spool files are still being written and were skipped"
        )
    if files_found is not None:
        files_found(len(files))
    enricher = Enricher(exchange, AsnLookup(Path(asn_db)) if asn_db is not None else None)
    with LakeState(lake) as state:
        pipeline = Pipeline(lake, state, enricher)
        for item in files:
            result = pipeline.process(item, force=force)
            summary.files.append(result)
            if progress is not None:
                progress(result)
        summary.retention_removed = apply_retention(lake, pipeline.newest_ns, retention_days)
        if force and any(f.released_records or f.pending_sets for f in summary.files):
            summary.warnings.append(
                "some data sets waited for their template across files; when re-processing with --force, "
                "re-process those files together (a file alone may then decode them a second time)"
            )
    return summary
