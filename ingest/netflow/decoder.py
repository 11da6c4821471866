"""NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) datagrams to FLOWS rows.

The decoder is pure: bytes, the exporter's address and the arrival time in, rows out. All state
(templates, sampling rates, data waiting for its template) lives in the :class:`TemplateCache`
handed to it, which the caller saves and loads across restarts.

Error policy. Framing errors (a header or set length that cannot be right) make the rest of the
datagram unreadable: :class:`NetflowDecodeError` is raised at once. Damage inside one set (a
template or record running past the end of its set) loses only that set: the other sets are
still decoded, then the error is raised with the rows that were decoded in ``error.records``, so
the caller can keep them and quarantine the datagram. Harmless oddities (reserved set ids, zero
padding after the last set, fields peerpool cannot read, values too large for their lake column,
which are left out of the row: see ``ingest.netflow.layout``) are counted in ``stats`` only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ingest.netflow import elements as ie
from ingest.netflow.columnar import ColumnarBatch, FixedPlan, RateSnapshot
from ingest.netflow.layout import USED_ELEMENTS, Converter, RecordLayout, compile_layout
from ingest.netflow.sampling import MAX_RATE, RateResolver, learn
from ingest.netflow.templates import Template, TemplateCache, TemplateField, TemplateKey
from peerpool.errors import DecodeError

_HH: Final = struct.Struct("!HH")
_HHH: Final = struct.Struct("!HHH")
_HHI: Final = struct.Struct("!HHI")
_V9_HEADER: Final = struct.Struct("!HHIIII")  # version, count, sysUpTime, unix secs, sequence, source id
_IPFIX_HEADER: Final = struct.Struct("!HHIII")  # version, length, export time, sequence, domain

_PROTOCOL: Final = {9: "netflow9", 10: "ipfix"}
_MAX_LAYOUTS: Final = 4096
_MAX_SEEN_SETS: Final = 1024  # template sets remembered for the re-send shortcut
_MAX_SEEN_SET_BYTES: Final = 4096
_MAX_ARRIVAL_NS: Final = (1 << 63) - 1  # the lake's received_at (an int64 of ns before it becomes us)
_OPTION_ELEMENTS: Final = frozenset(e for e, kind in USED_ELEMENTS.items() if kind == "uint")

Row = dict[str, object]


class NetflowDecodeError(DecodeError):
    """A NetFlow v9 / IPFIX datagram is damaged; ``records`` holds the rows decoded despite it."""

    def __init__(
        self,
        message: str,
        *,
        protocol: str = "",
        exporter: str = "",
        offset: int = -1,
        kind: str = "",
        records: list[Row] | None = None,
    ) -> None:
        super().__init__(message, protocol=protocol, exporter=exporter, offset=offset)
        self.kind = kind
        self.records: list[Row] = records if records is not None else []


@dataclass
class DecoderStats:
    """Everything that moves gets a counter."""

    datagrams: int = 0
    netflow9_datagrams: int = 0
    ipfix_datagrams: int = 0
    templates: int = 0  # template records received (including re-sends)
    options_templates: int = 0
    templates_changed: int = 0  # new templates or a different definition for a known key
    data_records: int = 0  # flow records returned (including released pending ones)
    options_records: int = 0  # options data records applied to exporter state
    pending: int = 0  # data sets held because their template was unknown
    pending_released: int = 0  # held sets decoded when their template arrived
    pending_dropped: int = 0  # held sets dropped by the bounds (oldest first)
    withdrawn: int = 0  # templates removed by IPFIX withdrawals
    unknown_sampling: int = 0  # records given rate 1 because no rate was known or configured
    sampling_updates: int = 0  # options records that carried a sampling rate
    errors: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + n


@dataclass(slots=True)
class _Header:
    version: int
    exporter: str
    domain: int
    sequence: int
    export_time_s: int
    sys_uptime_ms: int
    received_at_ns: int

    @property
    def protocol(self) -> str:
        return _PROTOCOL[self.version]


@dataclass(frozen=True, slots=True)
class _Binding:
    """What decoding one template key needs, valid while template and exporter state stay."""

    template: Template
    layout: RecordLayout
    fixed: struct.Struct | None  # the layout's unpacker (None: variable-length or empty records)
    record_length: int
    converter: Converter
    state_generation: int
    init_ms: int | None
    set_rate: int
    rate_known: bool
    resolver: RateResolver
    plan: FixedPlan | None  # column-wise reading (decode_into) for fixed-length records
    snapshot: RateSnapshot | None  # what the resolver knows, for per-record rates read column-wise


@dataclass(frozen=True, slots=True)
class _SeenSet:
    """A template set seen from (exporter, domain), keyed by its bytes, and what it stored."""

    stored: tuple[tuple[TemplateKey, Template], ...]
    templates: int
    options_templates: int


@dataclass(slots=True)
class _Problem:
    kind: str
    message: str
    offset: int


class NetflowDecoder:
    """Decode NetFlow v9 and IPFIX datagrams against a template cache.

    ``sampling_overrides`` maps an exporter address to the sampling rate to use when neither
    the record nor the exporter's options data says what it is.
    """

    def __init__(self, cache: TemplateCache, sampling_overrides: dict[str, int] | None = None) -> None:
        self.cache = cache
        self._overrides: dict[str, int] = dict(sampling_overrides or {})
        for exporter, rate in self._overrides.items():
            if not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
                raise ValueError(
                    f"sampling override for {exporter} must be a positive integer up to {MAX_RATE}, "
                    f"not {rate!r}"
                )
        self.stats = DecoderStats()
        self._templates = cache.template_map
        self._bindings: dict[TemplateKey, _Binding] = {}
        self._compiled: dict[Template, RecordLayout] = {}
        self._plans: dict[Template, FixedPlan] = {}
        self._sink: ColumnarBatch | None = None  # set while decode_into runs
        self._seen_template_sets: dict[tuple[str, int, int, bytes], _SeenSet] = {}
        self._stored: list[tuple[TemplateKey, Template]] = []

    @property
    def sampling_overrides(self) -> dict[str, int]:
        """A copy of the configured rates (fixed for the decoder's lifetime)."""
        return dict(self._overrides)

    # --- entry point -----------------------------------------------------------------------

    def decode(self, data: bytes, exporter: str, received_at_ns: int) -> list[Row]:
        """Decode one datagram; rows of data released from pending come back with it."""
        rows: list[Row] = []
        self._decode(data, exporter, received_at_ns, rows)
        return rows

    def decode_into(self, batch: ColumnarBatch, data: bytes, exporter: str, received_at_ns: int) -> None:
        """``decode``, with the records going into ``batch`` (``ingest.netflow.columnar``) instead of
        row dicts: fixed-length sets as bytes, read column-wise when the batch makes its table,
        other sets as the reference's rows in their place. Templates, options, pending data,
        statistics and errors are exactly those of ``decode``, except that a
        :class:`NetflowDecodeError` carries no ``records``: what was decoded before the problem
        stays in the batch (``batch.rows`` grew), as the pipeline keeps ``records`` of ``decode``.
        The batch keeps references to ``data`` (memoryviews of its sets) until its ``table()``.
        """
        self._sink = batch
        batch.arrival = received_at_ns
        before = batch.rows
        try:
            self._decode(data, exporter, received_at_ns, [])
        finally:
            self._sink = None
            batch.arrival = -1
            self.stats.data_records += batch.rows - before

    def _decode(self, data: bytes, exporter: str, received_at_ns: int, rows: list[Row]) -> None:
        self.stats.datagrams += 1
        if not 0 <= received_at_ns <= _MAX_ARRIVAL_NS:
            raise self._fatal(
                "datagram",
                exporter,
                -1,
                "arrival time out of range",
                f"arrival time {received_at_ns} ns is outside 0 .. 2**63 - 1 (after the year 2262); "
                "check the clock of the collector that recorded the datagram",
            )
        if len(data) < 2:
            raise self._fatal(
                "datagram", exporter, 0, "short datagram", f"{len(data)}-byte datagram is too short"
            )
        version = (data[0] << 8) | data[1]
        if version == ie.NETFLOW9_VERSION:
            self.stats.netflow9_datagrams += 1
            header, start, end = self._v9_header(data, exporter, received_at_ns)
        elif version == ie.IPFIX_VERSION:
            self.stats.ipfix_datagrams += 1
            header, start, end = self._ipfix_header(data, exporter, received_at_ns)
        elif version in (1, 5, 7, 8):
            raise self._fatal(
                f"netflow{version}",
                exporter,
                0,
                "unsupported version",
                f"netflow v{version} is not supported (only netflow v9 and ipfix); "
                "configure the exporter for v9 or ipfix",
            )
        else:
            raise self._fatal(
                "datagram",
                exporter,
                0,
                "unknown version",
                f"version {version} is neither netflow v9 nor ipfix; check what sends to this port",
            )
        problems: list[_Problem] = []
        try:
            self._sets(header, data, start, end, rows, problems)
        except NetflowDecodeError:
            for p in problems:
                self.stats.count(p.kind)
            raise
        self.stats.data_records += len(rows)
        if problems:
            for p in problems:
                self.stats.count(p.kind)
            first = problems[0]
            raise NetflowDecodeError(
                first.message + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""),
                protocol=header.protocol,
                exporter=exporter,
                offset=first.offset,
                kind=first.kind,
                records=rows,
            )

    # --- headers ---------------------------------------------------------------------------

    def _v9_header(self, data: bytes, exporter: str, received_at_ns: int) -> tuple[_Header, int, int]:
        if len(data) < ie.NETFLOW9_HEADER_LENGTH:
            raise self._fatal(
                "netflow9",
                exporter,
                0,
                "short header",
                f"{len(data)} bytes is shorter than the 20-byte header",
            )
        _v, _count, sys_uptime, unix_secs, sequence, source_id = _V9_HEADER.unpack_from(data, 0)
        header = _Header(9, exporter, source_id, sequence, unix_secs, sys_uptime, received_at_ns)
        return header, ie.NETFLOW9_HEADER_LENGTH, len(data)

    def _ipfix_header(self, data: bytes, exporter: str, received_at_ns: int) -> tuple[_Header, int, int]:
        if len(data) < ie.IPFIX_HEADER_LENGTH:
            raise self._fatal(
                "ipfix", exporter, 0, "short header", f"{len(data)} bytes is shorter than the 16-byte header"
            )
        _v, length, export_time, sequence, domain = _IPFIX_HEADER.unpack_from(data, 0)
        if length < ie.IPFIX_HEADER_LENGTH:
            raise self._fatal(
                "ipfix",
                exporter,
                2,
                "bad message length",
                f"message length {length} is shorter than its header",
            )
        if length > len(data):
            raise self._fatal(
                "ipfix",
                exporter,
                2,
                "truncated message",
                f"message length {length} exceeds the {len(data)}-byte datagram (truncated in transit?)",
            )
        if length < len(data):
            self.stats.count("bytes after ipfix message")
        header = _Header(10, exporter, domain, sequence, export_time, 0, received_at_ns)
        return header, ie.IPFIX_HEADER_LENGTH, length

    # --- sets ------------------------------------------------------------------------------

    def _sets(
        self, header: _Header, data: bytes, pos: int, end: int, rows: list[Row], problems: list[_Problem]
    ) -> None:
        v9 = header.version == 9
        template_set = ie.NETFLOW9_TEMPLATE_SET_ID if v9 else ie.IPFIX_TEMPLATE_SET_ID
        options_set = ie.NETFLOW9_OPTIONS_TEMPLATE_SET_ID if v9 else ie.IPFIX_OPTIONS_TEMPLATE_SET_ID
        view = memoryview(data)
        # decode_into's shortcut for a data set whose template is bound and read column-wise:
        # what _data_set would do for it, without the calls. Per set id, what its sets need is
        # worked out once per datagram, and forgotten after any other set (a template, options
        # data or data taking the long way may change templates, bindings or exporter state).
        sink = self._sink
        bindings, templates, cache = self._bindings, self._templates, self.cache
        exporter, domain = header.exporter, header.domain
        ref_ms = header.export_time_s * 1000
        shortcuts: dict[int, tuple[Any, Any, int, bool]] = {}
        header_index = -1
        row = sink.rows if sink is not None else 0  # sink.rows, kept here while sets take the shortcut
        try:
            while pos < end:
                if end - pos < ie.SET_HEADER_LENGTH:
                    self.stats.count("padding after last set")
                    break
                set_id, length = _HH.unpack_from(data, pos)
                if length < ie.SET_HEADER_LENGTH:
                    if not any(view[pos:end]):
                        # Zero fill after the last set (Palo Alto pads v9 datagrams this way).
                        self.stats.count("zero padding after last set")
                        break
                    raise self._fatal(
                        header.protocol,
                        header.exporter,
                        pos,
                        "bad set length",
                        f"set {set_id} has length {length}, shorter than a set header; "
                        "the datagram is corrupt",
                        rows,
                    )
                if pos + length > end:
                    raise self._fatal(
                        header.protocol,
                        header.exporter,
                        pos,
                        "set past end",
                        f"set {set_id} of length {length} runs {pos + length - end} bytes past the end of "
                        "the datagram (truncated in transit?)",
                        rows,
                    )
                if set_id >= ie.MIN_DATA_SET_ID and sink is not None:
                    shortcut = shortcuts.get(set_id)
                    if shortcut is None:
                        key = (exporter, domain, set_id)
                        binding = bindings.get(key)
                        if (
                            binding is not None
                            and binding.plan is not None
                            and templates.get(key) is binding.template
                            and binding.state_generation == cache.state_generation
                        ):
                            if v9:
                                ref_up = header.sys_uptime_ms
                            elif binding.init_ms is not None:
                                ref_up = (ref_ms - binding.init_ms) & 0xFFFFFFFF
                            else:
                                ref_up = -1
                            if header_index < 0:
                                header_index = sink.header_index(header)
                            group = sink.group(binding.plan)
                            group.run(
                                header_index, binding.set_rate, sink.snapshot_index(binding.snapshot), ref_up
                            )
                            shortcut = shortcuts[set_id] = (
                                group.bodies.append,
                                group.sets.extend,
                                binding.record_length,
                                binding.rate_known,
                            )
                    if shortcut is not None:
                        add_body, add_set, size, rate_known = shortcut
                        n = (length - ie.SET_HEADER_LENGTH) // size
                        if n:
                            start = pos + ie.SET_HEADER_LENGTH
                            add_body(view[start : start + n * size])
                            add_set((row, n))
                            row += n
                            if not rate_known:
                                self.stats.unknown_sampling += n
                        pos += length
                        continue
                if sink is not None:
                    # the long way may add to the sink itself: hand it the count first
                    sink.own += row - sink.rows  # this datagram's own sets (sink.arrival is its arrival)
                    sink.rows = row
                    if shortcuts:
                        shortcuts.clear()
                body = view[pos + ie.SET_HEADER_LENGTH : pos + length]
                body_offset = pos + ie.SET_HEADER_LENGTH
                if set_id >= ie.MIN_DATA_SET_ID:
                    self._data_set(header, set_id, body, body_offset, rows, problems)
                elif set_id in (template_set, options_set):
                    self._template_set(
                        header, set_id, body, body_offset, rows, problems, set_id == options_set
                    )
                else:
                    self.stats.count("reserved set id")
                if sink is not None:
                    row = sink.rows
                pos += length
        finally:
            if sink is not None and row != sink.rows:
                sink.own += row - sink.rows
                sink.rows = row

    # --- templates -------------------------------------------------------------------------

    def _template_set(
        self,
        header: _Header,
        set_id: int,
        body: memoryview,
        offset: int,
        rows: list[Row],
        problems: list[_Problem],
        options: bool,
    ) -> None:
        """Parse a (options) template set, or skip it when it repeats the last one byte for byte.

        Exporters re-send their templates every few seconds or datagrams (softflowd: every third
        datagram); an identical re-send whose templates are all still current and have no data
        waiting changes nothing, so it is only counted.
        """
        raw = bytes(body)
        seen_key = (header.exporter, header.domain, set_id, raw)
        seen = self._seen_template_sets.get(seen_key)
        if seen is not None:
            current = self._templates
            if all(current.get(k) is t and not self.cache.has_pending(k) for k, t in seen.stored):
                self.stats.templates += seen.templates
                self.stats.options_templates += seen.options_templates
                return
        before = (
            self.stats.templates,
            self.stats.options_templates,
            self.stats.withdrawn,
            sum(self.stats.errors.values()),
            len(problems),
        )
        self._stored = []
        if header.version == 9 and options:
            self._v9_options_templates(header, body, offset, rows, problems)
        elif header.version == 9:
            self._v9_templates(header, body, offset, rows, problems)
        else:
            self._ipfix_templates(header, body, offset, rows, problems, options=options)
        templates = self.stats.templates - before[0]
        options_templates = self.stats.options_templates - before[1]
        clean = (
            self.stats.withdrawn == before[2]
            and sum(self.stats.errors.values()) == before[3]
            and len(problems) == before[4]
            and len(self._stored) == templates + options_templates
        )
        if clean and len(raw) <= _MAX_SEEN_SET_BYTES:
            if len(self._seen_template_sets) >= _MAX_SEEN_SETS:
                self._seen_template_sets.clear()
            self._seen_template_sets[seen_key] = _SeenSet(tuple(self._stored), templates, options_templates)
        else:
            self._seen_template_sets.pop(seen_key, None)

    def _v9_templates(
        self, header: _Header, body: memoryview, base: int, rows: list[Row], problems: list[_Problem]
    ) -> None:
        n = len(body)
        p = 0
        while n - p >= 4:
            template_id, count = _HH.unpack_from(body, p)
            if template_id < ie.MIN_DATA_SET_ID:
                if not any(body[p:]):
                    break  # padding
                problems.append(
                    _Problem(
                        "bad template id",
                        f"template id {template_id} is below 256 in a template set",
                        base + p,
                    )
                )
                return
            need = 4 + 4 * count
            if p + need > n:
                problems.append(
                    _Problem(
                        "template past set end",
                        f"template {template_id} declares {count} fields, more than its set holds",
                        base + p,
                    )
                )
                return
            fields = tuple(
                TemplateField(t, length) for t, length in struct.iter_unpack("!HH", body[p + 4 : p + need])
            )
            p += need
            self.stats.templates += 1
            if not fields:
                self.stats.count("template without fields")
                continue
            self._store(header, template_id, Template(9, template_id, fields), rows, problems, base + p)

    def _v9_options_templates(
        self, header: _Header, body: memoryview, base: int, rows: list[Row], problems: list[_Problem]
    ) -> None:
        n = len(body)
        p = 0
        while n - p >= 6:
            template_id, scope_length, option_length = _HHH.unpack_from(body, p)
            if template_id < ie.MIN_DATA_SET_ID:
                if not any(body[p:]):
                    break
                problems.append(
                    _Problem("bad template id", f"options template id {template_id} is below 256", base + p)
                )
                return
            if scope_length % 4 or option_length % 4:
                problems.append(
                    _Problem(
                        "bad options template",
                        f"options template {template_id} has scope length {scope_length} / option length "
                        f"{option_length}, not multiples of 4",
                        base + p,
                    )
                )
                return
            need = 6 + scope_length + option_length
            if p + need > n:
                problems.append(
                    _Problem(
                        "template past set end",
                        f"options template {template_id} runs past the end of its set",
                        base + p,
                    )
                )
                return
            fields = tuple(
                TemplateField(t, length) for t, length in struct.iter_unpack("!HH", body[p + 6 : p + need])
            )
            p += need
            self.stats.options_templates += 1
            template = Template(9, template_id, fields, scope_length // 4, is_options=True)
            self._store(header, template_id, template, rows, problems, base + p)

    def _ipfix_templates(
        self,
        header: _Header,
        body: memoryview,
        base: int,
        rows: list[Row],
        problems: list[_Problem],
        *,
        options: bool,
    ) -> None:
        n = len(body)
        p = 0
        set_id = ie.IPFIX_OPTIONS_TEMPLATE_SET_ID if options else ie.IPFIX_TEMPLATE_SET_ID
        what = "options template" if options else "template"
        while n - p >= 4:
            template_id, count = _HH.unpack_from(body, p)
            if count == 0:
                # RFC 7011 section 8.1: a withdrawal; the set id itself withdraws them all.
                p += 4
                if template_id == set_id:
                    self.stats.withdrawn += self.cache.withdraw_all(
                        header.exporter, header.domain, options=options
                    )
                elif template_id >= ie.MIN_DATA_SET_ID:
                    if self.cache.withdraw((header.exporter, header.domain, template_id)):
                        self.stats.withdrawn += 1
                        self._bindings.pop((header.exporter, header.domain, template_id), None)
                    else:
                        self.stats.count("withdrawal of unknown template")
                elif template_id == 0 and not any(body[p - 4 :]):
                    break  # padding
                else:
                    self.stats.count("bad withdrawal")
                continue
            if template_id < ie.MIN_DATA_SET_ID:
                problems.append(
                    _Problem("bad template id", f"{what} id {template_id} is below 256", base + p)
                )
                return
            start = p
            p += 4
            scope = 0
            if options:
                if n - p < 2:
                    problems.append(
                        _Problem("template past set end", f"{what} {template_id} is cut short", base + start)
                    )
                    return
                scope = (body[p] << 8) | body[p + 1]
                p += 2
                if scope > count:
                    problems.append(
                        _Problem(
                            "bad options template",
                            f"options template {template_id} has {scope} scope fields of {count}",
                            base + start,
                        )
                    )
                    return
            fields: list[TemplateField] = []
            for _ in range(count):
                if n - p < 4:
                    break
                element, length = _HH.unpack_from(body, p)
                p += 4
                enterprise = 0
                if element & ie.ENTERPRISE_BIT:
                    if n - p < 4:
                        break
                    enterprise = int.from_bytes(body[p : p + 4], "big")
                    element &= ~ie.ENTERPRISE_BIT
                    p += 4
                fields.append(TemplateField(element, length, enterprise))
            if len(fields) < count:
                problems.append(
                    _Problem(
                        "template past set end",
                        f"{what} {template_id} declares {count} fields, more than its set holds",
                        base + start,
                    )
                )
                return
            if options:
                self.stats.options_templates += 1
            else:
                self.stats.templates += 1
            template = Template(10, template_id, tuple(fields), scope, is_options=options)
            self._store(header, template_id, template, rows, problems, base + start)

    def _store(
        self,
        header: _Header,
        template_id: int,
        template: Template,
        rows: list[Row],
        problems: list[_Problem],
        offset: int,
    ) -> None:
        key = (header.exporter, header.domain, template_id)
        try:
            changed = self.cache.put(key, template)
        except OverflowError:
            self.stats.count("template cache full")
            return
        stored = self._templates.get(key)
        if stored is not None:
            self._stored.append((key, stored))
        if changed:
            self.stats.templates_changed += 1
            self._bindings.pop(key, None)
        if self.cache.has_pending(key):
            for entry in self.cache.take_pending(key):
                held = _Header(
                    entry.version,
                    header.exporter,
                    header.domain,
                    entry.sequence,
                    entry.export_time_s,
                    entry.sys_uptime_ms,
                    entry.received_at_ns,
                )
                self.stats.pending_released += 1
                self._data_set(held, template_id, memoryview(entry.body), -1, rows, problems)

    # --- data ------------------------------------------------------------------------------

    def _data_set(
        self,
        header: _Header,
        set_id: int,
        body: memoryview,
        offset: int,
        rows: list[Row],
        problems: list[_Problem],
    ) -> None:
        key = (header.exporter, header.domain, set_id)
        template = self._templates.get(key)
        if template is None:
            self.stats.pending += 1
            self.stats.pending_dropped += self.cache.add_pending(
                key,
                header.version,
                header.received_at_ns,
                header.sequence,
                header.export_time_s,
                header.sys_uptime_ms,
                bytes(body),
            )
            return
        if template.is_options:
            self._options_data(header, template, body, offset, problems)
            return
        binding = self._bindings.get(key)
        if (
            binding is None
            or binding.template is not template
            or binding.state_generation != self.cache.state_generation
        ):
            binding = self._bind(key, template)
        ref_ms = header.export_time_s * 1000
        if header.version == 9:
            ref_up: int | None = header.sys_uptime_ms
        elif binding.init_ms is not None:
            ref_up = (ref_ms - binding.init_ms) & 0xFFFFFFFF
        else:
            ref_up = None
        sink = self._sink
        if sink is not None:
            plan = binding.plan
            if plan is not None:
                size = binding.record_length
                n = len(body) // size
                if n:
                    sink.add_set(
                        plan,
                        body if len(body) == n * size else body[: n * size],
                        n,
                        header,
                        binding.set_rate,
                        binding.snapshot,
                        -1 if ref_up is None else ref_up,
                    )
                    if not binding.rate_known:
                        self.stats.unknown_sampling += n
                return
            rows = []  # the reference's rows, handed to the batch in their place below
        fixed = binding.fixed
        if fixed is not None:
            size = binding.record_length
            tuples: Iterable[tuple[Any, ...]] = fixed.iter_unpack(body[: len(body) // size * size])
            overran = False
        elif binding.record_length:
            tuples, overran = binding.layout.rows(body)
        else:
            return  # a template whose records are empty (counted when it was compiled)
        resolver = binding.resolver
        count = binding.converter(
            tuples,
            rows,
            header.received_at_ns,
            header.exporter,
            header.domain,
            header.sequence,
            ref_ms,
            ref_up,
            binding.set_rate,
            resolver,
        )
        if not binding.rate_known:
            self.stats.unknown_sampling += count
        if resolver.unknown:
            self.stats.unknown_sampling += resolver.unknown
            resolver.unknown = 0
        if resolver.out_of_range_values:
            self.stats.count("value out of range", resolver.out_of_range_values)
            resolver.out_of_range_values = 0
        if sink is not None:
            sink.add_rows(rows, header.received_at_ns)
        if overran:
            problems.append(
                _Problem(
                    "record past set end",
                    f"a record of template {set_id} runs past the end of its data set; "
                    f"{count} records before it were kept",
                    offset,
                )
            )

    def _bind(self, key: TemplateKey, template: Template) -> _Binding:
        """Compile (or reuse) the template's layout and fix the set-level sampling fallback."""
        layout = self._compiled.get(template)
        if layout is None:
            if len(self._compiled) >= _MAX_LAYOUTS:
                self._compiled.clear()
            layout = self._compiled[template] = compile_layout(template)
            if layout.unusable:
                self.stats.count("unusable field length", len(layout.unusable))
            if layout.fixed is not None and layout.record_length == 0:
                self.stats.count("template with empty records")
        plan = None
        if layout.fixed is not None and layout.record_length:
            plan = self._plans.get(template)
            if plan is None:
                if len(self._plans) >= _MAX_LAYOUTS:
                    self._plans.clear()
                plan = self._plans[template] = FixedPlan(layout)
        state = self.cache.peek_exporter_state(key[0], key[1])
        resolver = RateResolver(state, self._overrides.get(key[0]))
        if layout.rate_mode == "set":
            set_rate, known = resolver.default()
        else:
            set_rate, known = 1, True
        binding = _Binding(
            template=template,
            layout=layout,
            fixed=layout.fixed if layout.record_length else None,
            record_length=layout.record_length,
            converter=layout.converter,
            state_generation=self.cache.state_generation,
            init_ms=state.system_init_ms if state is not None else None,
            set_rate=set_rate,
            rate_known=known,
            resolver=resolver,
            plan=plan,
            snapshot=(
                RateSnapshot.of(state, resolver.default())
                if plan is not None and layout.rate_mode == "record"
                else None
            ),
        )
        if len(self._bindings) >= _MAX_LAYOUTS:
            self._bindings.clear()
        self._bindings[key] = binding
        return binding

    def _options_data(
        self, header: _Header, template: Template, body: memoryview, offset: int, problems: list[_Problem]
    ) -> None:
        records, overran = option_values(template, body)
        if records:
            state = self.cache.exporter_state(header.exporter, header.domain)
            if state is None:
                self.stats.options_records += len(records)
                self.stats.count("exporter state full", len(records))
                return
            before = (dict(state.sampling), state.system_init_ms)
            for values in records:
                self.stats.options_records += 1
                if learn(state, values):
                    self.stats.sampling_updates += 1
            if (state.sampling, state.system_init_ms) != before:
                self.cache.state_changed()
        if overran:
            problems.append(
                _Problem(
                    "record past set end",
                    f"an options record of template {template.template_id} runs past the end of its set",
                    offset,
                )
            )

    # --- errors ----------------------------------------------------------------------------

    def _fatal(
        self,
        protocol: str,
        exporter: str,
        offset: int,
        kind: str,
        message: str,
        rows: list[Row] | None = None,
    ) -> NetflowDecodeError:
        self.stats.count(kind)
        if rows:
            self.stats.data_records += len(rows)
        return NetflowDecodeError(
            message, protocol=protocol, exporter=exporter, offset=offset, kind=kind, records=rows
        )


def option_values(template: Template, body: memoryview | bytes) -> tuple[list[dict[int, int]], bool]:
    """The unsigned IANA fields of each options record, by element id; True if a record overran.

    NetFlow v9 scope fields are RFC 3954 scope types, not elements, and are skipped; IPFIX scope
    fields are elements (selectorId 302 names the sampler that the record describes).
    """
    fields = template.fields
    skip = template.scope_count if template.version == 9 else 0
    min_length = sum(1 if f.length == ie.VARIABLE_LENGTH else f.length for f in fields)
    out: list[dict[int, int]] = []
    if min_length <= 0:
        return out, False
    end = len(body)
    pos = 0
    while end - pos >= min_length:
        values: dict[int, int] = {}
        for i, f in enumerate(fields):
            length = f.length
            if length == ie.VARIABLE_LENGTH:
                if pos >= end:
                    return out, True
                length = body[pos]
                pos += 1
                if length == 255:
                    if pos + 2 > end:
                        return out, True
                    length = (body[pos] << 8) | body[pos + 1]
                    pos += 2
            if pos + length > end:
                return out, True
            if (
                i >= skip
                and f.enterprise == 0
                and f.element in _OPTION_ELEMENTS
                and 1 <= length <= 8
                and f.element not in values
            ):
                values[f.element] = int.from_bytes(body[pos : pos + length], "big")
            pos += length
        out.append(values)
    return out, False
