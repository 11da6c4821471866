"""The member-to-member matrix, aggregated while flow samples are decoded.

This is the hot path (an EPIX-sized exchange sends ~35k samples/s). The trick is to aggregate
on what the sample already carries: (5-minute interval, agent, VLAN, IP version, source MAC,
destination MAC) -> estimated bytes, estimated packets, sample count. One tuple, one dict
lookup and three additions per sample; no enrichment per sample. A 5-minute bin of a busy
exchange has at most a few tens of thousands of such keys, and only those keys are mapped to
members, ports and sites when the rows are produced (``rows``), where unknown MACs are also
counted for ``unknown_macs``.

Estimates follow sFlow's scaling: bytes = frame length x sampling rate, packets = sampling rate.

With the C decoder (``ingest.sflow.fast``) the same raw key is summed in C while the datagrams are
decoded (``FlowBatch.groups``, exact 128-bit sums) and folded in here once per file with
``add_groups``; ``add_samples`` is the pure path's way in. Both lead to the same ``raw`` and rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from ingest.enrich import Enricher
from ingest.loss import INTERVAL_NS
from ingest.sflow.decode import FlowSample

_F = FlowSample._fields
_KEY_FIELDS = itemgetter(
    _F.index("vlan"),
    _F.index("src_vlan"),
    _F.index("ip_version"),
    _F.index("src_mac"),
    _F.index("dst_mac"),
    _F.index("sampling_rate"),
    _F.index("frame_length"),
)

RawKey = tuple[int, str, int | None, int | None, str | None, str | None]


def sample_vlan(tag: int | None, switch_vlan: int | None) -> int | None:
    """The lake's ``vlan``: the sampled frame's 802.1Q tag, else the extended-switch source VLAN."""
    return tag if tag is not None else switch_vlan


def valid_vlan(vlan: int | None) -> int | None:
    """A VLAN id the lake can hold (0-4095); agents put 0xFFFFFFFF and the like for "unknown"."""
    return vlan if vlan is not None and 0 <= vlan <= 4095 else None


class MatrixAggregator:
    def __init__(self, interval_ns: int = INTERVAL_NS) -> None:
        self.interval_ns = interval_ns
        self.raw: dict[RawKey, list[int]] = {}
        self.samples = 0

    def add_samples(self, received_ns: int, agent: str, samples: Sequence[FlowSample]) -> None:
        """Aggregate the flow samples of one datagram (all share its arrival time and agent)."""
        interval = received_ns - received_ns % self.interval_ns
        raw = self.raw
        get = raw.get
        fields = _KEY_FIELDS
        for sample in samples:
            tag, switch_vlan, ip_version, src, dst, rate, length = fields(sample)
            key = (interval, agent, tag if tag is not None else switch_vlan, ip_version, src, dst)
            acc = get(key)
            if length is None:
                length = 0
            if acc is None:
                raw[key] = [length * rate, rate, 1]
            else:
                acc[0] += length * rate
                acc[1] += rate
                acc[2] += 1
        self.samples += len(samples)

    def add_groups(
        self, groups: Iterable[tuple[int, str, int | None, int | None, str | None, str | None, int, int, int]]
    ) -> None:
        """Fold sums made elsewhere (``FlowBatch.groups``: the C decoder aggregates the same raw key
        while it decodes) into ``raw``: (interval start, agent, VLAN, IP version, source MAC,
        destination MAC, estimated bytes, estimated packets, samples)."""
        raw = self.raw
        for interval, agent, vlan, ip_version, src, dst, est_bytes, est_packets, count in groups:
            key = (interval, agent, vlan, ip_version, src, dst)
            acc = raw.get(key)
            if acc is None:
                raw[key] = [est_bytes, est_packets, count]
            else:
                acc[0] += est_bytes
                acc[1] += est_packets
                acc[2] += count
            self.samples += count

    def rows(self, enricher: Enricher) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(MEMBER_MATRIX rows, UNKNOWN_MACS rows); interval_start as ns since the epoch."""
        raw: dict[RawKey, list[int]] = {}
        for (interval, agent, vlan, ip_version, src, dst), acc in self.raw.items():
            clean = (interval, agent, valid_vlan(vlan), ip_version, src, dst)
            have = raw.get(clean)
            if have is None:
                raw[clean] = list(acc)
            else:
                for i in range(3):
                    have[i] += acc[i]
        lookups = enricher.member_ports({(key[4], key[2]) for key in raw} | {(key[5], key[2]) for key in raw})
        matrix: dict[tuple[Any, ...], list[int]] = {}
        unknown: dict[tuple[Any, ...], list[int]] = {}
        report_unknown = enricher.has_config
        sites: dict[str, str | None] = {}
        for (interval, agent, vlan, ip_version, src, dst), (est_bytes, est_packets, count) in raw.items():
            src_member, src_port = lookups[(src, vlan)]
            dst_member, dst_port = lookups[(dst, vlan)]
            site = sites.get(agent)
            if agent not in sites:
                site = sites[agent] = enricher.site_for_agent(agent)
            mkey = (interval, site, agent, vlan, ip_version, src_member, dst_member, src_port, dst_port)
            macc = matrix.get(mkey)
            if macc is None:
                matrix[mkey] = [est_bytes, est_packets, count]
            else:
                macc[0] += est_bytes
                macc[1] += est_packets
                macc[2] += count
            if report_unknown:
                for mac, member, direction in ((src, src_member, "src"), (dst, dst_member, "dst")):
                    if member is None and mac is not None:
                        ukey = (interval, agent, vlan, mac, direction)
                        uacc = unknown.get(ukey)
                        if uacc is None:
                            unknown[ukey] = [count, est_bytes]
                        else:
                            uacc[0] += count
                            uacc[1] += est_bytes
        matrix_rows = [
            {
                "interval_start": k[0],
                "site": k[1],
                "exporter_address": k[2],
                "vlan": k[3],
                "ip_version": k[4],
                "src_member_id": k[5],
                "dst_member_id": k[6],
                "src_port_id": k[7],
                "dst_port_id": k[8],
                "estimated_bytes": v[0],
                "estimated_packets": v[1],
                "sample_count": v[2],
            }
            for k, v in sorted(
                matrix.items(), key=lambda kv: tuple("" if x is None else str(x) for x in kv[0])
            )
        ]
        unknown_rows = [
            {
                "interval_start": k[0],
                "exporter_address": k[1],
                "vlan": k[2],
                "mac": k[3],
                "direction": k[4],
                "sample_count": v[0],
                "estimated_bytes": v[1],
            }
            for k, v in sorted(
                unknown.items(), key=lambda kv: tuple("" if x is None else str(x) for x in kv[0])
            )
        ]
        return matrix_rows, unknown_rows
