"""Fixed-length NetFlow v9 / IPFIX data sets decoded column-wise with numpy, many datagrams at once.

Most templates real exporters send have no variable-length field: the records of a data set are
then an array of fixed-size big-endian structs. The decoder (``NetflowDecoder.decode_into``) does
not turn such records into row dicts; it hands the set's bytes and the little context they need
(arrival, exporter, domain, sequence, export time, uptime reference, the sampling rate known for
the set) to a :class:`ColumnarBatch`. When the pipeline wants a table the batch joins the bytes of
each template, reads them with one ``np.frombuffer`` through a structured dtype built once per
template (:class:`FixedPlan`), and computes every FLOWS column with array operations: no Python
object per record.

The reference for every value is the generated row converter of ``ingest.netflow.layout`` (the
same slots, the same precedence between elements, the same time arithmetic, the same sampling
fallbacks, the same range rule for values the lake cannot hold); tests/test_netflow_fast.py checks
the two give identical lakes. Sets the plan does not cover (variable-length templates) are
converted to row dicts by the reference converter and kept in the batch in their place, so the
rows come out in decoding order either way.

Order. Rows are numbered as they are added; each template's records are computed together, and
every column is put back in that order when the table is assembled (one scatter per column; text
columns as indices into the distinct strings, taken once at the end).

Exporter state that decides a sampling rate can change between two sets (options data arriving).
The decoder rebuilds its per-template binding whenever it does, so the batch records, per set,
the binding that was current: its set rate, and for templates that carry sampler / selector ids
or in-record rates a copy of the exporter's sampling table taken when the binding was made.

``PEERPOOL_NETFLOW_PURE=1`` switches the pipeline back to row dicts (:func:`enabled`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.netflow import elements as ie
from ingest.netflow.layout import (
    BYTES,
    DST_MAC,
    INPUT,
    INT64_MAX,
    LAKE_MAX,
    OUTPUT,
    PACKETS,
    SRC_MAC,
    VLAN,
    RecordLayout,
    Slot,
)
from ingest.netflow.templates import ExporterState, SamplerKey
from peerpool.lake import FLOWS_DECODED

if TYPE_CHECKING:
    from ingest.netflow.decoder import DecoderStats

Row = dict[str, object]

PURE_ENV: Final = "PEERPOOL_NETFLOW_PURE"

# the columns the decoder fills (peerpool.lake.FLOWS_DECODED), times as int64 ns: what
# ``pa.Table.from_pylist`` makes of reference rows
RECORDS_SCHEMA: Final = FLOWS_DECODED


def enabled() -> bool:
    """True unless ``PEERPOOL_NETFLOW_PURE`` is set (1/true/yes): then the pipeline decodes
    NetFlow / IPFIX to row dicts with the reference converters only (to compare, or to rule the
    column-wise path out when chasing a problem)."""
    return os.environ.get(PURE_ENV, "").strip().lower() not in ("1", "true", "yes")


U64 = np.ndarray[Any, np.dtype[np.uint64]]
I64 = np.ndarray[Any, np.dtype[np.int64]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]

_MS_NS: Final = 1_000_000
_S_NS: Final = 1_000_000_000
_NTP_OFFSET_S: Final = ie.NTP_UNIX_OFFSET_S
_HALF: Final = 0x80000000
_LOW32: Final = 0xFFFFFFFF
_SAFE: Final = 1 << 60  # below this, 2 x (a + b) + b of such values stays within an int64


@dataclass(frozen=True, slots=True)
class RateSnapshot:
    """What the sampling fallback chain knew when a binding was made (``RateResolver``)."""

    sampling: dict[SamplerKey, int]
    default_rate: int
    default_known: bool

    @staticmethod
    def of(state: ExporterState | None, default: tuple[int, bool]) -> RateSnapshot:
        return RateSnapshot(dict(state.sampling) if state is not None else {}, default[0], default[1])

    def lookup(self, selector: int | None, sampler: int | None) -> tuple[int, bool]:
        """(rate, fell through to an unknown default) as ``RateResolver.lookup`` decides it."""
        if selector is not None:
            rate = self.sampling.get(("selector", selector))
            if rate:
                return rate, False
        if sampler is not None:
            rate = self.sampling.get(("sampler", sampler))
            if rate:
                return rate, False
        return self.fallback()

    def fallback(self) -> tuple[int, bool]:
        if self.default_known:
            return self.default_rate, False
        return 1, True


# --- reading fields ---------------------------------------------------------------------------


def _ratio(numerator: np.ndarray[Any, Any], denominator: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``layout._ratio`` element-wise (int64 or, for huge values, Python-int object arrays)."""
    ok = (numerator > 0) & (denominator > 0)
    d = np.where(ok, denominator, 1)
    return np.where(ok, (2 * numerator + d) // (2 * d), 0)


def _exact(*values: U64) -> list[np.ndarray[Any, Any]]:
    """The arrays as int64 when small enough for the arithmetic of ``_ratio``, else as Python ints."""
    if all(v.size == 0 or int(v.max()) < _SAFE for v in values):
        return [v.astype(np.int64) for v in values]
    return [v.astype(object) for v in values]


@dataclass(slots=True)
class Numbers:
    """An integer column on its way to Arrow: int64 values and where they are valid (None: all)."""

    values: I64
    valid: Mask | None = None

    @staticmethod
    def nulls(n: int) -> Numbers:
        return Numbers(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))


