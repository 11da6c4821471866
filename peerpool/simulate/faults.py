"""The faults a real exchange throws at its counters, placed on purpose and written to the truth.

* a device reboot: one switch stops forwarding for one interval, comes back with ``sysUpTime``
  near 0 and every counter restarted from 0 (its sFlow agent restarts its sequence numbers too);
* port outages: ``ifOperStatus`` 2 and no traffic for an hour or more;
* missed polls: a whole device (a border router) or single ports time out;
* one 32-bit port (``counter_bits = 32``), started close to 2^32 so it wraps on the first day.

Fault times are fractions of the run, so even a one-day run has every kind; longer runs get
more (a reboot every ~15 days, an outage a week, ...). Faults never touch the 32-bit port or
its switch, so each one can be checked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from peerpool.simulate.timegrid import INTERVAL_NS, NS, TimeGrid
from peerpool.simulate.topology import Topology

CRASH_AFTER_S = 15  # into the interval: after that interval's poll (polls are 1-9 s after the boundary)
BOOT_TIME_S = 180


@dataclass(frozen=True)
class Reboot:
    device: str
    k: int
    crash_ns: int
    up_ns: int


@dataclass(frozen=True)
class Outage:
    port: int
    k_from: int
    k_to: int  # exclusive


@dataclass
class FaultPlan:
    reboots: list[Reboot] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    missed_devices: set[tuple[str, int]] = field(default_factory=set)
    missed_ports: set[tuple[int, int]] = field(default_factory=set)

    def down_ports(self, k: int) -> set[int]:
        return {o.port for o in self.outages if o.k_from <= k < o.k_to}

    def down_devices(self, k: int) -> set[str]:
        return {r.device for r in self.reboots if r.k == k}

    def reboot_ending(self, k: int) -> list[Reboot]:
        return [r for r in self.reboots if r.k == k]


def plan_faults(seed: int, topo: Topology, grid: TimeGrid) -> FaultPlan:
    rng = np.random.default_rng([seed, 5])
    plan = FaultPlan()
    k_total = grid.intervals
    days = grid.days
    wrap = topo.ports[topo.wrap_port]
    member_ports = topo.ports[: topo.member_port_count]

    def at(fraction: float) -> int:
        return min(k_total - 2, max(1, int(fraction * k_total)))

    def in_service(p: int, k: int) -> bool:
        start = grid.interval_start_ns(k)
        port = topo.ports[p]
        member_from = topo.members[port.member_index].active_from_ns if port.member_index >= 0 else 0
        return port.active_from_ns <= start and member_from <= start

    # reboots: the busiest switch that does not hold the 32-bit port
    switch_load: dict[str, int] = {}
    for p in member_ports:
        if p.device_id != wrap.device_id:
            switch_load[p.device_id] = switch_load.get(p.device_id, 0) + 1
    switches = sorted(switch_load, key=lambda s: (-switch_load[s], s))
    count = 1 + days // 15
    for j in range(count):
        if not switches:
            break
        k = at((j + 0.45) / count)
        start = grid.interval_start_ns(k)
        device = switches[j % len(switches)]
        plan.reboots.append(
            Reboot(device, k, start + CRASH_AFTER_S * NS, start + (CRASH_AFTER_S + BOOT_TIME_S) * NS)
        )

    # outages: prefer members with one port (they go dark), never the 32-bit port
    special = {topo.joiner, topo.members[wrap.member_index].index}
    single = [
        p.index
        for p in member_ports
        if p.index != topo.wrap_port
        and len(topo.members[p.member_index].ports) == 1
        and p.member_index not in special
    ]
    others = [p.index for p in member_ports if p.index != topo.wrap_port and p.index != topo.late_port]
    pool = single or others
    count = 1 + days // 7
    for j in range(count):
        k = at((j + 0.55) / count)
        length = int(rng.integers(12, 37))
        candidates = [p for p in pool if in_service(p, k)] or pool
        port = int(candidates[int(rng.integers(0, len(candidates)))])
        plan.outages.append(Outage(port, k, min(k_total, k + length)))

    # missed polls: border routers time out as a whole; single member ports time out alone
    routers = [r.id for r in topo.routers]
    count = 1 + days // 5
    for j in range(count):
        plan.missed_devices.add((routers[j % len(routers)], at((j + 0.3) / count)))
    count = 2 + days // 3
    for j in range(count):
        k = at((j + (0.2 if j % 2 == 0 else 0.7)) / count)
        candidates = [p.index for p in member_ports if p.index != topo.wrap_port and in_service(p.index, k)]
        plan.missed_ports.add((int(candidates[int(rng.integers(0, len(candidates)))]), k))
    return plan


def interval_of(grid: TimeGrid, instant_ns: int) -> int:
    return (instant_ns - grid.start_ns) // INTERVAL_NS
