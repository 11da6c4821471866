"""Port counters as an SNMP poller records them, written as one CSV file per UTC day.

Counters are exact: a port's counter at any instant is its base value plus the true traffic
up to that instant, where traffic inside an interval accrues at a constant rate (whole bytes,
rounded down). So the difference of two polls is exactly the true traffic between them, which
the truth records per poll window (``poll_*`` columns of ``truth/port_traffic``).

Polls happen 1-9 s after each 5-minute boundary (one jitter per device and poll, ports of a
device 2 ms apart), with a final poll after the run's end that closes the last interval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from peerpool.simulate.faults import FaultPlan
from peerpool.simulate.timegrid import INTERVAL_MS, NS, TimeGrid
from peerpool.simulate.topology import Topology
from peerpool.simulate.traffic import IntervalTraffic

I64 = npt.NDArray[np.int64]
COLUMNS = (  # the import format the counters importer reads (header row required)
    "polled_at",
    "device_id",
    "device_address",
    "ifindex",
    "port_id",
    "ok",
    "error",
    "sys_uptime_cs",
    "counter_bits",
    "in_octets",
    "out_octets",
    "in_ucast_pkts",
    "out_ucast_pkts",
    "if_high_speed_mbps",
    "if_oper_status",
    "if_name",
    "if_alias",
)
WRAP_LEAD_OCTETS = 1 << 28  # the 32-bit port starts 256 MiB before its octet counters wrap
WRAP_LEAD_PACKETS = 200_000
MOD32 = 1 << 32
MOD64 = 1 << 64


@dataclass
class PollResult:
    """The polls of one interval: per port in service, the exact cumulative traffic at its poll."""

    ports: I64
    poll_ms: I64
    cumulative: I64  # (4, len(ports)): in/out bytes, in/out packets since the run started


@dataclass
class _DayBuffer:
    day: dt.date
    parts: list[pa.Table] = field(default_factory=list)


class Counters:
    def __init__(self, topo: Topology, grid: TimeGrid, plan: FaultPlan, seed: int, out_dir: Path) -> None:
        self.topo = topo
        self.grid = grid
        self.plan = plan
        self.seed = seed
        self.out_dir = out_dir
        self.files: list[Path] = []
        self.rows_written = 0
        ports = topo.ports
        n = len(ports)
        rng = np.random.default_rng([seed, 6])
        self.cum = np.zeros((4, n), dtype=np.int64)
        self.offset = rng.integers(1 << 30, 1 << 50, size=(4, n), dtype=np.int64)
        self.offset[2:] = self.offset[:2] // 700  # packet counters: about one packet per 700 bytes so far
        wrap = topo.wrap_port
        for row, lead in enumerate(
            (WRAP_LEAD_OCTETS, WRAP_LEAD_OCTETS, WRAP_LEAD_PACKETS, WRAP_LEAD_PACKETS)
        ):
            self.offset[row, wrap] = int(rng.integers(1, 1 << 20)) * MOD32 + MOD32 - lead
        devices = sorted(
            {p.device_id for p in ports}
            | {s.id for s in topo.exchange.switches}
            | {r.id for r in topo.routers}
        )
        self.boot_ns = {d: grid.start_ns - int(rng.integers(5 * 86400, 200 * 86400)) * NS for d in devices}
        self.device_ports: dict[str, list[int]] = {d: [] for d in devices}
        for p in ports:
            self.device_ports[p.device_id].append(p.index)
        self.bits = np.array([p.counter_bits for p in ports], dtype=np.int64)
        self.active_from = np.array([p.active_from_ns for p in ports], dtype=np.int64)
        self.member_from = np.array(
            [topo.members[p.member_index].active_from_ns if p.member_index >= 0 else 0 for p in ports],
            dtype=np.int64,
        )
        self.devices = devices
        self.port_device = np.array([devices.index(p.device_id) for p in ports], dtype=np.int64)
        self.poll_order = np.lexsort((np.arange(n), self.port_device))
        self.boot = np.zeros(len(devices), dtype=np.int64)
        self._sync_boot()
        self._device_ids = pa.array([p.device_id for p in ports], pa.string())
        self._addresses = pa.array([p.device_address for p in ports], pa.string())
        self._port_ids = pa.array([p.id for p in ports], pa.string())
        self._ifindex = np.array([p.ifindex for p in ports], dtype=np.int64)
        self._speed = np.array([p.speed_mbps for p in ports], dtype=np.int64)
        self._names = np.array([p.if_name for p in ports], dtype=object)
        self._aliases = np.array([p.if_alias for p in ports], dtype=object)
        self.last_displayed: dict[int, tuple[int, int, int, int]] = {}
        self.last_poll_ms: dict[int, int] = {}
        self.wrap_events: list[dict[str, object]] = []
        self.poll_times: dict[tuple[str, int], int] = {}  # (device, interval) -> first poll (ns)
        self._buffer: _DayBuffer | None = None

    # --- values ----------------------------------------------------------------------------
    def displayed(self, port: int, cumulative: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """Counter values (as the device shows them, 64-bit) for a port's cumulative traffic."""
        vals = [int(cumulative[r]) + int(self.offset[r, port]) for r in range(4)]
        return (vals[0] % MOD64, vals[1] % MOD64, vals[2] % MOD64, vals[3] % MOD64)

    def cumulative_at(self, port: int, traffic: IntervalTraffic, offset_ms: int) -> tuple[int, int, int, int]:
        """True cumulative (in bytes, out bytes, in packets, out packets) ``offset_ms`` into the interval."""
        x = (
            int(traffic.port_in_bytes[port]),
            int(traffic.port_out_bytes[port]),
            int(traffic.port_in_packets[port]),
            int(traffic.port_out_packets[port]),
        )
        return (
            int(self.cum[0, port]) + x[0] * offset_ms // INTERVAL_MS,
            int(self.cum[1, port]) + x[1] * offset_ms // INTERVAL_MS,
            int(self.cum[2, port]) + x[2] * offset_ms // INTERVAL_MS,
            int(self.cum[3, port]) + x[3] * offset_ms // INTERVAL_MS,
        )

    def uptime_cs(self, device: str, instant_ns: int) -> int:
        return ((instant_ns - self.boot_ns[device]) // 10_000_000) % MOD32

    def _sync_boot(self) -> None:
        for d, device in enumerate(self.devices):
            self.boot[d] = self.boot_ns[device]

    # --- polling ---------------------------------------------------------------------------
    def poll(self, k: int, traffic: IntervalTraffic, *, final: bool = False) -> PollResult:
        """Poll every port in service ``k`` intervals after the start (``final``: after the end).

        ``final`` extends the last interval's rate past the end for the few seconds of the
        closing poll, so the last interval has a closing read like every other one.
        """
        rng = np.random.default_rng([self.seed, 4, k])
        start_ms = (self.grid.start_ns // 1_000_000) + k * INTERVAL_MS
        start_ns = start_ms * 1_000_000
        jitter = rng.integers(1000, 9000, size=len(self.devices))
        for d, name in enumerate(self.devices):
            self.poll_times[(name, k)] = int(start_ms + jitter[d]) * 1_000_000
        serving = (self.active_from <= start_ns) & (self.member_from <= start_ns)
        ports = self.poll_order[serving[self.poll_order]]
        device = self.port_device[ports]
        first_of_device = np.searchsorted(device, device, side="left")
        order = np.arange(ports.shape[0]) - first_of_device
        poll_ms = start_ms + jitter[device] + 2 * order
        x = np.stack(
            [traffic.port_in_bytes, traffic.port_out_bytes, traffic.port_in_packets, traffic.port_out_packets]
        )[:, ports]
        cumulative = self.cum[:, ports] + x * (poll_ms - start_ms) // INTERVAL_MS
        shown = cumulative + self.offset[:, ports]
        narrow = self.bits[ports] == 32
        shown[:, narrow] %= MOD32
        failed = np.zeros(ports.shape[0], dtype=bool)
        for d_id, kk in self.plan.missed_devices:
            if kk == k:
                failed |= device == self.devices.index(d_id)
        for p, kk in self.plan.missed_ports:
            if kk == k:
                failed |= ports == p
        down = np.zeros(ports.shape[0], dtype=bool)
        if not final:
            for p in self.plan.down_ports(k):
                down |= ports == p
        uptime = ((poll_ms * 1_000_000 - self.boot[device]) // 10_000_000) % MOD32
        for i in np.nonzero(narrow & ~failed)[0]:
            p = int(ports[i])
            self._note_wrap(p, int(poll_ms[i]), tuple(int(v) for v in shown[:, i]))  # type: ignore[arg-type]
        sort = np.argsort(poll_ms, kind="stable")
        self._append(ports[sort], poll_ms[sort], shown[:, sort], uptime[sort], failed[sort], down[sort])
        return PollResult(ports, poll_ms, cumulative)

    def _note_wrap(self, port: int, poll_ms: int, values: tuple[int, int, int, int]) -> None:
        previous = self.last_displayed.get(port)
        if previous is not None:
            names = ("in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts")
            wrapped = [names[i] for i in range(4) if values[i] < previous[i]]
            if wrapped:
                self.wrap_events.append(
                    {
                        "start_ms": self.last_poll_ms[port],
                        "end_ms": poll_ms,
                        "port": port,
                        "detail": "32-bit counter wrapped between these polls: " + ", ".join(wrapped),
                    }
                )
        self.last_displayed[port] = values
        self.last_poll_ms[port] = poll_ms

    def apply_reboots(self, k: int) -> None:
        """A switch rebooting in interval ``k`` restarts every counter at 0 (it forwards nothing in ``k``)."""
        for reboot in self.plan.reboot_ending(k):
            for p in self.device_ports[reboot.device]:
                self.offset[:, p] = -self.cum[:, p]
            self.boot_ns[reboot.device] = reboot.up_ns
        self._sync_boot()

    def advance(self, traffic: IntervalTraffic) -> None:
        self.cum[0] += traffic.port_in_bytes
        self.cum[1] += traffic.port_out_bytes
        self.cum[2] += traffic.port_in_packets
        self.cum[3] += traffic.port_out_packets

    # --- CSV -------------------------------------------------------------------------------
    def _append(
        self,
        ports: I64,
        poll_ms: I64,
        shown: I64,
        uptime: I64,
        failed: npt.NDArray[np.bool_],
        down: npt.NDArray[np.bool_],
    ) -> None:
        if ports.shape[0] == 0:
            return
        day = dt.datetime.fromtimestamp(int(poll_ms[0]) // 1000, dt.UTC).date()
        if self._buffer is not None and self._buffer.day != day:
            self.flush()
        if self._buffer is None:
            self._buffer = _DayBuffer(day)
        text = np.char.add(np.datetime_as_string(poll_ms.astype("datetime64[ms]"), unit="ms"), "Z")
        take = pa.array(ports)
        ok = ~failed

        def counter(row: int) -> pa.Array:
            return pa.array(shown[row].astype(np.uint64), pa.uint64(), mask=failed)

        table = pa.table(
            {
                "polled_at": pa.array(text, pa.string()),
                "device_id": self._device_ids.take(take),
                "device_address": self._addresses.take(take),
                "ifindex": pa.array(self._ifindex[ports], pa.int64()),
                "port_id": self._port_ids.take(take),
                "ok": pa.array(ok, pa.bool_()),
                "error": pa.array(np.where(failed, "timeout", ""), pa.string(), mask=ok),
                "sys_uptime_cs": pa.array(uptime, pa.int64(), mask=failed),
                "counter_bits": pa.array(self.bits[ports], pa.int64()),
                "in_octets": counter(0),
                "out_octets": counter(1),
                "in_ucast_pkts": counter(2),
                "out_ucast_pkts": counter(3),
                "if_high_speed_mbps": pa.array(self._speed[ports], pa.int64(), mask=failed),
                "if_oper_status": pa.array(np.where(down, 2, 1), pa.int64(), mask=failed),
                "if_name": pa.array(self._names[ports], pa.string(), mask=failed),
                "if_alias": pa.array(self._aliases[ports], pa.string(), mask=failed),
            }
        )
        self._buffer.parts.append(table)

    def flush(self) -> None:
        if self._buffer is None:
            return
        directory = self.out_dir / "counters"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"counters-{self._buffer.day.isoformat()}.csv"
        table = pa.concat_tables(self._buffer.parts)
        tmp = path.with_suffix(".csv.tmp")
        pacsv.write_csv(table, tmp, pacsv.WriteOptions(include_header=True, quoting_style="needed"))
        tmp.replace(path)
        self.files.append(path)
        self.rows_written += table.num_rows
        self._buffer = None
