"""The member-to-member matrix, aggregated while flow samples are decoded.

This is the hot path (an EPIX-sized exchange sends ~35k samples/s). The trick is to aggregate
on what the sample already carries: (5-minute interval, agent, VLAN, IP version, source MAC,
destination MAC) -> estimated bytes, estimated packets, sample count. One tuple, one dict
lookup and three additions per sample; no enrichment per sample. A 5-minute bin of a busy
exchange has at most a few tens of thousands of such keys, and only those keys are mapped to
members, ports and sites when the rows are produced (``rows``), where unknown MACs are also
counted for ``unknown_macs``.

Estimates follow sFlow's scaling: bytes = frame length x sampling rate, packets = sampling rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import polars as pl

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
_GROUP_KEYS = ["i", "a", "v", "p", "s", "d"]


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
        self._pending: list[pl.DataFrame] = []  # add_columns' groups not yet in raw (see settle)
        self._pending_bound = 0  # an upper bound of their estimated bytes
        self._pending_rows = 0

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

    def add_columns(
        self,
        received_ns: np.ndarray,
        agent_codes: np.ndarray,
        agents: Sequence[str],
        vlan: np.ndarray,
        ip_version: np.ndarray,
        src_mac: np.ndarray,
        dst_mac: np.ndarray,
        rate: np.ndarray,
        length: np.ndarray,
    ) -> None:
        """Aggregate flow samples given as columns (the C decoder's path), with what ``add_samples``
        would have done for them one by one: the same keys, the same sums.

        One entry per sample: arrival time (ns), index into ``agents``, the key's VLAN (sampled tag,
        else the extended-switch source VLAN, unvalidated as in ``add_samples``), IP version, and the
        MACs as 48-bit integers, each -1 for None; sampling rate, and frame length (0 for None).

        A polars group-by sums each call's samples in 64-bit integers when they provably fit;
        the groups wait (``pending``) until ``settle`` folds them into ``raw`` once per file, so a
        file of many batches makes each key's Python tuple once. Sums that could pass 2**63 (a
        sampling rate and frame length near 2**32 each) are added sample by sample with Python
        integers instead, as ``add_samples`` does.
        """
        n = len(rate)
        if n == 0:
            return
        interval = received_ns - received_ns % self.interval_ns
        est = length.astype(np.uint64) * rate.astype(np.uint64)  # exact: both below 2**32
        bound = int(est.max()) * n
        if bound >= 1 << 63:
            self.settle()
            self._fold(
                (int(i), agents[a], int(v), int(p), int(s), int(d), int(e), int(r), 1)
                for i, a, v, p, s, d, e, r in zip(
                    interval, agent_codes, vlan, ip_version, src_mac, dst_mac, est, rate, strict=True
                )
            )
            self.samples += n
            return
        frame = pl.DataFrame(
            {
                "i": interval.astype(np.int64),
                "a": agent_codes.astype(np.int64),
                "v": vlan.astype(np.int64),
                "p": ip_version.astype(np.int64),
                "s": src_mac.astype(np.int64),
                "d": dst_mac.astype(np.int64),
                "e": est.astype(np.int64),
                "r": rate.astype(np.int64),
            }
        )
        groups = frame.group_by(_GROUP_KEYS).agg(pl.col("e").sum(), pl.col("r").sum(), pl.len())
        names = pl.Series(values=list(agents), dtype=pl.String)
        self._pending.append(groups.with_columns(a=names.gather(groups["a"])))
        self._pending_bound += bound
        self._pending_rows += self._pending[-1].height
        if self._pending_bound >= 1 << 63 or self._pending_rows > 2_000_000:
            self.settle()
        self.samples += n

    def settle(self) -> None:
        """Fold the pending column aggregates into ``raw`` (``rows`` does this first)."""
        if not self._pending:
            return
        frames, self._pending = self._pending, []
        self._pending_bound = self._pending_rows = 0
        merged = (
            pl.concat(frames)
            .group_by(_GROUP_KEYS)
            .agg(pl.col("e").sum(), pl.col("r").sum(), pl.col("len").sum())
        )
        self._fold(merged.iter_rows())

    def _fold(self, groups: Iterable[tuple[Any, ...]]) -> None:
        """(interval, agent, vlan, ip version, src MAC, dst MAC, bytes, packets, count) into ``raw``;
        -1 stands for None and MACs are integers."""
        raw = self.raw
        texts: dict[int, str | None] = {-1: None}
        for i, agent, v, p, s, d, est_bytes, est_packets, count in groups:
            src = texts.get(s)
            if src is None and s != -1:
                src = texts[s] = s.to_bytes(6, "big").hex(":")
            dst = texts.get(d)
            if dst is None and d != -1:
                dst = texts[d] = d.to_bytes(6, "big").hex(":")
            key = (i, agent, None if v == -1 else v, None if p == -1 else p, src, dst)
            acc = raw.get(key)
            if acc is None:
                raw[key] = [est_bytes, est_packets, count]
            else:
                acc[0] += est_bytes
                acc[1] += est_packets
                acc[2] += count

    def rows(self, enricher: Enricher) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(MEMBER_MATRIX rows, UNKNOWN_MACS rows); interval_start as ns since the epoch."""
        self.settle()
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
