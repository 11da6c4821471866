"""Run a simulation: build the exchange, then walk the run one 5-minute interval at a time.

Per interval: draw the true traffic, poll the counters, then (unless ``flows`` is off) sample
sFlow on every switch and sampled flows on the border routers, and write the truth. Only one
interval's arrays and one day's counter rows are ever held, so memory stays flat however long
the run. Every random draw comes from a stream keyed by (seed, purpose, interval), so the same
seed gives byte-identical files, and turning flows off leaves traffic, counters and truth as
they were.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import ipaddress
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from peerpool.config.load import dump_exchange, loads_exchange
from peerpool.errors import InputError
from peerpool.simulate import flowexport, truth
from peerpool.simulate.counters import Counters, PollResult
from peerpool.simulate.faults import FaultPlan, plan_faults
from peerpool.simulate.flowexport import FlowRecord, IpfixExporter, NetflowV9Exporter
from peerpool.simulate.ixf import write_ixf
from peerpool.simulate.mrt import write_rib
from peerpool.simulate.packets import MIXES, TCP, UDP, sampled_header
from peerpool.simulate.sflow import DATAGRAM_HEADER, MAX_DATAGRAM, MOD32, SflowAgent
from peerpool.simulate.spool import PROTO_IPFIX, PROTO_NETFLOW9, PROTO_SFLOW5, HourlySpool
from peerpool.simulate.timegrid import INTERVAL_MS, INTERVAL_NS, NS, TimeGrid, utc_date_of_ns
from peerpool.simulate.topology import MAX_MEMBERS, PEERING_VLAN, Topology, build_topology
from peerpool.simulate.traffic import IntervalTraffic, TrafficModel

OUTPUTS = ("exchange.toml", "ixf.json", "rib.mrt", "spool", "counters", "truth")
MAX_DATAGRAM_AGE_NS = 60 * NS  # agents hold samples at most this long (and never across a boundary)
TEMPLATE_PERIOD_INTERVALS = 2  # templates and sampling options every 10 minutes
SERVER_KINDS = frozenset({"content", "hosting"})
EPHEMERAL = (32768, 61000)


@dataclass(frozen=True)
class SimulationOptions:
    members: int
    days: int
    seed: int
    out: Path
    start: dt.datetime
    sampling_rate: int | None = None  # sFlow 1-in-N on the switches; None = auto
    router_sampling_rate: int | None = None  # IPFIX / NetFlow v9 1-in-N; None = auto
    samples_per_member_day: int = 1000  # auto sFlow rate target
    records_per_member_day: int = 300  # auto router rate target (sampled packets)
    traffic_scale: float = 1.0
    counter_interval_s: int = 300  # sFlow counter sample period per port
    flows: bool = True
    force: bool = False


@dataclass
class Summary:
    members: int = 0
    ports: int = 0
    intervals: int = 0
    sampling_rate: int = 0
    router_sampling_rate: int = 0
    files: dict[str, int] = field(default_factory=dict)
    datagrams: dict[str, int] = field(default_factory=dict)
    flow_samples: int = 0
    counter_samples: int = 0
    flow_records: int = 0
    counter_rows: int = 0
    truth_rows: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    true_exchange_bytes: int = 0
    true_transit_bytes: int = 0


ProgressFn = Callable[[str, int, int], None]  # (event, done, total)


def prepare_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError(
                f"{out}: exists and is not empty; choose an empty or new --out, "
                "or pass --force to replace the simulator's files in it"
            )
        for name in OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def auto_rate(packets_per_day: float, target_per_day: float) -> int:
    """The smallest power of two that keeps the expected samples per day at or below the target."""
    if packets_per_day <= target_per_day or target_per_day <= 0:
        return 1
    return int(2 ** math.ceil(math.log2(packets_per_day / target_per_day)))


class Simulation:
    def __init__(self, options: SimulationOptions) -> None:
        if not 3 <= options.members <= MAX_MEMBERS:
            raise InputError(f"--members {options.members}: give between 3 and {MAX_MEMBERS} members")
        if options.days < 1:
            raise InputError(f"--days {options.days}: give at least 1 day")
        if options.counter_interval_s <= 0 or 300 % options.counter_interval_s:
            raise InputError(
                f"--counter-interval {options.counter_interval_s}: must divide 300 (e.g. 30, 60, 150, 300)"
            )
        if options.traffic_scale <= 0:
            raise InputError(f"--traffic-scale {options.traffic_scale}: must be positive")
        for name, rate in (
            ("--sampling-rate", options.sampling_rate),
            ("--router-sampling-rate", options.router_sampling_rate),
        ):
            if rate is not None and not 1 <= rate < 2**32:
                raise InputError(f"{name} {rate}: must be between 1 and 4294967295")
        self.o = options
        self.grid = TimeGrid(options.start, options.days)
        self.summary = Summary()
        self._built: tuple[Topology, TrafficModel] | None = None

    # --- set-up ---------------------------------------------------------------------------
    def plan_sampling(self) -> tuple[int, int, float, float]:
        """Build the exchange and choose the rates: (sFlow rate, router rate, expected sFlow flow
        samples per day, expected sampled transit packets per day)."""
        if self._built is None:
            self._built = self._build()
        exchange_pkts, transit_pkts = self._built[1].expected_daily_packets()
        return self.rate, self.router_rate, exchange_pkts / self.rate, transit_pkts / self.router_rate

    def _build(self) -> tuple[Topology, TrafficModel]:
        o = self.o
        topo = build_topology(o.seed, o.members, self.grid, 1, o.traffic_scale)
        model = TrafficModel(topo, self.grid, o.seed)
        exchange_pkts, transit_pkts = model.expected_daily_packets()
        rate = o.sampling_rate or auto_rate(exchange_pkts, o.samples_per_member_day * o.members)
        router_rate = o.router_sampling_rate or auto_rate(transit_pkts, o.records_per_member_day * o.members)
        topo.exchange = dataclasses.replace(
            topo.exchange,
            switches=tuple(dataclasses.replace(s, sampling_rate=rate) for s in topo.exchange.switches),
        )
        self.rate = rate
        self.router_rate = router_rate
        return topo, model

    def _write_reference(self, topo: Topology) -> None:
        out = self.o.out
        header = (
            "Simulated exchange written by 'peerpool simulate' "
            f"(seed {self.o.seed}, {self.o.members} members, {self.o.days} days from "
            f"{self.grid.start.isoformat()}).\nNothing here is a real network: names say (simulated)."
        )
        text = dump_exchange(topo.exchange, header=header)
        loads_exchange(text, source=str(out / "exchange.toml"))  # the loader must accept what we write
        (out / "exchange.toml").write_text(text, encoding="utf-8")
        write_ixf(out / "ixf.json", topo, self.grid.start)
        write_rib(out / "rib.mrt", topo, self.grid.start_ns // NS)

    # --- the run ---------------------------------------------------------------------------
    def run(self, progress: ProgressFn | None = None) -> Summary:
        o = self.o
        prepare_output(o.out, o.force)
        topo, model = self._built if self._built is not None else self._build()
        self.topo = topo
        self.model = model
        self._write_reference(topo)
        plan = plan_faults(o.seed, topo, self.grid)
        self.plan = plan
        counters = Counters(topo, self.grid, plan, o.seed, o.out)
        self.counters = counters
        truth_root = o.out / "truth"
        writers = {
            "port_traffic": truth.DatePartitioned(truth_root, "port_traffic", truth.PORT_TRAFFIC),
            "member_pairs": truth.DatePartitioned(truth_root, "member_pairs", truth.MEMBER_PAIRS),
            "transit": truth.DatePartitioned(truth_root, "transit", truth.TRANSIT),
        }
        self._setup_exporters(topo, counters)
        self._member_ids = pa.array([m.config.id for m in topo.members], pa.string())
        self._transit_ref = {
            "port_id": pa.array([p.id for p in topo.transit_ports], pa.string()),
            "router_id": pa.array([p.router_id for p in topo.transit_ports], pa.string()),
            "contract_id": pa.array([p.contract_id for p in topo.transit_ports], pa.string()),
        }
        self._port_ref = {
            "port_id": pa.array([p.id for p in topo.ports], pa.string()),
            "device_id": pa.array([p.device_id for p in topo.ports], pa.string()),
            "ifindex": pa.array([p.ifindex for p in topo.ports], pa.int64()),
            "member_id": pa.array(
                [topo.members[p.member_index].config.id if p.member_index >= 0 else None for p in topo.ports],
                pa.string(),
            ),
            "is_transit": pa.array([p.member_index < 0 for p in topo.ports], pa.bool_()),
        }
        pending: tuple[int, IntervalTraffic, PollResult] | None = None
        total = self.grid.intervals
        days = self.grid.day_ranges()
        if progress:
            progress("start", 0, total)
        last: IntervalTraffic | None = None
        for _day, first, end in days:
            for k in range(first, end):
                traffic = model.step(k, plan.down_ports(k), plan.down_devices(k))
                polls = counters.poll(k, traffic)
                if pending is not None:
                    self._write_port_rows(writers["port_traffic"], pending, polls)
                counters.apply_reboots(k)
                if o.flows:
                    self._sflow_interval(k, traffic, counters, plan)
                    self._router_interval(k, traffic)
                counters.advance(traffic)
                self._write_pairs(writers["member_pairs"], k, traffic)
                self._write_transit(writers["transit"], k, traffic)
                self.summary.true_exchange_bytes += int(traffic.pp_bytes.sum())
                self.summary.true_transit_bytes += int(traffic.transit_ip_bytes.sum())
                pending = (k, traffic, polls)
                last = traffic
                if progress:
                    progress("interval", k + 1, total)
            if progress:
                progress("day", end, total)
        assert last is not None and pending is not None
        final = counters.poll(total, last, final=True)
        self._write_port_rows(writers["port_traffic"], pending, final)
        counters.flush()
        for w in writers.values():
            w.close()
        self._close_exporters()
        self._write_faults(topo, plan, counters)
        self._finish_summary(topo, writers, counters)
        (truth_root / "run.json").write_text(json.dumps(self._run_info(), indent=2) + "\n", encoding="utf-8")
        return self.summary

    # --- truth -----------------------------------------------------------------------------
    def _ts(self, k: int) -> pa.Array:
        return pa.array([self.grid.interval_start_ns(k) // 1000], truth.TS)

    def _write_port_rows(
        self, writer: truth.DatePartitioned, pending: tuple[int, IntervalTraffic, PollResult], nxt: PollResult
    ) -> None:
        k, traffic, polls = pending
        ports = polls.ports
        if ports.shape[0] == 0:
            return
        position = np.full(len(self.topo.ports), -1, dtype=np.int64)
        position[nxt.ports] = np.arange(nxt.ports.shape[0])
        idx = position[ports]  # every port polled in k is polled again in k + 1
        window = nxt.cumulative[:, idx] - polls.cumulative
        down = np.isin(ports, np.array(sorted(self.plan.down_ports(k)), dtype=np.int64))
        start_us = self.grid.interval_start_ns(k) // 1000
        n = ports.shape[0]
        take = pa.array(ports)
        ref = self._port_ref
        writer.add(
            utc_date_of_ns(self.grid.interval_start_ns(k)),
            {
                "interval_start": pa.array(np.full(n, start_us, dtype=np.int64), truth.TS),
                "port_id": ref["port_id"].take(take),
                "device_id": ref["device_id"].take(take),
                "ifindex": ref["ifindex"].take(take),
                "member_id": ref["member_id"].take(take),
                "is_transit": ref["is_transit"].take(take),
                "oper_status": pa.array(np.where(down, 2, 1).astype(np.int8), pa.int8()),
                "in_bytes": pa.array(traffic.port_in_bytes[ports], pa.int64()),
                "out_bytes": pa.array(traffic.port_out_bytes[ports], pa.int64()),
                "in_packets": pa.array(traffic.port_in_packets[ports], pa.int64()),
                "out_packets": pa.array(traffic.port_out_packets[ports], pa.int64()),
                "poll_start_at": pa.array(polls.poll_ms * 1000, truth.TS),
                "poll_end_at": pa.array(nxt.poll_ms[idx] * 1000, truth.TS),
                "poll_in_bytes": pa.array(window[0], pa.int64()),
                "poll_out_bytes": pa.array(window[1], pa.int64()),
                "poll_in_packets": pa.array(window[2], pa.int64()),
                "poll_out_packets": pa.array(window[3], pa.int64()),
            },
        )

    def _write_pairs(self, writer: truth.DatePartitioned, k: int, traffic: IntervalTraffic) -> None:
        model = self.model
        pairs = model.pair_src.shape[0]
        ids = self._member_ids
        for col, version in enumerate((4, 6)):
            packets = np.bincount(model.pp_pair, weights=traffic.pp_packets[:, col], minlength=pairs)
            nbytes = np.bincount(model.pp_pair, weights=traffic.pp_bytes[:, col], minlength=pairs)
            keep = np.nonzero(packets > 0)[0]
            n = keep.shape[0]
            if n == 0:
                continue
            writer.add(
                utc_date_of_ns(self.grid.interval_start_ns(k)),
                {
                    "interval_start": pa.array(
                        np.full(n, self.grid.interval_start_ns(k) // 1000, dtype=np.int64), truth.TS
                    ),
                    "src_member_id": ids.take(pa.array(model.pair_src[keep])),
                    "dst_member_id": ids.take(pa.array(model.pair_dst[keep])),
                    "ip_version": pa.array(np.full(n, version, dtype=np.int8), pa.int8()),
                    "bytes": pa.array(np.rint(nbytes[keep]).astype(np.int64), pa.int64()),
                    "packets": pa.array(np.rint(packets[keep]).astype(np.int64), pa.int64()),
                },
            )

    def _write_transit(self, writer: truth.DatePartitioned, k: int, traffic: IntervalTraffic) -> None:
        packets = traffic.transit_packets.sum(axis=3)  # members, tports, dir
        nbytes = traffic.transit_ip_bytes.sum(axis=3)
        members, tports = np.nonzero(packets.sum(axis=2) > 0)
        n = members.shape[0]
        if n == 0:
            return
        tp = self._transit_ref
        take = pa.array(tports)
        writer.add(
            utc_date_of_ns(self.grid.interval_start_ns(k)),
            {
                "interval_start": pa.array(
                    np.full(n, self.grid.interval_start_ns(k) // 1000, dtype=np.int64), truth.TS
                ),
                "port_id": tp["port_id"].take(take),
                "router_id": tp["router_id"].take(take),
                "contract_id": tp["contract_id"].take(take),
                "member_id": self._member_ids.take(pa.array(members)),
                "in_bytes": pa.array(nbytes[members, tports, 0], pa.int64()),
                "out_bytes": pa.array(nbytes[members, tports, 1], pa.int64()),
                "in_packets": pa.array(packets[members, tports, 0], pa.int64()),
                "out_packets": pa.array(packets[members, tports, 1], pa.int64()),
            },
        )

    def _write_faults(self, topo: Topology, plan: FaultPlan, counters: Counters) -> None:
        rows: list[dict[str, object]] = []

        def at(ns: int) -> dt.datetime:
            return dt.datetime.fromtimestamp(ns // NS, dt.UTC) + dt.timedelta(microseconds=(ns % NS) // 1000)

        wrap = topo.ports[topo.wrap_port]
        rows.append(
            {
                "kind": "counter_32bit",
                "device_id": wrap.device_id,
                "port_id": wrap.id,
                "start_at": at(self.grid.start_ns),
                "end_at": at(self.grid.end_ns),
                "detail": "polled with 32-bit counters (ifInOctets/ifOutOctets, ifIn/OutUcastPkts); "
                "values are modulo 2^32 and started close to 2^32",
            }
        )
        for event in counters.wrap_events:
            rows.append(
                {
                    "kind": "counter_wrap",
                    "device_id": wrap.device_id,
                    "port_id": wrap.id,
                    "start_at": at(int(str(event["start_ms"])) * 1_000_000),
                    "end_at": at(int(str(event["end_ms"])) * 1_000_000),
                    "detail": event["detail"],
                }
            )
        for r in plan.reboots:
            start = self.grid.interval_start_ns(r.k)
            rows.append(
                {
                    "kind": "device_reboot",
                    "device_id": r.device,
                    "port_id": None,
                    "start_at": at(r.crash_ns),
                    "end_at": at(r.up_ns),
                    "detail": "the switch forwarded nothing from "
                    f"{at(start).isoformat()} to {at(start + INTERVAL_NS).isoformat()}; "
                    "it crashed at start_at "
                    "and was back at end_at with sysUpTime 0, every counter restarted at 0 and its sFlow "
                    "agent's sequence numbers restarted",
                }
            )
        for o in plan.outages:
            port = topo.ports[o.port]
            rows.append(
                {
                    "kind": "port_outage",
                    "device_id": port.device_id,
                    "port_id": port.id,
                    "start_at": at(self.grid.interval_start_ns(o.k_from)),
                    "end_at": at(self.grid.interval_start_ns(o.k_to)),
                    "detail": "ifOperStatus down (2) and no traffic on the port",
                }
            )
        poll_times = counters.poll_times
        for device, k in sorted(plan.missed_devices):
            t = poll_times.get((device, k), self.grid.interval_start_ns(k))
            rows.append(
                {
                    "kind": "missed_poll",
                    "device_id": device,
                    "port_id": None,
                    "start_at": at(t),
                    "end_at": at(t),
                    "detail": "every port of the device timed out at this poll (ok=false, error timeout)",
                }
            )
        for p, k in sorted(plan.missed_ports):
            port = topo.ports[p]
            t = poll_times.get((port.device_id, k), self.grid.interval_start_ns(k))
            rows.append(
                {
                    "kind": "missed_poll",
                    "device_id": port.device_id,
                    "port_id": port.id,
                    "start_at": at(t),
                    "end_at": at(t),
                    "detail": "this port's read timed out at this poll (ok=false, error timeout)",
                }
            )
        truth.write_faults(self.o.out / "truth" / "faults.parquet", rows)
        self.summary.truth_rows["faults"] = len(rows)

    # --- sFlow -----------------------------------------------------------------------------
    def _setup_exporters(self, topo: Topology, counters: Counters) -> None:
        spool_root = self.o.out / "spool"
        self.agents: dict[str, SflowAgent] = {}
        self.sflow_spools: dict[str, HourlySpool] = {}
        for n, s in enumerate(topo.exchange.switches):
            agent = s.sflow_agent_address or s.management_address
            self.agents[s.id] = SflowAgent(
                agent, s.sampling_rate, topo.expanded(s.id), counters.boot_ns[s.id]
            )
            self.sflow_spools[s.id] = HourlySpool(spool_root, PROTO_SFLOW5, s.id, agent, 50000 + n)
        self.switch_ports: dict[str, list[int]] = {s.id: [] for s in topo.exchange.switches}
        for p in topo.ports[: topo.member_port_count]:
            self.switch_ports[p.device_id].append(p.index)
        rng = np.random.default_rng([self.o.seed, 7])
        self.ipfix: dict[str, IpfixExporter] = {}
        self.netflow: dict[str, NetflowV9Exporter] = {}
        self.router_spools: dict[str, HourlySpool] = {}
        for n, r in enumerate(topo.routers):
            if r.protocol == "ipfix":
                self.ipfix[r.id] = IpfixExporter(n + 1, self.router_rate)
                proto = PROTO_IPFIX
            else:
                boot_ms = self.grid.start_ns // 1_000_000 - int(rng.integers(1, 15 * 86400)) * 1000
                system = int(ipaddress.IPv4Address(r.exporter_address))
                self.netflow[r.id] = NetflowV9Exporter(n + 1, self.router_rate, boot_ms, system)
                proto = PROTO_NETFLOW9
            self.router_spools[r.id] = HourlySpool(spool_root, proto, r.id, r.exporter_address, 50100 + n)
        self.tport_router = np.array([p.router_id for p in topo.transit_ports], dtype=object)
        m = self.model
        kinds = [mm.kind for mm in topo.members]
        self.member_server = np.array([k in SERVER_KINDS for k in kinds])
        self._cum_probs = {v: np.cumsum(MIXES[v].probs) for v in (4, 6)}
        self._frame_table = np.stack([MIXES[4].frame_lengths, MIXES[6].frame_lengths])
        self._proto_table = np.stack([MIXES[4].protocols, MIXES[6].protocols])
        self._pp_src, self._pp_dst = m.pp_src, m.pp_dst
        self._pp_pair = m.pp_pair
        member_ports = topo.ports[: topo.member_port_count]
        self._switch_ids = [s.id for s in topo.exchange.switches]
        self._port_switch = np.array(
            [self._switch_ids.index(p.device_id) for p in member_ports], dtype=np.int64
        )
        self._port_member = np.array([p.member_index for p in member_ports], dtype=np.int64)
        self._port_mac = [p.mac for p in member_ports]
        self._port_ifindex = [p.ifindex for p in member_ports]
        self._member_from = np.array([topo.members[p.member_index].active_from_ns for p in member_ports])
        self._member_nets: list[dict[int, list[tuple[int, int]]]] = [
            {
                4: [(int(n.network_address), n.num_addresses) for n in mm.v4_nets],
                6: [(int(n.network_address), n.num_addresses) for n in mm.v6_nets],
            }
            for mm in topo.members
        ]

    def _sflow_interval(self, k: int, traffic: IntervalTraffic, counters: Counters, plan: FaultPlan) -> None:
        """Sample every port pair's packets 1 in N, place samples in time, and send them per switch."""
        topo = self.topo
        rng = np.random.default_rng([self.o.seed, 2, k])
        start_ns = self.grid.interval_start_ns(k)
        end_ns = start_ns + INTERVAL_NS
        counts = rng.binomial(traffic.pp_packets, 1.0 / self.rate)
        rows, cols = np.nonzero(counts)
        reps = counts[rows, cols]
        s_pp = np.repeat(rows, reps)
        s_col = np.repeat(cols, reps)
        total = int(s_pp.shape[0])
        offsets = rng.integers(0, INTERVAL_NS, total)
        size_u = rng.random(total)
        host_u = rng.random((total, 2))
        ephemeral = rng.integers(*EPHEMERAL, total)
        server_u = rng.random(total)
        ident = rng.integers(0, 1 << 32, total)
        self.summary.flow_samples += total

        src = self._pp_src[s_pp]
        dst = self._pp_dst[s_pp]
        choice = np.zeros(total, dtype=np.int64)
        for col, version in enumerate((4, 6)):
            sel = s_col == col
            picked = np.searchsorted(self._cum_probs[version], size_u[sel], side="right")
            choice[sel] = np.minimum(picked, MIXES[version].frame_lengths.shape[0] - 1)
        frame = self._frame_table[s_col, choice]
        proto = self._proto_table[s_col, choice]
        off_ms = offsets // 1_000_000
        pool = (
            counters.cum[2, src]
            + traffic.port_in_packets[src] * off_ms // INTERVAL_MS
            + counters.offset[2, src]
        ) % MOD32
        server = np.where(
            proto == TCP, np.where(server_u < 0.8, 443, 80), np.where(server_u < 0.8, 443, 53)
        ).astype(np.int64)
        src_member = self._port_member[src]
        dst_member = self._port_member[dst]
        src_serves = self.member_server[src_member] | (~self.member_server[dst_member] & (server_u < 0.5))
        sport = np.where(src_serves, server, ephemeral)
        dport = np.where(src_serves, ephemeral, server)
        switch = self._port_switch[src]

        # counter samples: every port in service, every counter interval, at a fixed phase per port
        ci_ms = self.o.counter_interval_s * 1000
        down = plan.down_ports(k)
        restarting = {r.device: r for r in plan.reboot_ending(k)}
        for device in restarting:
            self.agents[device].restart(restarting[device].up_ns)
        counter_items: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        for p in range(topo.member_port_count):
            port = topo.ports[p]
            if port.active_from_ns > start_ns or self._member_from[p] > start_ns:
                continue
            reboot = restarting.get(port.device_id)
            for off in range((p * 7919) % ci_ms, INTERVAL_MS, ci_ms):
                if reboot is not None and start_ns + off * 1_000_000 < reboot.up_ns:
                    continue
                counter_items[int(self._port_switch[p])].append((off * 1_000_000, p))

        order = np.lexsort((offsets, switch))
        bounds = np.searchsorted(switch[order], np.arange(len(self._switch_ids) + 1))
        for w, device in enumerate(self._switch_ids):
            flows = order[bounds[w] : bounds[w + 1]]
            items: list[tuple[int, int, int]] = [(int(offsets[i]), 1, int(i)) for i in flows]
            items += [(off, 0, p) for off, p in counter_items.get(w, [])]
            if not items:
                continue
            items.sort()
            agent = self.agents[device]
            samples: list[tuple[int, bytes]] = []
            for off, kind, i in items:
                if kind == 0:
                    samples.append((off, self._counter_sample(agent, i, off, traffic, counters, i in down)))
                    continue
                sp, dp = int(src[i]), int(dst[i])
                version = 4 if s_col[i] == 0 else 6
                header = sampled_header(
                    dst_mac=self._port_mac[dp],
                    src_mac=self._port_mac[sp],
                    vlan=PEERING_VLAN,
                    frame_length=int(frame[i]),
                    ip_version=version,
                    protocol=int(proto[i]),
                    src_ip=self._address(int(src_member[i]), version, float(host_u[i, 0]), int(ident[i])),
                    dst_ip=self._address(
                        int(dst_member[i]), version, float(host_u[i, 1]), int(ident[i]) >> 3
                    ),
                    src_port=int(sport[i]),
                    dst_port=int(dport[i]),
                    ident=int(ident[i]),
                )
                samples.append(
                    (
                        off,
                        agent.flow_sample(
                            self._port_ifindex[sp],
                            self._port_ifindex[dp],
                            int(pool[i]),
                            int(frame[i]),
                            header,
                            PEERING_VLAN,
                        ),
                    )
                )
            self._send_sflow(device, samples, start_ns, end_ns)

    def _counter_sample(
        self, agent: SflowAgent, p: int, off_ns: int, traffic: IntervalTraffic, counters: Counters, down: bool
    ) -> bytes:
        port = self.topo.ports[p]
        shown = counters.displayed(p, counters.cumulative_at(p, traffic, off_ns // 1_000_000))
        self.summary.counter_samples += 1
        return agent.counter_sample(
            port.ifindex, port.speed_mbps * 1_000_000, not down, shown[0], shown[2], shown[1], shown[3]
        )

    def _address(self, member: int, version: int, u: float, salt: int) -> bytes:
        """An address inside one of the member's prefixes of that IP version."""
        nets = self._member_nets[member][version]
        base, size = nets[salt % len(nets)]
        return (base + 1 + int(u * (size - 2))).to_bytes(4 if version == 4 else 16, "big")

    def _send_sflow(self, device: str, samples: list[tuple[int, bytes]], start_ns: int, end_ns: int) -> None:
        """Pack samples into datagrams of at most 1400 bytes, none held over 60 s or past the boundary."""
        agent = self.agents[device]
        spool = self.sflow_spools[device]
        batch: list[bytes] = []
        size = DATAGRAM_HEADER
        first_t = last_t = 0

        def send() -> None:
            latency = 1_000_000 + (agent.sequence * 7_919_000) % 2_000_000
            arrival = min(last_t + latency, end_ns - 1000)
            spool.write(agent.datagram(batch, arrival), arrival)
            self.summary.datagrams["sflow5"] = self.summary.datagrams.get("sflow5", 0) + 1

        for off, sample in samples:
            t = start_ns + off
            if batch and (size + len(sample) > MAX_DATAGRAM or t - first_t > MAX_DATAGRAM_AGE_NS):
                send()
                batch, size = [], DATAGRAM_HEADER
            if not batch:
                first_t = t
            batch.append(sample)
            size += len(sample)
            last_t = t
        if batch:
            send()

    # --- IPFIX / NetFlow v9 ----------------------------------------------------------------
    def _router_interval(self, k: int, traffic: IntervalTraffic) -> None:
        topo = self.topo
        rng = np.random.default_rng([self.o.seed, 3, k])
        start_ms = self.grid.interval_start_ns(k) // 1_000_000
        end_ms = start_ms + INTERVAL_MS
        sampled = rng.binomial(traffic.transit_packets, 1.0 / self.router_rate)
        idx = np.nonzero(sampled)
        reps = sampled[idx]
        entry_m = np.repeat(idx[0], reps)
        entry_t = np.repeat(idx[1], reps)
        entry_d = np.repeat(idx[2], reps)
        entry_v = np.repeat(idx[3], reps)
        total = int(entry_m.shape[0])
        records: dict[str, list[tuple[int, FlowRecord]]] = {r.id: [] for r in topo.routers}
        if total:
            first = np.ones(total, dtype=bool)
            first[1:] = (
                np.repeat(np.arange(reps.shape[0]), reps)[1:]
                != np.repeat(np.arange(reps.shape[0]), reps)[:-1]
            )
            new = first | (rng.random(total) < 0.6)
            rec = np.cumsum(new) - 1
            n_rec = int(rec[-1]) + 1
            heads = np.nonzero(new)[0]
            proto_u = rng.random(n_rec)
            size_u = rng.random(total)
            sizes = np.zeros(total, dtype=np.int64)
            protos = np.zeros(n_rec, dtype=np.int64)
            for version_col, version in enumerate((4, 6)):
                mix = MIXES[version]
                tcp_share = float(mix.probs[mix.protocols == TCP].sum())
                rec_v = entry_v[heads] == version_col
                protos[rec_v] = np.where(proto_u[rec_v] < tcp_share, TCP, UDP)
                for proto in (TCP, UDP):
                    choice = mix.protocols == proto
                    cum = np.cumsum(mix.probs[choice]) / mix.probs[choice].sum()
                    lengths = mix.ip_lengths[choice]
                    sel = (entry_v == version_col) & (protos[rec] == proto)
                    pick = np.minimum(np.searchsorted(cum, size_u[sel], side="right"), lengths.shape[0] - 1)
                    sizes[sel] = lengths[pick]
            octets = np.bincount(rec, weights=sizes, minlength=n_rec).astype(np.int64)
            pkts = np.bincount(rec, minlength=n_rec).astype(np.int64)
            weights = np.array([r.weight for r in topo.remotes])
            remote = rng.choice(len(topo.remotes), size=n_rec, p=weights / weights.sum())
            host_u = rng.random((n_rec, 2))
            ephemeral = rng.integers(*EPHEMERAL, n_rec)
            server_u = rng.random(n_rec)
            duration = np.where(
                pkts > 1, np.minimum(60_000, rng.exponential(15_000, n_rec)).astype(np.int64), 0
            )
            begin = (rng.random(n_rec) * (INTERVAL_MS - 3000 - duration)).astype(np.int64)
            lag = rng.integers(50, 1000, n_rec)
            for r_i in range(n_rec):
                h = int(heads[r_i])
                m_i, t_i, d_i, v_col = int(entry_m[h]), int(entry_t[h]), int(entry_d[h]), int(entry_v[h])
                member = topo.members[m_i]
                tport = topo.transit_ports[t_i]
                router = next(r for r in topo.routers if r.id == tport.router_id)
                version = 4 if v_col == 0 else 6
                remote_net = topo.remotes[int(remote[r_i])]
                remote_ip = _host(
                    [remote_net.v4 if version == 4 else remote_net.v6], float(host_u[r_i, 0]), r_i
                )
                member_ip = _host(
                    member.v4_nets if version == 4 else member.v6_nets, float(host_u[r_i, 1]), r_i
                )
                server = _server_port(int(protos[r_i]), float(server_u[r_i]))
                member_serves = bool(self.member_server[m_i])
                start = start_ms + int(begin[r_i])
                end = start + int(duration[r_i])
                if d_i == 0:  # provider -> member
                    src_ip, dst_ip, src_as, dst_as = remote_ip, member_ip, remote_net.asn, member.config.asn
                    ports = (ephemeral[r_i], server) if member_serves else (server, ephemeral[r_i])
                    ingress, egress = tport.ifindex, router.core_ifindex
                else:
                    src_ip, dst_ip, src_as, dst_as = member_ip, remote_ip, member.config.asn, remote_net.asn
                    ports = (server, ephemeral[r_i]) if member_serves else (ephemeral[r_i], server)
                    ingress, egress = router.core_ifindex, tport.ifindex
                record = FlowRecord(
                    version,
                    src_ip,
                    dst_ip,
                    int(ports[0]),
                    int(ports[1]),
                    int(protos[r_i]),
                    ingress,
                    egress,
                    int(octets[r_i]),
                    int(pkts[r_i]),
                    start,
                    end,
                    src_as,
                    dst_as,
                )
                export = max(start_ms + 1000, min(end + int(lag[r_i]), end_ms - 1000))
                records[router.id].append((export, record))
            self.summary.flow_records += n_rec
        for router in topo.routers:
            self._emit_router(router.id, k, records[router.id], start_ms, end_ms)

    def _emit_router(
        self, router_id: str, k: int, items: list[tuple[int, FlowRecord]], start_ms: int, end_ms: int
    ) -> None:
        spool = self.router_spools[router_id]
        ipfix = self.ipfix.get(router_id)
        v9 = self.netflow.get(router_id)
        key = "ipfix" if ipfix is not None else "netflow9"
        if k % TEMPLATE_PERIOD_INTERVALS == 0:
            t = start_ms + 100
            message = ipfix.templates(t // 1000) if ipfix is not None else v9.templates(t) if v9 else b""
            spool.write(message, t * 1_000_000)
            self.summary.datagrams[key] = self.summary.datagrams.get(key, 0) + 1
        items.sort(key=lambda item: item[0])
        batch: list[FlowRecord] = []
        versions: set[int] = set()
        size = 0
        first = 0
        last = 0

        def send() -> None:
            nonlocal batch, versions, size
            arrival = min(last + 1, end_ms - 1)
            if ipfix is not None:
                message = ipfix.data(batch, arrival // 1000)
            else:
                assert v9 is not None
                message = v9.data(batch, arrival)
            spool.write(message, arrival * 1_000_000)
            self.summary.datagrams[key] = self.summary.datagrams.get(key, 0) + 1
            batch, versions, size = [], set(), 0

        exporter = ipfix if ipfix is not None else v9
        assert exporter is not None
        for export, record in items:
            grow = exporter.record_size(record)
            needed = exporter.overhead(versions | {record.ip_version}) + size + grow
            if batch and (needed > flowexport.MAX_MESSAGE or export - first > 60_000):
                send()
            if not batch:
                first = export
            batch.append(record)
            versions.add(record.ip_version)
            size += grow
            last = export
        if batch:
            send()

    def _close_exporters(self) -> None:
        for spool in [*self.sflow_spools.values(), *self.router_spools.values()]:
            spool.close()

    # --- summary ---------------------------------------------------------------------------
    def _finish_summary(
        self, topo: Topology, writers: dict[str, truth.DatePartitioned], counters: Counters
    ) -> None:
        s = self.summary
        s.members = len(topo.members)
        s.ports = len(topo.ports)
        s.intervals = self.grid.intervals
        s.sampling_rate = self.rate
        s.router_sampling_rate = self.router_rate
        spools = [*self.sflow_spools.values(), *self.router_spools.values()]
        for proto, name in ((PROTO_SFLOW5, "sflow5"), (PROTO_IPFIX, "ipfix"), (PROTO_NETFLOW9, "netflow9")):
            s.files[f"spool/{name}"] = sum(len(sp.files) for sp in spools if sp.protocol == proto)
        s.files["counters"] = len(counters.files)
        s.counter_rows = counters.rows_written
        for name, w in writers.items():
            s.files[f"truth/{name}"] = len(w.files)
            s.truth_rows[name] = w.rows
        s.bytes_written = sum(f.stat().st_size for f in self.o.out.rglob("*") if f.is_file())

    def _run_info(self) -> dict[str, object]:
        s = self.summary
        return {
            "generator": "peerpool simulate",
            "seed": self.o.seed,
            "members": self.o.members,
            "days": self.o.days,
            "start": self.grid.start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "end": self.grid.end.isoformat().replace("+00:00", "Z"),
            "intervals": self.grid.intervals,
            "sflow_sampling_rate": self.rate,
            "router_sampling_rate": self.router_rate,
            "traffic_scale": self.o.traffic_scale,
            "sflow_counter_interval_s": self.o.counter_interval_s,
            "flows": self.o.flows,
            "wrap_port": self.topo.ports[self.topo.wrap_port].id,
            "joined_mid_period": self.topo.members[self.topo.joiner].config.id
            if self.topo.joiner is not None
            else None,
            "port_connected_mid_period": self.topo.ports[self.topo.late_port].id
            if self.topo.late_port is not None
            else None,
            "flow_samples": s.flow_samples,
            "counter_samples": s.counter_samples,
            "flow_records": s.flow_records,
            "datagrams": s.datagrams,
            "true_exchange_bytes": s.true_exchange_bytes,
            "true_transit_ip_bytes": s.true_transit_bytes,
            "truth_rows": s.truth_rows,
        }


def _server_port(protocol: int, u: float) -> int:
    if protocol == TCP:
        return 443 if u < 0.8 else 80
    return 443 if u < 0.8 else 53


def _host(nets: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], u: float, salt: int) -> bytes:
    """An address inside one of ``nets`` (chosen by ``salt``), at fraction ``u`` of its hosts."""
    net = nets[salt % len(nets)]
    size = net.num_addresses
    offset = 1 + int(u * (size - 2)) if size > 2 else 0
    return (net.network_address + offset).packed


def simulate(options: SimulationOptions, progress: ProgressFn | None = None) -> Summary:
    return Simulation(options).run(progress)


__all__ = ["SimulationOptions", "Summary", "simulate"]
