"""Loss accounting from sequence numbers, per exporter stream and 5-minute interval.

Streams and what their sequence counts:

* sFlow v5: datagrams per (agent, sub-agent); flow samples per (agent, sub-agent, source id).
* IPFIX: data records per (exporter, observation domain) (RFC 7011 section 3.1). The records of
  a message are the flow rows plus the options records it carried; a message whose sets had to
  wait for their template has an unknown record count, and the gap after it is not judged.
  Exporters differ on whether a message's sequence counts its own records (softflowd 1.1 does,
  pmacct and the RFC do not); each stream learns which from its first in-order pair.
* NetFlow v9: export packets per (exporter, source id) (RFC 3954 section 5.1).

A sequence ahead of the expected one by at most ``max_gap`` is a loss of that many units,
counted in the interval of the datagram that revealed it. One behind by at most
``reorder_window`` arrived late (it fills a gap counted earlier in the same file) or is a
duplicate. Anything further behind, a jump ahead beyond ``max_gap``, or an agent uptime
that went back, is an exporter restart: the stream starts over and nothing is counted lost
(a restart is not 4 billion lost datagrams). Arithmetic is modulo 2**32.

State carries across files (``LAKE/_state/loss.json``) so a gap at a file boundary is seen.
For each file the tracker also returns the state its streams had *before* the file; the ledger
keeps it, so re-processing that file later (``--force``) starts from the same point and gives
the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MOD = 1 << 32
HALF = 1 << 31
INTERVAL_NS = 300 * 1_000_000_000
UPTIME_SLACK_MS = 2_000
UPTIME_WRAP_GUARD_MS = 86_400_000

# kind -> (max_gap, reorder_window)
LIMITS: dict[str, tuple[int, int]] = {
    "datagrams": (1 << 20, 64),
    "samples": (1 << 24, 1024),
    "records": (1 << 26, 1 << 16),
}

# row slots
DG_RECEIVED, DG_MISSING, S_RECEIVED, S_MISSING = 0, 1, 2, 3


@dataclass(slots=True)
class Stream:
    kind: str
    head: int | None = None  # last in-order sequence number
    span: int | None = 1  # units the head message carried (records for IPFIX); None = unknown
    mode: str = ""  # IPFIX: "" undecided, "exclusive" (RFC) or "inclusive" (softflowd)
    uptime_ms: int | None = None
    last_ns: int = 0
    gaps: list[list[int]] = field(default_factory=list)  # in-file gaps: [start, length, row id]

    def to_json(self) -> list[Any]:
        return [self.kind, self.head, self.span, self.mode, self.uptime_ms, self.last_ns]

    @classmethod
    def from_json(cls, value: list[Any]) -> Stream:
        kind, head, span, mode, uptime, last_ns = value
        return cls(str(kind), head, span, str(mode), uptime, int(last_ns))


RowKey = tuple[int, str, str, int]  # interval start ns, protocol, exporter, observation domain


@dataclass
class LossEvents:
    restarts: int = 0
    late: int = 0  # arrived after a gap was counted, and filled it
    duplicates: int = 0  # behind the head without a matching gap (duplicate, or late across files)
    resyncs: int = 0  # jumps too large to be loss
    unverified: int = 0  # gaps not judged because the record count before them was unknown


class LossTracker:
    def __init__(self, state: dict[str, Any] | None = None, interval_ns: int = INTERVAL_NS) -> None:
        self.interval_ns = interval_ns
        self.streams: dict[str, Stream] = {}
        for key, value in (state or {}).items():
            try:
                self.streams[key] = Stream.from_json(value)
            except (TypeError, ValueError):
                continue  # an unreadable entry only restarts gap detection for that stream
        self.rows: dict[RowKey, list[int]] = {}
        self._row_ids: list[RowKey] = []
        self._row_index: dict[RowKey, int] = {}
        self._measurable: dict[RowKey, list[bool]] = {}
        self._before: dict[str, list[Any] | None] = {}
        self._shadow: dict[str, Stream | None] = {}
        self._sflow_names: dict[tuple[str, int], tuple[str, str]] = {}  # (agent, sub agent) -> stream keys
        self.events = LossEvents()

    # --- per file -------------------------------------------------------------------------

    def begin_file(self, predecessors: dict[str, list[Any] | None] | None = None) -> None:
        """Start a file; ``predecessors`` (from the ledger) replays it from its original starting state."""
        self.rows = {}
        self._row_ids = []
        self._row_index = {}
        self._measurable = {}
        self._before = {}
        self._shadow = {}
        self.events = LossEvents()
        for stream in self.streams.values():
            stream.gaps = []
        for key, value in (predecessors or {}).items():
            self._shadow[key] = self.streams.get(key)
            if value is None:
                self.streams.pop(key, None)
            else:
                self.streams[key] = Stream.from_json(value)

    def end_file(self) -> tuple[list[dict[str, Any]], dict[str, list[Any] | None]]:
        """(FLOW_LOSS rows of this file, state of its streams before it)."""
        for stream_key, previous in self._shadow.items():
            current = self.streams.get(stream_key)
            if previous is not None and (current is None or previous.last_ns > current.last_ns):
                self.streams[stream_key] = previous  # the global state is newer than this re-processed file
        rows = []
        for key, counts in sorted(self.rows.items()):
            measurable = self._measurable[key]
            interval, protocol, exporter, domain = key
            rows.append(
                {
                    "interval_start": interval,
                    "flow_protocol": protocol,
                    "exporter_address": exporter,
                    "observation_domain": domain,
                    "datagrams_received": counts[DG_RECEIVED],
                    "datagrams_missing": counts[DG_MISSING] if measurable[DG_MISSING] else None,
                    "samples_received": counts[S_RECEIVED] if measurable[S_RECEIVED] else None,
                    "samples_missing": counts[S_MISSING] if measurable[S_MISSING] else None,
                }
            )
        return rows, dict(self._before)

    def state(self) -> dict[str, Any]:
        return {key: stream.to_json() for key, stream in self.streams.items()}

    # --- observations ---------------------------------------------------------------------

    def _row(
        self, received_ns: int, protocol: str, exporter: str, domain: int, measurable: tuple[bool, ...]
    ) -> int:
        key = (received_ns - received_ns % self.interval_ns, protocol, exporter, domain)
        row = self._row_index.get(key)
        if row is None:
            row = self._row_index[key] = len(self._row_ids)
            self._row_ids.append(key)
            self.rows[key] = [0, 0, 0, 0]
            self._measurable[key] = [True, *measurable]
        else:
            flags = self._measurable[key]
            for i, m in enumerate(measurable, start=1):
                flags[i] = flags[i] or m
        return row

    def _stream(self, key: str, kind: str) -> Stream:
        stream = self.streams.get(key)
        if key not in self._before:
            self._before[key] = stream.to_json() if stream is not None else None
        if stream is None:
            stream = self.streams[key] = Stream(kind)
        return stream

    def _observe(
        self,
        stream: Stream,
        seq: int,
        span: int | None,
        uptime_ms: int | None,
        received_ns: int,
        row: int,
        slot: int,
    ) -> None:
        """Account one message/sample with sequence ``seq`` carrying ``span`` units."""
        head = stream.head
        if head is None:
            self._advance(stream, seq, span, uptime_ms, received_ns)
            return
        if (
            uptime_ms is not None
            and stream.uptime_ms is not None
            and uptime_ms + UPTIME_SLACK_MS < stream.uptime_ms
        ):
            wrapped = stream.uptime_ms > MOD - UPTIME_WRAP_GUARD_MS and uptime_ms < UPTIME_WRAP_GUARD_MS
            if not wrapped:
                if stream.kind != "samples":
                    self.events.restarts += 1  # one per exporter stream, not one per sFlow source
                stream.gaps = []
                self._advance(stream, seq, span, uptime_ms, received_ns)
                return
        step = span if stream.mode == "inclusive" else stream.span
        if step is None:
            self.events.unverified += 1  # a record count on the way is unknown: cannot judge this gap
            self._advance(stream, seq, span, uptime_ms, received_ns)
            return
        d = (seq - head - step) % MOD
        if stream.kind == "records" and not stream.mode and span is not None and span != stream.span:
            if d == 0:
                stream.mode = "exclusive"
            elif (seq - head - span) % MOD == 0:
                stream.mode = "inclusive"
                d = 0
        max_gap, window = LIMITS[stream.kind]
        if d == 0:
            self._advance(stream, seq, span, uptime_ms, received_ns)
        elif d < HALF:
            if d > max_gap:
                self.events.resyncs += 1
            else:
                self.rows[self._row_ids[row]][slot] += d
                if len(stream.gaps) < 4096:
                    stream.gaps.append([(head + step) % MOD, d, row])
            self._advance(stream, seq, span, uptime_ms, received_ns)
        else:
            back = MOD - d
            if back > window:
                if stream.kind != "samples":
                    self.events.restarts += 1
                stream.gaps = []
                self._advance(stream, seq, span, uptime_ms, received_ns)
            elif not self._fill(stream, seq, span or 1, slot) and stream.kind == "records":
                # behind without a gap to fill: exporters disagree on whether options records
                # count; follow the exporter's numbering instead of calling it loss
                self.events.resyncs += 1
                self._advance(stream, seq, span, uptime_ms, received_ns)

    def _fill(self, stream: Stream, seq: int, units: int, slot: int) -> bool:
        """A late arrival: take it out of the in-file gap that counted it missing."""
        for gap in stream.gaps:
            start, length, row = gap
            offset = (seq - start) % MOD
            if offset < length:
                taken = min(units, length - offset)
                self.rows[self._row_ids[row]][slot] -= taken
                if offset == 0:
                    gap[0], gap[1] = (start + taken) % MOD, length - taken
                elif offset + taken == length:
                    gap[1] = offset
                else:
                    gap[1] = offset
                    stream.gaps.append([(seq + taken) % MOD, length - offset - taken, row])
                self.events.late += 1
                return True
        if stream.kind != "records":
            self.events.duplicates += 1
        return False

    @staticmethod
    def _advance(stream: Stream, seq: int, span: int | None, uptime_ms: int | None, received_ns: int) -> None:
        stream.head = seq
        stream.span = span
        stream.uptime_ms = uptime_ms
        stream.last_ns = received_ns

    # --- protocol entry points -----------------------------------------------------------

    def sflow_datagram(
        self,
        received_ns: int,
        agent: str,
        sub_agent: int,
        sequence: int,
        uptime_ms: int,
        sample_sequences: list[tuple[int, int, int]],
    ) -> None:
        """One sFlow datagram and its flow samples as (source id type, source id index, sequence)."""
        row = self._row(received_ns, "sflow5", agent, sub_agent, (True, True, True))
        counts = self.rows[self._row_ids[row]]
        counts[DG_RECEIVED] += 1
        counts[S_RECEIVED] += len(sample_sequences)
        base = f"sflow5|{agent}|{sub_agent}"
        self._observe(
            self._stream(base + "|d", "datagrams"), sequence, 1, uptime_ms, received_ns, row, DG_MISSING
        )
        streams = self.streams
        before = self._before
        current: tuple[int, int] | None = None
        stream: Stream | None = None
        for source_type, source_index, seq in sample_sequences:
            if current != (source_type, source_index):  # samples of one source usually come together
                current = (source_type, source_index)
                key = f"{base}|s{source_type}:{source_index}"
                stream = streams.get(key)
                if stream is None or key not in before or stream.head is None:
                    stream = self._stream(key, "samples")
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)
                    continue
                if stream.uptime_ms is not None and uptime_ms + UPTIME_SLACK_MS < stream.uptime_ms:
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)
                    continue
            assert stream is not None and stream.head is not None
            if seq == (stream.head + 1) % MOD:
                stream.head = seq  # the common case, kept cheap
                stream.uptime_ms = uptime_ms
                stream.last_ns = received_ns
            else:
                self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)

    def sflow_datagram_runs(
        self,
        received_ns: int,
        agent: str,
        sub_agent: int,
        sequence: int,
        uptime_ms: int,
        runs: Sequence[tuple[int, int, int, int]],
    ) -> None:
        """``sflow_datagram`` with the flow samples given as runs (source id type, source id index,
        first sequence, count): ``count`` samples of one source numbered ``first``, ``first + 1``, ...
        (what the C decoder hands over, usually one run per datagram).

        The result is exactly that of ``sflow_datagram`` on the samples one by one. Shortcuts, each
        taken only where the general code would do the same: an existing row of this stream is
        counted without ``_row`` (sFlow rows are created fully measurable, so nothing changes there);
        a datagram sequence that is the next one in order, with the agent's uptime not going back,
        only advances the head (what ``_observe`` does for it); the first sample of a run takes the
        per-sample path, and when it leaves the stream's head on it (the usual case) the rest of the
        run, each of which would take the cheap in-order step, is done at once; anything else walks
        the rest of the run sample by sample.
        """
        n_samples = 0
        for run in runs:
            n_samples += run[3]
        row_key = (received_ns - received_ns % self.interval_ns, "sflow5", agent, sub_agent)
        row = self._row_index.get(row_key)
        if row is None:
            row = self._row(received_ns, "sflow5", agent, sub_agent, (True, True, True))
        counts = self.rows[row_key]
        counts[DG_RECEIVED] += 1
        counts[S_RECEIVED] += n_samples
        names = self._sflow_names.get((agent, sub_agent))
        if names is None:
            base = f"sflow5|{agent}|{sub_agent}"
            names = self._sflow_names[(agent, sub_agent)] = (base, base + "|d")
        base, datagram_key = names
        streams = self.streams
        before = self._before
        stream = streams.get(datagram_key)
        if (
            stream is not None
            and stream.head is not None
            and datagram_key in before
            and stream.span == 1
            and stream.mode != "inclusive"
            and sequence == (stream.head + 1) % MOD
            and (stream.uptime_ms is None or uptime_ms + UPTIME_SLACK_MS >= stream.uptime_ms)
        ):
            stream.head = sequence
            stream.uptime_ms = uptime_ms
            stream.last_ns = received_ns
        else:
            self._observe(
                self._stream(datagram_key, "datagrams"), sequence, 1, uptime_ms, received_ns, row, DG_MISSING
            )
        current: tuple[int, int] | None = None
        stream = None
        for source_type, source_index, first, count in runs:
            seq = first
            done = False
            if current != (source_type, source_index):
                current = (source_type, source_index)
                key = f"{base}|s{source_type}:{source_index}"
                stream = streams.get(key)
                if stream is None or key not in before or stream.head is None:
                    stream = self._stream(key, "samples")
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)
                    done = True
                elif stream.uptime_ms is not None and uptime_ms + UPTIME_SLACK_MS < stream.uptime_ms:
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)
                    done = True
            assert stream is not None and stream.head is not None
            if not done:
                if seq == (stream.head + 1) % MOD:
                    stream.head = seq
                    stream.uptime_ms = uptime_ms
                    stream.last_ns = received_ns
                else:
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)
            if count == 1:
                continue
            if stream.head == first:  # every further sample of the run is the next in order
                stream.head = (first + count - 1) % MOD
                stream.uptime_ms = uptime_ms
                stream.last_ns = received_ns
                continue
            for k in range(1, count):
                seq = (first + k) % MOD
                assert stream.head is not None
                if seq == (stream.head + 1) % MOD:
                    stream.head = seq
                    stream.uptime_ms = uptime_ms
                    stream.last_ns = received_ns
                else:
                    self._observe(stream, seq, 1, uptime_ms, received_ns, row, S_MISSING)

    def ipfix_message(
        self, received_ns: int, exporter: str, domain: int, sequence: int, records: int | None
    ) -> None:
        """One IPFIX message carrying ``records`` data records (None when some could not be counted)."""
        row = self._row(received_ns, "ipfix", exporter, domain, (False, True, True))
        counts = self.rows[self._row_ids[row]]
        counts[DG_RECEIVED] += 1
        counts[S_RECEIVED] += records or 0
        key = f"ipfix|{exporter}|{domain}|r"
        self._observe(self._stream(key, "records"), sequence, records, None, received_ns, row, S_MISSING)

    def netflow9_packet(
        self, received_ns: int, exporter: str, source_id: int, sequence: int, uptime_ms: int, records: int
    ) -> None:
        """One NetFlow v9 export packet (its sequence counts packets)."""
        row = self._row(received_ns, "netflow9", exporter, source_id, (True, True, False))
        counts = self.rows[self._row_ids[row]]
        counts[DG_RECEIVED] += 1
        counts[S_RECEIVED] += records
        key = f"netflow9|{exporter}|{source_id}|d"
        self._observe(self._stream(key, "datagrams"), sequence, 1, uptime_ms, received_ns, row, DG_MISSING)
