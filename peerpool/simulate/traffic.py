"""True traffic of every 5-minute interval: packets and bytes per port pair, IP version and
transit port, drawn from the member matrix, daily and weekly cycles, growth and noise.

Cycles are in Warsaw local time. Eyeball networks peak in the evening (about 21:00) and a
little higher at weekends; hosting and content networks follow business hours (peak about
15:00, quieter at weekends). Traffic from content to eyeball follows the eyeball's evening,
so members peak at different times (which is what makes pooled 95th percentiles cheaper).
Each member also has a slow growth rate and a slowly wandering level (an AR(1) process).

True packet counts are Poisson around the model rate; true bytes are the sum of that many
packet sizes from :mod:`peerpool.simulate.packets`. Only integers leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from peerpool.simulate.packets import ETH_TAGGED_OVERHEAD, ETH_UNTAGGED_OVERHEAD, MIXES, draw_total_bytes
from peerpool.simulate.timegrid import INTERVAL_S, TimeGrid
from peerpool.simulate.topology import Topology

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
AR_PHI = 0.97
AR_SIGMA = 0.015
PAIR_NOISE = 0.05


def _bump(hours: F64, centre: float, width: float) -> F64:
    d = (hours - centre + 12.0) % 24.0 - 12.0
    return np.exp(-(d * d) / (2.0 * width * width))


def eyeball_profile(hours: F64, weekend: npt.NDArray[np.bool_]) -> F64:
    """Residential demand: a long evening peak around 21:00, a smaller midday shoulder."""
    weekday = 0.22 + 0.55 * _bump(hours, 21.0, 2.4) + 0.25 * _bump(hours, 13.5, 4.0)
    holiday = 0.26 + 0.56 * _bump(hours, 21.0, 2.8) + 0.38 * _bump(hours, 14.5, 4.0)
    return np.where(weekend, holiday, weekday) / 0.80


def business_profile(hours: F64, weekend: npt.NDArray[np.bool_]) -> F64:
    """Hosting and content serving businesses: peak in the afternoon (~15:00), low at night."""
    weekday = 0.25 + 0.75 * _bump(hours, 15.0, 3.2)
    return np.where(weekend, 0.12 + 0.6 * weekday, weekday)


@dataclass
class IntervalTraffic:
    """What happened in one interval (all integers)."""

    k: int
    pp_packets: I64  # (port pairs, 2): IPv4, IPv6
    pp_bytes: I64
    port_in_bytes: I64  # every port (member and transit): into the device from the far end
    port_out_bytes: I64
    port_in_packets: I64
    port_out_packets: I64
    port_up: npt.NDArray[np.bool_]
    transit_packets: I64  # (members, transit ports, 2 directions in/out, 2 ip versions)
    transit_ip_bytes: I64  # IP bytes, what flow records count


class TrafficModel:
    def __init__(self, topo: Topology, grid: TimeGrid, seed: int) -> None:
        self.topo = topo
        self.grid = grid
        self.seed = seed
        n = len(topo.members)
        self.n = n
        m = topo.matrix
        self.pair_src = m.src
        self.pair_dst = m.dst
        self.pair_bps = m.gbps * 1e9 / 8.0  # bytes per second at profile peak
        kinds = [mem.kind for mem in topo.members]
        eyeball = np.array([k in ("eyeball", "other") for k in kinds])
        self.eyeball = eyeball
        self.pair_eyeball_weight = np.where(eyeball[m.dst], 0.85, np.where(eyeball[m.src], 0.55, 0.2)).astype(
            np.float64
        )
        v6 = np.array([mem.v6_share for mem in topo.members])
        self.pair_v6 = np.sqrt(v6[m.src] * v6[m.dst])
        self.phase = np.array([mem.phase_h for mem in topo.members])
        self.growth = np.array([mem.growth_per_month for mem in topo.members])
        self.member_active_from = np.array([mem.active_from_ns for mem in topo.members], dtype=np.int64)

        ports = topo.ports
        self.port_count = len(ports)
        self.member_port_count = topo.member_port_count
        self.port_member = np.array([p.member_index for p in ports[: topo.member_port_count]], dtype=np.int64)
        self.port_weight = np.array([p.base_weight for p in ports[: topo.member_port_count]])
        self.port_active_from = np.array([p.active_from_ns for p in ports], dtype=np.int64)
        pp_pair: list[int] = []
        pp_src: list[int] = []
        pp_dst: list[int] = []
        for pair in range(m.src.shape[0]):
            for sp in topo.members[int(m.src[pair])].ports:
                for dp in topo.members[int(m.dst[pair])].ports:
                    pp_pair.append(pair)
                    pp_src.append(sp)
                    pp_dst.append(dp)
        self.pp_pair = np.array(pp_pair, dtype=np.int64)
        self.pp_src = np.array(pp_src, dtype=np.int64)
        self.pp_dst = np.array(pp_dst, dtype=np.int64)

        self.transit_in = np.array([mem.transit_in_gbps for mem in topo.members]) * 1e9 / 8.0
        self.transit_out = np.array([mem.transit_out_gbps for mem in topo.members]) * 1e9 / 8.0
        self.transit_share = topo.transit_share
        self.hours, self.weekdays, self.elapsed_days = grid.local_calendar()
        self.ar_state = np.zeros(n)

    def member_profiles(self, k: int) -> tuple[F64, F64]:
        hours = (self.hours[k] + self.phase) % 24.0
        weekend = np.full(self.n, self.weekdays[k] >= 5)
        return eyeball_profile(hours, weekend), business_profile(hours, weekend)

    def expected_daily_packets(self) -> tuple[float, float]:
        """Mean packets per day on the exchange and on the transit links (for auto sampling)."""
        hours = np.linspace(0.0, 24.0, 97)[:-1]
        days = [np.full(96, d >= 5) for d in range(7)]
        eye = float(np.mean([eyeball_profile(hours, w) for w in days]))
        bus = float(np.mean([business_profile(hours, w) for w in days]))
        w = self.pair_eyeball_weight
        mean_bps = float(np.sum(self.pair_bps * (w * eye + (1 - w) * bus)))
        mean_frame = MIXES[4].mean * 0.7 + MIXES[6].mean * 0.3
        exchange = mean_bps * 86400.0 / mean_frame
        transit_bps = float(np.sum(self.transit_in + self.transit_out)) * (eye + bus) / 2.0
        transit = transit_bps * 86400.0 / (MIXES[4].ip_mean)
        return exchange, transit

    def step(self, k: int, down_ports: set[int], down_devices: set[str]) -> IntervalTraffic:
        rng = np.random.default_rng([self.seed, 1, k])
        start_ns = self.grid.interval_start_ns(k)
        # member level and activity
        self.ar_state = AR_PHI * self.ar_state + rng.normal(0.0, AR_SIGMA, self.n)
        level = np.clip(np.exp(self.ar_state), 0.7, 1.35)
        level *= (1.0 + self.growth) ** (self.elapsed_days[k] / 30.44)
        member_on = self.member_active_from <= start_ns
        level = np.where(member_on, level, 0.0)

        # which member ports carry traffic, and each one's share of its member
        ports = self.topo.ports
        up = self.port_active_from <= start_ns
        for p in down_ports:
            up[p] = False
        if down_devices:
            for p in range(self.port_count):
                if ports[p].device_id in down_devices:
                    up[p] = False
        raw = self.port_weight * up[: self.member_port_count]
        sums = np.bincount(self.port_member, weights=raw, minlength=self.n)
        share = raw / np.where(sums[self.port_member] > 0, sums[self.port_member], 1.0)
        level = np.where(sums > 0, level, 0.0)

        eye, bus = self.member_profiles(k)
        w = self.pair_eyeball_weight
        pair_rate = (
            self.pair_bps
            * (w * eye[self.pair_dst] + (1.0 - w) * bus[self.pair_src])
            * np.sqrt(level[self.pair_src] * level[self.pair_dst])
        )
        pp_rate = (
            pair_rate[self.pp_pair]
            * share[self.pp_src]
            * share[self.pp_dst]
            * rng.lognormal(0.0, PAIR_NOISE, self.pp_pair.shape[0])
        )
        v6 = self.pair_v6[self.pp_pair]
        pp_packets = np.zeros((self.pp_pair.shape[0], 2), dtype=np.int64)
        pp_bytes = np.zeros_like(pp_packets)
        for col, (version, part) in enumerate(((4, 1.0 - v6), (6, v6))):
            mix = MIXES[version]
            lam = pp_rate * part * INTERVAL_S / mix.mean
            packets = rng.poisson(lam).astype(np.int64)
            pp_packets[:, col] = packets
            pp_bytes[:, col] = draw_total_bytes(rng, packets, mix)

        total_p = pp_packets.sum(axis=1)
        total_b = pp_bytes.sum(axis=1)
        n_ports = self.port_count
        in_b = _sum_by(self.pp_src, total_b, n_ports)
        out_b = _sum_by(self.pp_dst, total_b, n_ports)
        in_p = _sum_by(self.pp_src, total_p, n_ports)
        out_p = _sum_by(self.pp_dst, total_p, n_ports)

        # transit: members x transit ports x (in, out) x (v4, v6)
        t_ports = n_ports - self.member_port_count
        transit_profile = np.where(self.eyeball, eye, bus)
        member_v6 = np.array([m.v6_share for m in self.topo.members])
        base = np.stack([self.transit_in, self.transit_out], axis=1) * (transit_profile * level)[:, None]
        rates = base[:, None, :] * self.transit_share[:, :, None]  # members, tports, dir
        rates = rates[..., None] * np.stack([1.0 - member_v6, member_v6], axis=1)[:, None, None, :]
        transit_packets = np.zeros(rates.shape, dtype=np.int64)
        transit_bytes = np.zeros(rates.shape, dtype=np.int64)
        for col, version in enumerate((4, 6)):
            mix = MIXES[version]
            lam = rates[..., col] * INTERVAL_S / mix.ip_mean
            packets = rng.poisson(lam).astype(np.int64)
            transit_packets[..., col] = packets
            transit_bytes[..., col] = draw_total_bytes(
                rng, packets.ravel(), mix, overhead_delta=-ETH_TAGGED_OVERHEAD
            ).reshape(packets.shape)
        if t_ports:
            frames = transit_bytes + ETH_UNTAGGED_OVERHEAD * transit_packets
            tp = slice(self.member_port_count, n_ports)
            in_b[tp] = frames[:, :, 0, :].sum(axis=(0, 2))
            out_b[tp] = frames[:, :, 1, :].sum(axis=(0, 2))
            in_p[tp] = transit_packets[:, :, 0, :].sum(axis=(0, 2))
            out_p[tp] = transit_packets[:, :, 1, :].sum(axis=(0, 2))
        return IntervalTraffic(
            k=k,
            pp_packets=pp_packets,
            pp_bytes=pp_bytes,
            port_in_bytes=in_b,
            port_out_bytes=out_b,
            port_in_packets=in_p,
            port_out_packets=out_p,
            port_up=up,
            transit_packets=transit_packets,
            transit_ip_bytes=transit_bytes,
        )


def _sum_by(index: I64, values: I64, length: int) -> I64:
    """Exact integer sums of ``values`` grouped by ``index``."""
    out = np.zeros(length, dtype=np.int64)
    np.add.at(out, index, values)
    return out