@dataclass(slots=True)
class Text:
    """A string column on its way to Arrow: distinct strings and an index per row (-1: null)."""

    dictionary: pa.Array
    indices: I64

    @staticmethod
    def nulls(n: int) -> Text:
        return Text(pa.array([], pa.string()), np.full(n, -1, dtype=np.int64))

    @staticmethod
    def of(column: pa.Array | pa.ChunkedArray) -> Text:
        """An Arrow string column (nulls allowed) in this form."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = column.dictionary_encode()
        indices = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy()
        return Text(encoded.dictionary, np.asarray(indices, dtype=np.int64))


Column = Numbers | Text

_PAIRS: pa.Array | None = None


def _ipv4_text(values: np.ndarray[Any, Any]) -> Text:
    """Dotted quads (``socket.inet_ntoa``) of 32-bit addresses: each distinct address is formatted
    once, from a table of the 65,536 "a.b" halves."""
    global _PAIRS
    if _PAIRS is None:
        _PAIRS = pa.array([f"{i >> 8}.{i & 255}" for i in range(65536)], pa.string())
    encoded = pa.array(values.astype(np.uint32)).dictionary_encode()
    distinct = encoded.dictionary.to_numpy().astype(np.int64)
    text = pc.binary_join_element_wise(
        _PAIRS.take(pa.array(distinct >> 16)), _PAIRS.take(pa.array(distinct & 0xFFFF)), "."
    )
    return Text(text, encoded.indices.to_numpy().astype(np.int64))


def _bytes_text(raw: np.ndarray[Any, Any], width: int, fmt: Callable[[bytes], str]) -> Text:
    """Text of fixed-size byte strings (addresses, MACs), formatted once per distinct value."""
    n = len(raw)
    column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(raw))]
    )
    encoded = column.dictionary_encode()
    distinct = pa.array([fmt(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return Text(distinct, encoded.indices.to_numpy().astype(np.int64))


def _ipv6(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, raw)


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def _choose(is_v6: Mask, v6: Text, v4: Text) -> Text:
    """Per row the IPv6 text where ``is_v6``, else the IPv4 text (either may be all null)."""
    shift = len(v4.dictionary)
    six = np.where(v6.indices < 0, -1, v6.indices + shift)
    dictionary = pa.concat_arrays([v4.dictionary, v6.dictionary])
    return Text(dictionary, np.where(is_v6, six, v4.indices))


@dataclass(slots=True)
class _Context:
    """Per-record context of one template's records (gathered from their sets and headers)."""

    n: int
    received: I64
    exporter: I64  # codes into ColumnarBatch.exporters
    domain: I64
    sequence: I64
    ref_ms: I64
    ref_up: I64  # -1: unknown (IPFIX without a system init time)
    set_rate: I64
    snapshot: I64  # index into ColumnarBatch.snapshots; -1 for sets with one rate


