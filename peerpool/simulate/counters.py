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
COLUMNS = (
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
        wrap = topo.wrap_port
        for row, lead in enumerate((WRAP_LEAD_OCTETS, WRAP_LEAD_OCTETS, WRAP_LEAD_PACKETS, WRAP_LEAD_PACKETS)):
            self.offset[row, wrap] = int(rng.integers(1, 1 << 20)) * MOD32 + MOD32 - lead
        devices = sorted(
            {p.device_id for p in ports} | {s.id for s in topo.exchange.switches} | {r.id for r in topo.routers}
        )
        self.boot_ns = {
            d: grid.start_ns - int(rng.integers(5 * 86400, 200 * 86400)) * NS for d in devices
        }
        self.device_ports: dict[str, list[int]] = {d: [] for d in devices}
        for p in ports:
            self.device_ports[p.device_id].append(p.index)
        self.bits = np.array([p.counter_bits for p in ports], dtype=np.int64)
        self.active_from = np.array([p.active_from_ns for p in ports], dtype=np.int64)
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

    # --- polling ---------------------------------------------------------------------------
    def poll(self, k: int, traffic: IntervalTraffic, *, final: bool = False) -> PollResult:
        """Poll every port in service ``k`` intervals after the start (``final``: after the end)."""
        rng = np.random.default_rng([self.seed, 4, k])
        start_ms = (self.grid.start_ns // 1_000_000) + k * INTERVAL_MS
        start_ns = start_ms * 1_000_000
        x = np.stack(
            [traffic.port_in_bytes, traffic.port_out_bytes, traffic.port_in_packets, traffic.port_out_packets]
        )
        base = self.cum  # for the final poll it already holds the whole run and x extends the last rate
        outages = self.plan.down_ports(k) if not final else set()
        ports_out: list[int] = []
        times: list[int] = []
        cums: list[npt.NDArray[np.int64]] = []
        rows: dict[str, list[object]] = {c: [] for c in COLUMNS}
        for device in sorted(self.device_ports):
            jitter = int(rng.integers(1000, 9000))
            device_missed = (device, k) in self.plan.missed_devices
            self.poll_times[(device, k)] = (start_ms + jitter) * 1_000_000
            order = 0
            for p in self.device_ports[device]:
                if self.active_from[p] > start_ns:
                    continue
                port = self.topo.ports[p]
                if port.member_index >= 0 and self.topo.members[port.member_index].active_from_ns > start_ns:
                    continue
                poll_ms = start_ms + jitter + 2 * order
                order += 1
                offset_ms = poll_ms - start_ms
                cum = base[:, p] + x[:, p] * offset_ms // INTERVAL_MS
                ports_out.append(p)
                times.append(poll_ms)
                cums.append(cum)
                ok = not device_missed and (p, k) not in self.plan.missed_ports
                rows["polled_at"].append(poll_ms)
                rows["device_id"].append(device)
                rows["device_address"].append(port.device_address)
                rows["ifindex"].append(port.ifindex)
                rows["port_id"].append(port.id)
                rows["ok"].append(ok)
                rows["error"].append(None if ok else "timeout")
                rows["counter_bits"].append(port.counter_bits)
                if not ok:
                    for c in ("sys_uptime_cs", "in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts"):
                        rows[c].append(None)
                    for c in ("if_high_speed_mbps", "if_oper_status", "if_name", "if_alias"):
                        rows[c].append(None)
                    continue
                values = self.displayed(p, (int(cum[0]), int(cum[1]), int(cum[2]), int(cum[3])))
                if port.counter_bits == 32:
                    values = (values[0] % MOD32, values[1] % MOD32, values[2] % MOD32, values[3] % MOD32)
                    self._note_wrap(p, poll_ms, values)
                rows["sys_uptime_cs"].append(self.uptime_cs(device, poll_ms * 1_000_000))
                rows["in_octets"].append(values[0])
                rows["out_octets"].append(values[1])
                rows["in_ucast_pkts"].append(values[2])
                rows["out_ucast_pkts"].append(values[3])
                rows["if_high_speed_mbps"].append(port.speed_mbps)
                rows["if_oper_status"].append(2 if p in outages else 1)
                rows["if_name"].append(port.if_name)
                rows["if_alias"].append(port.if_alias)
        self._append(rows)
        cumulative = np.stack(cums, axis=1) if cums else np.zeros((4, 0), dtype=np.int64)
        return PollResult(np.array(ports_out, dtype=np.int64), np.array(times, dtype=np.int64), cumulative)

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

    def advance(self, traffic: IntervalTraffic) -> None:
        self.cum[0] += traffic.port_in_bytes
        self.cum[1] += traffic.port_out_bytes
        self.cum[2] += traffic.port_in_packets
        self.cum[3] += traffic.port_out_packets

    # --- CSV -------------------------------------------------------------------------------
    def _append(self, rows: dict[str, list[object]]) -> None:
        if not rows["polled_at"]:
            return
        ms = np.array(rows["polled_at"], dtype=np.int64)
        day = dt.datetime.fromtimestamp(int(ms[0]) // 1000, dt.UTC).date()
        if self._buffer is not None and self._buffer.day != day:
            self.flush()
        if self._buffer is None:
            self._buffer = _DayBuffer(day)
        text = np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "Z")
        table = pa.table(
            {
                "polled_at": pa.array(text.tolist(), pa.string()),
                "device_id": pa.array(rows["device_id"], pa.string()),
                "device_address": pa.array(rows["device_address"], pa.string()),
                "ifindex": pa.array(rows["ifindex"], pa.int64()),
                "port_id": pa.array(rows["port_id"], pa.string()),
                "ok": pa.array(rows["ok"], pa.bool_()),
                "error": pa.array(rows["error"], pa.string()),
                "sys_uptime_cs": pa.array(rows["sys_uptime_cs"], pa.int64()),
                "counter_bits": pa.array(rows["counter_bits"], pa.int64()),
                "in_octets": pa.array(rows["in_octets"], pa.uint64()),
                "out_octets": pa.array(rows["out_octets"], pa.uint64()),
                "in_ucast_pkts": pa.array(rows["in_ucast_pkts"], pa.uint64()),
                "out_ucast_pkts": pa.array(rows["out_ucast_pkts"], pa.uint64()),
                "if_high_speed_mbps": pa.array(rows["if_high_speed_mbps"], pa.int64()),
                "if_oper_status": pa.array(rows["if_oper_status"], pa.int64()),
                "if_name": pa.array(rows["if_name"], pa.string()),
                "if_alias": pa.array(rows["if_alias"], pa.string()),
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