@dataclass(slots=True)
class _Counts:
    out_of_range: int = 0
    unknown_sampling: int = 0


class FixedPlan:
    """How to read the records of one fixed-length data template as columns (see module doc)."""

    def __init__(self, layout: RecordLayout) -> None:
        if layout.fixed is None or layout.record_length == 0:
            raise ValueError("only fixed-length templates with non-empty records have a plan")
        self.layout = layout
        self.version = layout.template.version
        self.protocol = layout.protocol
        self.record_length = layout.record_length
        self.rate_mode = layout.rate_mode
        self.slots: dict[int, Slot] = layout.slots
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        offset = 0
        for f, slot in zip(layout.template.fields, layout.positions, strict=True):
            if slot is not None:
                names.append(f"e{slot.element}")
                offsets.append(offset)
                if slot.kind == "uint" and slot.length in (1, 2, 4, 8):
                    formats.append(f">u{slot.length}")
                elif slot.kind == "ipv4":
                    formats.append(">u4")
                else:
                    formats.append(("u1", (slot.length,)))
            offset += f.length
        self.dtype = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": layout.record_length}
        )

    # --- fields ------------------------------------------------------------------------------

    def has(self, element: int) -> bool:
        return element in self.slots

    def _uint(self, records: np.ndarray[Any, Any], element: int) -> U64:
        raw = records[f"e{element}"]
        if raw.ndim == 1:
            values: U64 = raw.astype(np.uint64)
            return values
        out = np.zeros(len(raw), dtype=np.uint64)
        for i in range(raw.shape[1]):
            out = (out << np.uint64(8)) | raw[:, i].astype(np.uint64)
        return out

    def _first(self, candidates: tuple[int, ...]) -> int | None:
        return next((e for e in candidates if e in self.slots), None)

    # --- columns -----------------------------------------------------------------------------

    def columns(
        self,
        records: np.ndarray[Any, Any],
        ctx: _Context,
        snapshots: Sequence[RateSnapshot],
        counts: _Counts,
    ) -> dict[str, Column]:
        """Every FLOWS column of these records but the enrichment ones (times as int64 ns)."""
        n = ctx.n
        cols: dict[str, Column] = {}

        def uint_column(candidates: tuple[int, ...], column: str) -> Numbers:
            element = self._first(candidates)
            if element is None:
                return Numbers.nulls(n)
            return _checked(self._uint(records, element), LAKE_MAX[column], counts)

        cols["received_at"] = Numbers(ctx.received)
        cols["flow_protocol"] = Text(pa.array([self.protocol], pa.string()), np.zeros(n, dtype=np.int64))
        cols["observation_domain"] = Numbers(ctx.domain)
        cols["sequence_number"] = Numbers(ctx.sequence)
        cols["sample_pool"] = cols["drops"] = Numbers.nulls(n)
        cols["input_ifindex"] = uint_column(INPUT, "input_ifindex")
        cols["output_ifindex"] = uint_column(OUTPUT, "output_ifindex")
        cols["vlan"] = uint_column(VLAN, "vlan")
        cols["ethertype"] = uint_column((ie.ETHERNET_TYPE,), "ethertype")
        cols["ip_protocol"] = uint_column((ie.PROTOCOL_IDENTIFIER,), "ip_protocol")
        cols["src_port"] = uint_column((ie.SOURCE_TRANSPORT_PORT,), "src_port")
        cols["dst_port"] = uint_column((ie.DESTINATION_TRANSPORT_PORT,), "dst_port")
        for column, candidates in (("src_mac", SRC_MAC), ("dst_mac", DST_MAC)):
            element = self._first(candidates)
            cols[column] = Text.nulls(n) if element is None else _bytes_text(records[f"e{element}"], 6, _mac)
        self._addresses(records, n, cols, counts)
        rate, rate_ok = self._rates(records, ctx, snapshots, counts)
        cols["sampling_rate"] = Numbers(rate, rate_ok)
        for column, candidates in (("bytes", BYTES), ("packets", PACKETS)):
            element = self._first(candidates)
            if element is None:
                cols[column] = cols[f"estimated_{column}"] = Numbers.nulls(n)
                continue
            count = _checked(self._uint(records, element), LAKE_MAX[column], counts)
            cols[column] = count
            # count x rate, checked against the int64 (both factors are within it here)
            both = rate_ok if count.valid is None else count.valid & rate_ok
            factor = np.where(both, rate, 1)
            over = both & (count.values > INT64_MAX // factor)
            counts.out_of_range += int(over.sum())
            cols[f"estimated_{column}"] = Numbers(count.values * np.where(over, 0, factor), both & ~over)
        cols["flow_start"] = self._time(records, ctx, _START, counts)
        cols["flow_end"] = self._time(records, ctx, _END, counts)
        return cols

    def _addresses(
        self, records: np.ndarray[Any, Any], n: int, cols: dict[str, Column], counts: _Counts
    ) -> None:
        """ip_version, src_ip, dst_ip as ``_Source.ip_version`` / ``address`` choose them."""
        has = self.has
        v4 = has(ie.SOURCE_IPV4_ADDRESS) or has(ie.DESTINATION_IPV4_ADDRESS)
        v6 = has(ie.SOURCE_IPV6_ADDRESS) or has(ie.DESTINATION_IPV6_ADDRESS)
        is_v6: Mask | None = None
        if v4 and v6:
            if has(ie.IP_VERSION):
                is_v6 = self._uint(records, ie.IP_VERSION) == np.uint64(6)
            else:
                element = (
                    ie.SOURCE_IPV4_ADDRESS if has(ie.SOURCE_IPV4_ADDRESS) else ie.DESTINATION_IPV4_ADDRESS
                )
                is_v6 = records[f"e{element}"] == 0
        if has(ie.IP_VERSION):
            cols["ip_version"] = _checked(self._uint(records, ie.IP_VERSION), LAKE_MAX["ip_version"], counts)
        elif is_v6 is not None:
            cols["ip_version"] = Numbers(np.where(is_v6, 6, 4).astype(np.int64))
        elif v4 or v6:
            cols["ip_version"] = Numbers(np.full(n, 4 if v4 else 6, dtype=np.int64))
        else:
            cols["ip_version"] = Numbers.nulls(n)
        for column, e4, e6 in (
            ("src_ip", ie.SOURCE_IPV4_ADDRESS, ie.SOURCE_IPV6_ADDRESS),
            ("dst_ip", ie.DESTINATION_IPV4_ADDRESS, ie.DESTINATION_IPV6_ADDRESS),
        ):
            text4 = _ipv4_text(records[f"e{e4}"]) if has(e4) else Text.nulls(n)
            text6 = _bytes_text(records[f"e{e6}"], 16, _ipv6) if has(e6) else Text.nulls(n)
            if is_v6 is not None:
                cols[column] = _choose(is_v6, text6, text4)
            else:
                cols[column] = text4 if has(e4) else text6

    def _rates(
        self,
        records: np.ndarray[Any, Any],
        ctx: _Context,
        snapshots: Sequence[RateSnapshot],
        counts: _Counts,
    ) -> tuple[np.ndarray[Any, Any], Mask]:
        """Per-record rate (int64, or object when huge) and where it is usable (``_converter_source``)."""
        n = ctx.n
        if self.rate_mode == "set":
            return ctx.set_rate, np.ones(n, dtype=bool)
        has = self.has
        in_record: np.ndarray[Any, Any] | None = None
        if has(ie.SAMPLING_POPULATION) and has(ie.SAMPLING_SIZE):
            population, size = _exact(
                self._uint(records, ie.SAMPLING_POPULATION), self._uint(records, ie.SAMPLING_SIZE)
            )
            in_record = _ratio(population, size)
        elif has(ie.SAMPLING_PACKET_INTERVAL):
            if has(ie.SAMPLING_PACKET_SPACE):
                interval, space = _exact(
                    self._uint(records, ie.SAMPLING_PACKET_INTERVAL),
                    self._uint(records, ie.SAMPLING_PACKET_SPACE),
                )
                in_record = _ratio(interval + space, interval)
            else:
                (in_record,) = _exact(self._uint(records, ie.SAMPLING_PACKET_INTERVAL))
        elif has(ie.SAMPLER_RANDOM_INTERVAL):
            (in_record,) = _exact(self._uint(records, ie.SAMPLER_RANDOM_INTERVAL))
        elif has(ie.SAMPLING_INTERVAL):
            (in_record,) = _exact(self._uint(records, ie.SAMPLING_INTERVAL))
        if in_record is None:
            rate: np.ndarray[Any, Any] = np.zeros(n, dtype=np.int64)
            falls = np.ones(n, dtype=bool)
        else:
            rate = in_record
            falls = in_record == 0
        if falls.any():
            fallback, unknown = self._fallback(records, ctx, snapshots, falls)
            counts.unknown_sampling += unknown
            if rate.dtype == object:
                fallback = fallback.astype(object)
            rate = np.where(falls, fallback, rate)
        ok = np.asarray(rate <= INT64_MAX, dtype=bool)
        counts.out_of_range += n - int(ok.sum())
        if rate.dtype == object:
            rate = np.where(ok, rate, 0)
        return rate.astype(np.int64), ok

    def _fallback(
        self,
        records: np.ndarray[Any, Any],
        ctx: _Context,
        snapshots: Sequence[RateSnapshot],
        falls: Mask,
    ) -> tuple[I64, int]:
        """Rates of the records without a usable in-record rate: by selector / sampler id, else the
        exporter default; and how many fell through to an unknown default."""
        selector = self._uint(records, ie.SELECTOR_ID) if self.has(ie.SELECTOR_ID) else None
        sampler = self._uint(records, ie.SAMPLER_ID) if self.has(ie.SAMPLER_ID) else None
        out = np.ones(ctx.n, dtype=np.int64)
        where = np.flatnonzero(falls)
        columns = [ctx.snapshot[where].astype(np.uint64)]
        columns += [ids[where] for ids in (selector, sampler) if ids is not None]
        # one decision per distinct (binding, selector, sampler)
        keys, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
        rates = np.empty(len(keys), dtype=np.int64)
        unknown = np.zeros(len(keys), dtype=np.int64)
        for k, key in enumerate(keys.tolist()):
            snapshot = snapshots[key[0]]
            if selector is None and sampler is None:
                rates[k], unknown[k] = snapshot.fallback()
            else:
                sel = key[1] if selector is not None else None
                smp = key[-1] if sampler is not None else None
                rates[k], unknown[k] = snapshot.lookup(sel, smp)
        inverse = inverse.reshape(-1)
        out[where] = rates[inverse]
        return out, int(unknown[inverse].sum())

    def _time(
        self,
        records: np.ndarray[Any, Any],
        ctx: _Context,
        elements: tuple[int, int, int, int, int, int],
        counts: _Counts,
    ) -> Numbers:
        """``_Source.time`` element-wise: ns since the epoch as int64, null where unknown."""
        ntp_ns, ntp_us, ms, s, uptime, delta_us = elements
        n = ctx.n
        has = self.has
        ns: I64
        valid: Mask
        if has(ntp_ns) or has(ntp_us):
            v = self._uint(records, ntp_ns if has(ntp_ns) else ntp_us)
            seconds = (v >> np.uint64(32)).astype(np.int64)
            fraction = v & np.uint64(_LOW32)
            ns = (seconds - _NTP_OFFSET_S) * _S_NS + ((fraction * np.uint64(_S_NS)) >> np.uint64(32)).astype(
                np.int64
            )
            valid = np.ones(n, dtype=bool)
        elif has(ms) or has(s):
            element, scale = (ms, _MS_NS) if has(ms) else (s, _S_NS)
            v = self._uint(records, element)
            valid = v <= np.uint64(INT64_MAX // scale)
            counts.out_of_range += n - int(valid.sum())
            ns = np.where(valid, v, 0).astype(np.int64) * scale
        elif has(uptime):
            v = self._uint(records, uptime)
            base = (ctx.ref_ms + _HALF) * _MS_NS
            known = ctx.ref_up >= 0
            up = (np.where(known, ctx.ref_up, 0) + _HALF).astype(np.uint64)
            ns = base - ((up - v) & np.uint64(_LOW32)).astype(np.int64) * _MS_NS
            if self.version == 9:
                valid = np.ones(n, dtype=bool)
            elif has(ie.SYSTEM_INIT_TIME_MILLISECONDS):
                init = self._uint(records, ie.SYSTEM_INIT_TIME_MILLISECONDS)
                with_init = init != 0
                mine = ((ctx.ref_ms.astype(np.uint64) + np.uint64(_HALF)) - init - v) & np.uint64(_LOW32)
                ns = np.where(with_init, base - mine.astype(np.int64) * _MS_NS, ns)
                valid = with_init | known
            else:
                valid = known
        elif has(delta_us):
            v = self._uint(records, delta_us)
            now = ctx.ref_ms * _MS_NS  # >= 0
            limit = (now.astype(np.uint64) + np.uint64(INT64_MAX) + np.uint64(1)) // np.uint64(1000)
            valid = v <= limit
            counts.out_of_range += n - int(valid.sum())
            # now - v * 1000 >= -2**63 where valid: computed in uint64 and read back as int64
            ns = (now.astype(np.uint64) - np.where(valid, v, 0) * np.uint64(1000)).astype(np.int64)
        else:
            return Numbers.nulls(n)
        return Numbers(ns, valid)


def _checked(values: U64, top: int, counts: _Counts) -> Numbers:
    """Unsigned values as int64, those above the lake column's ``top`` null (and counted)."""
    bad = values > np.uint64(top)
    if bad.any():
        counts.out_of_range += int(bad.sum())
        return Numbers(np.where(bad, 0, values).astype(np.int64), ~bad)
    return Numbers(values.astype(np.int64))


_START: Final = (
    ie.FLOW_START_NANOSECONDS,
    ie.FLOW_START_MICROSECONDS,
    ie.FLOW_START_MILLISECONDS,
    ie.FLOW_START_SECONDS,
    ie.FLOW_START_SYS_UP_TIME,
    ie.FLOW_START_DELTA_MICROSECONDS,
)
_END: Final = (
    ie.FLOW_END_NANOSECONDS,
    ie.FLOW_END_MICROSECONDS,
    ie.FLOW_END_MILLISECONDS,
    ie.FLOW_END_SECONDS,
    ie.FLOW_END_SYS_UP_TIME,
    ie.FLOW_END_DELTA_MICROSECONDS,
)


# --- the batch ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    """The sets of one template held by a batch."""

    plan: FixedPlan
    bodies: list[Any] = field(default_factory=list)  # bytes-like, whole records only
    sets: list[int] = field(default_factory=list)  # per set, flat: first row, records
    runs: list[int] = field(default_factory=list)
    # per run of sets with the same context, flat: index of its first set, header index, set rate,
    # snapshot index or -1, uptime reference or -1

    def run(self, header_index: int, set_rate: int, snapshot: int, ref_up: int) -> None:
        """The sets added from now on have this context (until the next run)."""
        self.runs.extend((len(self.sets) // 2, header_index, set_rate, snapshot, ref_up))


class ColumnarBatch:
    """Data sets of many datagrams, held as bytes until :meth:`table` (see the module docstring).

    ``rows`` counts the records held; ``own`` those whose set arrived with the datagram being
    decoded (``arrival``, set by the decoder), as opposed to sets released from pending.
    """

    def __init__(self, stats: DecoderStats | None = None) -> None:
        self.stats = stats
        self.rows = 0
        self.own = 0
        self.arrival = -1
        self.exporters: list[str] = []
        self.snapshots: list[RateSnapshot] = []
        self._exporter_codes: dict[str, int] = {}
        self._groups: dict[FixedPlan, _Group] = {}
        self._headers: list[tuple[int, int, int, int, int]] = []
        self._last_header: object = None
        self._snapshot_index: dict[int, int] = {}  # by id() of the snapshots held in self.snapshots
        self._dict_rows: list[tuple[int, list[Row]]] = []

    def __len__(self) -> int:
        return self.rows

    def header_index(self, header: Any) -> int:
        """Register the datagram ``header`` (``decoder._Header``) its sets refer to; its index."""
        if header is not self._last_header:
            self._last_header = header
            code = self._exporter_codes.get(header.exporter)
            if code is None:
                code = self._exporter_codes[header.exporter] = len(self.exporters)
                self.exporters.append(header.exporter)
            self._headers.append(
                (header.received_at_ns, code, header.domain, header.sequence, header.export_time_s)
            )
        return len(self._headers) - 1

    def snapshot_index(self, snapshot: RateSnapshot | None) -> int:
        """Register the rate snapshot of a binding with per-record rates; -1 for None."""
        if snapshot is None:
            return -1
        index = self._snapshot_index.get(id(snapshot), -1)
        if index < 0:
            index = self._snapshot_index[id(snapshot)] = len(self.snapshots)
            self.snapshots.append(snapshot)
        return index

    def group(self, plan: FixedPlan) -> _Group:
        """Where the sets of ``plan`` go: ``bodies``, and per set two numbers in ``sets`` after the
        ``run`` giving their context (see ``_Group``). The decoder appends to them directly for the
        sets of one datagram and adds their records to ``rows`` and ``own`` itself (``add_set`` is
        the one-call form)."""
        group = self._groups.get(plan)
        if group is None:
            group = self._groups[plan] = _Group(plan)
        return group

    def add_set(
        self,
        plan: FixedPlan,
        body: Any,
        n: int,
        header: Any,
        set_rate: int,
        snapshot: RateSnapshot | None,
        ref_up: int,
    ) -> None:
        """Hold ``n`` whole records of ``plan`` (``body``: their bytes) with their context: the
        datagram ``header`` (``decoder._Header``), the set's rate, the binding's rate snapshot
        (per-record rates) and the uptime reference (-1: unknown)."""
        hidx = self.header_index(header)
        group = self.group(plan)
        group.bodies.append(body)
        rows = self.rows
        group.run(hidx, set_rate, self.snapshot_index(snapshot), ref_up)
        group.sets.extend((rows, n))
        self.rows = rows + n
        if header.received_at_ns == self.arrival:
            self.own += n

    def add_rows(self, rows: list[Row], received_at_ns: int) -> None:
        """Rows made by the reference converter (a template without a plan), in their place."""
        if rows:
            self._dict_rows.append((self.rows, rows))
            self.rows += len(rows)
            if received_at_ns == self.arrival:
                self.own += len(rows)

    def clear(self) -> None:
        self.rows = self.own = 0
        self.exporters, self.snapshots = [], []
        self._exporter_codes, self._groups, self._headers = {}, {}, []
        self._snapshot_index, self._dict_rows = {}, []
        self._last_header = None

    def table(self, schema: pa.Schema = RECORDS_SCHEMA) -> pa.Table:
        """The records held, in the order they were added, as a table of ``schema`` (the FLOWS
        columns without enrichment, times as int64 ns); then empties the batch."""
        parts: list[dict[str, Column]] = []
        positions: list[np.ndarray[Any, Any]] = []
        counts = _Counts()
        headers = np.array(self._headers, dtype=np.int64).reshape(-1, 5)
        exporters = pa.array(self.exporters, pa.string())
        for group in self._groups.values():
            sets = np.array(group.sets, dtype=np.int64).reshape(-1, 2)
            runs = np.array(group.runs, dtype=np.int64).reshape(-1, 5)
            # each run's context for each of its sets: [header index, set rate, snapshot, ref_up]
            context = np.repeat(runs[:, 1:], np.diff(np.append(runs[:, 0], len(sets))), axis=0)
            per_set = sets[:, 1]
            n = int(per_set.sum())
            records = np.frombuffer(b"".join(group.bodies), dtype=group.plan.dtype, count=n)
            of_set = np.repeat(np.arange(len(sets)), per_set)
            first = np.cumsum(per_set) - per_set
            positions.append(np.repeat(sets[:, 0] - first, per_set) + np.arange(n))
            header = headers[context[:, 0]][of_set]
            ctx = _Context(
                n=n,
                received=header[:, 0],
                exporter=header[:, 1],
                domain=header[:, 2],
                sequence=header[:, 3],
                ref_ms=header[:, 4] * 1000,
                ref_up=context[:, 3][of_set],
                set_rate=context[:, 1][of_set],
                snapshot=context[:, 2][of_set],
            )
            cols = group.plan.columns(records, ctx, self.snapshots, counts)
            cols["exporter_address"] = Text(exporters, ctx.exporter)
            parts.append(cols)
        for start, rows in self._dict_rows:
            positions.append(np.arange(start, start + len(rows), dtype=np.int64))
            parts.append(_from_rows(rows, schema))
        total = self.rows
        self.clear()
        if self.stats is not None:
            if counts.out_of_range:
                self.stats.count("value out of range", counts.out_of_range)
            self.stats.unknown_sampling += counts.unknown_sampling
        if not parts:
            return schema.empty_table()
        where = np.concatenate(positions)
        in_order = bool((where == np.arange(total)).all())
        return pa.table(
            {f.name: _assemble([p[f.name] for p in parts], where, in_order, f.type) for f in schema},
            schema=schema,
        )


def _from_rows(rows: list[Row], schema: pa.Schema) -> dict[str, Column]:
    """Reference rows (``layout`` converters) as columns, through the same Arrow conversion."""
    table = pa.Table.from_pylist(rows, schema=schema)
    out: dict[str, Column] = {}
    for f in schema:
        column = table.column(f.name)
        if pa.types.is_string(f.type):
            out[f.name] = Text.of(column)
        else:
            values = pc.fill_null(column, 0).to_numpy().astype(np.int64)
            out[f.name] = Numbers(values, column.is_valid().to_numpy(zero_copy_only=False))
    return out


def _assemble(parts: list[Column], where: I64, in_order: bool, typ: pa.DataType) -> pa.Array:
    """One column of every part, put in row order (``where``: the row of each part's record)."""
    total = len(where)
    if all(isinstance(p, Numbers) and p.valid is not None and not p.valid.any() for p in parts):
        return pa.nulls(total, typ)
    if isinstance(parts[0], Text) and all(
        isinstance(p, Text) and len(p.dictionary) == 1 and p.dictionary.equals(parts[0].dictionary)
        and (p.indices == 0).all()
        for p in parts
    ):  # fmt: skip
        return pa.repeat(parts[0].dictionary[0], total)
    if isinstance(parts[0], Text):
        dictionaries: list[pa.Array] = []
        indices: list[I64] = []
        shift = 0
        for part in parts:
            assert isinstance(part, Text)
            dictionaries.append(part.dictionary)
            indices.append(np.where(part.indices < 0, -1, part.indices + shift))
            shift += len(part.dictionary)
        index = _ordered(np.concatenate(indices), where, in_order, total)
        dictionary = pa.concat_arrays(dictionaries) if len(dictionaries) > 1 else dictionaries[0]
        nulls = index < 0
        return dictionary.take(pa.array(np.where(nulls, 0, index), mask=nulls if nulls.any() else None))
    values = np.concatenate([p.values for p in parts if isinstance(p, Numbers)])
    valid_parts = [p.valid for p in parts if isinstance(p, Numbers)]
    values = _ordered(values, where, in_order, total)
    mask = None
    if any(v is not None for v in valid_parts):
        lengths = [len(p.values) for p in parts if isinstance(p, Numbers)]
        valid = np.concatenate(
            [np.ones(k, dtype=bool) if v is None else v for v, k in zip(valid_parts, lengths, strict=True)]
        )
        valid = _ordered(valid, where, in_order, total)
        if not valid.all():
            mask = ~valid
            values = np.where(valid, values, 0)
    return pa.array(values.astype(typ.to_pandas_dtype()), typ, mask=mask)


def _ordered(values: np.ndarray[Any, Any], where: I64, in_order: bool, total: int) -> np.ndarray[Any, Any]:
    if in_order:
        return values
    out = np.empty(total, dtype=values.dtype)
    out[where] = values
    return out
