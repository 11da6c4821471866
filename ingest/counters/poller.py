"""SNMP poller: IF-MIB counters, speed, status and sysUpTime of every configured port.

Built on gufo-snmp (asyncio, Rust core). A gufo session carries one request at a time, so
concurrency comes from polling many devices at once, and from a few sessions per device
(``in_flight_per_device``, the cap on requests in flight to one agent: a small switch CPU
or a full UDP buffer drops answers when hammered). Within a request, several ports are
batched (``max_varbinds``); sysUpTime rides in every request, so a reboot between two polls
is visible on the same PDU as the counters it invalidates.

Every configured port gets exactly one row per poll. A read that fails (timeout, missing
instance, authentication) becomes a row with ``ok = False``, null counters and the reason.
A device that does not answer its first request after all retries is not asked again in
the same poll: its remaining ports fail at once with the same reason, instead of making
the poll wait ``ports x retries x timeout``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gufo.snmp import (
    Aes128Key,
    BaseAuthKey,
    BasePrivKey,
    DesKey,
    Md5Key,
    Sha1Key,
    Sha256Key,
    SnmpAuthError,
    SnmpError,
    User,
)
from gufo.snmp.aio.client import SnmpSession

from ingest.counters import oids
from ingest.counters.reads import reads_table, write_poll
from ingest.counters.targets import Credentials, DeviceTarget, PortTarget, device_targets, resolve_credentials
from peerpool.config.model import Exchange

Row = dict[str, Any]

_AUTH: dict[str, type[BaseAuthKey]] = {"MD5": Md5Key, "SHA": Sha1Key, "SHA256": Sha256Key}
_PRIV: dict[str, type[BasePrivKey]] = {"AES": Aes128Key, "DES": DesKey}


@dataclass(frozen=True)
class PollOptions:
    """Tuning of one poll. Timeouts and retries come from each device's SNMP profile."""

    max_varbinds: int = 48  # varbinds per request (sysUpTime + 8 per port); an agent's PDU limit bounds it
    in_flight_per_device: int = 2  # requests in flight to one agent (one session each)
    max_devices: int = 64  # devices polled at the same time


@dataclass
class PollStats:
    """What one poll did: counted per device and in total."""

    poll_time: dt.datetime
    devices: int = 0
    ports: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)  # device -> first error seen
    parts: list[Path] = field(default_factory=list)


def _now_us() -> int:
    return time.time_ns() // 1000


def _utc(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def _session(target: DeviceTarget, creds: Credentials) -> SnmpSession:
    snmp = target.snmp
    if snmp.version == "2c":
        return SnmpSession(target.address, snmp.port, community=creds.community, timeout=snmp.timeout_s)
    auth = _AUTH[snmp.auth_protocol](creds.auth_key.encode()) if snmp.auth_protocol else None
    priv = _PRIV[snmp.priv_protocol](creds.priv_key.encode()) if snmp.priv_protocol else None
    user = User(snmp.user, auth_key=auth, priv_key=priv)
    return SnmpSession(target.address, snmp.port, user=user, timeout=snmp.timeout_s)


def _describe(exc: BaseException, target: DeviceTarget, attempts: int) -> str:
    snmp = target.snmp
    if isinstance(exc, TimeoutError):
        hint = "community" if snmp.version == "2c" else "v3 user and keys"
        return (
            f"timeout: no answer from {target.address}:{snmp.port} after {attempts} attempt(s) of "
            f"{snmp.timeout_s:g} s (device unreachable, or wrong {hint})"
        )
    if isinstance(exc, SnmpAuthError):
        return (
            f"snmp v3 authentication failed at {target.address}:{snmp.port} (check user, keys and protocols)"
        )
    if isinstance(exc, OSError):
        return f"network error towards {target.address}:{snmp.port}: {exc.strerror or exc}"
    return f"snmp error from {target.address}:{snmp.port}: {exc}"


def _counter(value: Any, bits: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (1 << bits):
        return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def port_row(target: DeviceTarget, port: PortTarget, values: Mapping[str, Any], polled_at_us: int) -> Row:
    """One ``port_counters`` row from a GET answer (OID -> value); ok only if both octet counters came."""
    wanted = oids.port_oids(port.ifindex, port.counter_bits)
    got = {name: values.get(oid) for name, oid in wanted.items()}
    row: Row = {
        "polled_at": _utc(polled_at_us),
        "source": "snmp",
        "device_id": target.device_id,
        "device_address": target.address,
        "ifindex": port.ifindex,
        "port_id": port.port_id,
        "counter_bits": port.counter_bits,
        "sys_uptime_cs": _int(values.get(oids.SYS_UPTIME)),
        "if_high_speed_mbps": _int(got["if_high_speed_mbps"]),
        "if_oper_status": _int(got["if_oper_status"]),
        "if_name": _text(got["if_name"]),
        "if_alias": _text(got["if_alias"]),
    }
    problems = []
    for name in ("in_octets", "out_octets"):
        oid = wanted[name]
        if oid not in values:
            problems.append(f"{oids.NAMES[oid.rsplit('.', 1)[0]]}.{port.ifindex}")
    if problems:
        row.update(
            ok=False,
            error=(
                f"no such instance: {', '.join(problems)} (is ifindex {port.ifindex} of port "
                f"{port.port_id} right, and does the agent serve {port.counter_bits}-bit counters?)"
            ),
        )
        return row
    counters = {
        name: _counter(got[name], port.counter_bits) for name in oids.COUNTER_COLUMNS[port.counter_bits]
    }
    if counters["in_octets"] is None or counters["out_octets"] is None:
        row.update(
            ok=False,
            error=f"unexpected octet counter values {got['in_octets']!r}, {got['out_octets']!r}",
        )
        return row
    row.update(counters, ok=True, error=None)
    return row


def failed_row(target: DeviceTarget, port: PortTarget, error: str, polled_at_us: int) -> Row:
    """A failed read: no counters at all (never zeros), the reason kept."""
    return {
        "polled_at": _utc(polled_at_us),
        "source": "snmp",
        "device_id": target.device_id,
        "device_address": target.address,
        "ifindex": port.ifindex,
        "port_id": port.port_id,
        "ok": False,
        "error": error,
        "counter_bits": port.counter_bits,
    }


def batches(ports: Sequence[PortTarget], max_varbinds: int) -> list[list[PortTarget]]:
    """Ports grouped so that sysUpTime plus 8 varbinds per port fit in ``max_varbinds``."""
    per_request = max(1, (max_varbinds - 1) // 8)
    return [list(ports[i : i + per_request]) for i in range(0, len(ports), per_request)]


class _DeviceState:
    """Shared by the sessions of one device: whether it answered at all in this poll."""

    def __init__(self) -> None:
        self.answered = False
        self.dead: str | None = None


async def _request(
    session: SnmpSession, target: DeviceTarget, request_oids: list[str]
) -> tuple[dict[str, Any], int, int]:
    """GET with the profile's retries; returns the answer and the send/receive times (µs)."""
    attempts = target.snmp.retries + 1
    last: BaseException | None = None
    for _ in range(attempts):
        sent = _now_us()
        try:
            answer = await session.get_many(request_oids)
        except TimeoutError as exc:
            last = exc
            continue
        return answer, sent, _now_us()
    assert last is not None
    raise last


async def _poll_batch(
    session: SnmpSession, target: DeviceTarget, ports: list[PortTarget], state: _DeviceState, rows: list[Row]
) -> None:
    started = _now_us()
    if state.dead is not None:
        rows.extend(failed_row(target, p, state.dead, started) for p in ports)
        return
    request_oids = [oids.SYS_UPTIME] + [
        o for p in ports for o in oids.port_oids(p.ifindex, p.counter_bits).values()
    ]
    try:
        answer, sent, received = await _request(session, target, request_oids)
    except SnmpAuthError as exc:
        state.dead = _describe(exc, target, 1)
        rows.extend(failed_row(target, p, state.dead, started) for p in ports)
        return
    except TimeoutError as exc:
        error = _describe(exc, target, target.snmp.retries + 1)
        if not state.answered:
            state.dead = error
        rows.extend(failed_row(target, p, error, started) for p in ports)
        return
    except (SnmpError, OSError, ValueError) as exc:
        if len(ports) > 1:  # e.g. tooBig: ask again in halves
            half = len(ports) // 2
            await _poll_batch(session, target, ports[:half], state, rows)
            await _poll_batch(session, target, ports[half:], state, rows)
            return
        rows.extend(failed_row(target, p, _describe(exc, target, 1), started) for p in ports)
        return
    except Exception as exc:  # one device's surprise must not lose the other devices' poll
        rows.extend(failed_row(target, p, f"unexpected error: {exc!r}", started) for p in ports)
        return
    state.answered = True
    midpoint = sent + (received - sent) // 2  # best estimate of when the agent read its counters
    rows.extend(port_row(target, p, answer, midpoint) for p in ports)


async def _worker(
    target: DeviceTarget,
    creds: Credentials,
    work: list[list[PortTarget]],
    state: _DeviceState,
    rows: list[Row],
) -> None:
    started = _now_us()
    try:
        session = _session(target, creds)
        attempts = target.snmp.retries + 1
        for attempt in range(attempts):
            try:
                await session.refresh()  # SNMPv3 engine discovery and time sync; no-op for v2c
                break
            except TimeoutError:
                if attempt == attempts - 1:
                    raise
    except (TimeoutError, SnmpError, OSError, ValueError) as exc:
        error = _describe(exc, target, target.snmp.retries + 1)
        if not state.answered:
            state.dead = error
        rows.extend(failed_row(target, p, error, started) for batch in work for p in batch)
        return
    for batch in work:
        await _poll_batch(session, target, batch, state, rows)


async def poll_device(target: DeviceTarget, creds: Credentials, options: PollOptions) -> list[Row]:
    """One row per configured port of ``target`` (failed reads included), in the configured order."""
    work = batches(target.ports, options.max_varbinds)
    lanes = max(1, min(options.in_flight_per_device, len(work)))
    shares = [work[i::lanes] for i in range(lanes)]
    state = _DeviceState()
    rows: list[Row] = []
    await asyncio.gather(*(_worker(target, creds, share, state, rows) for share in shares))
    order = {p.port_id: i for i, p in enumerate(target.ports)}
    rows.sort(key=lambda r: order[r["port_id"]])
    return rows


async def poll_devices(
    targets: Sequence[DeviceTarget],
    credentials: Mapping[str, Credentials],
    options: PollOptions,
    on_device: Callable[[DeviceTarget, list[Row]], None] | None = None,
) -> dict[str, list[Row]]:
    """Poll every device concurrently (at most ``options.max_devices`` at once)."""
    gate = asyncio.Semaphore(max(1, options.max_devices))
    results: dict[str, list[Row]] = {}

    async def one(target: DeviceTarget) -> None:
        async with gate:
            rows = await poll_device(target, credentials[target.device_id], options)
        results[target.device_id] = rows
        if on_device is not None:
            on_device(target, rows)

    await asyncio.gather(*(one(t) for t in targets))
    return results


def poll_once(
    exchange: Exchange,
    lake: Path,
    poll_time: dt.datetime | None = None,
    *,
    options: PollOptions | None = None,
    env: Mapping[str, str] | None = None,
    targets: Sequence[DeviceTarget] | None = None,
) -> PollStats:
    """Poll every configured port once and store the reads, one part per device.

    ``poll_time`` names the poll (part key and partition); a second run with the same
    ``poll_time`` replaces the first one's parts. Credentials are checked for every device
    before anything is sent.
    """
    options = options or PollOptions()
    poll_time = (poll_time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    if targets is None:
        targets = device_targets(exchange, poll_time.date())
    credentials = {t.device_id: resolve_credentials(t, env) for t in targets}
    stats = PollStats(poll_time=poll_time, devices=len(targets))

    def store(target: DeviceTarget, rows: list[Row]) -> None:
        stats.parts.append(write_poll(lake, reads_table(rows), poll_time, target.device_id))
        for row in rows:
            stats.ports += 1
            if row["ok"]:
                stats.ok += 1
            else:
                stats.failed += 1
                stats.errors.setdefault(target.device_id, str(row["error"]))

    began = time.perf_counter()
    asyncio.run(poll_devices(targets, credentials, options, on_device=store))
    stats.seconds = time.perf_counter() - began
    return stats


def next_slot(now: dt.datetime, interval_s: int) -> dt.datetime:
    """The next wall-clock multiple of ``interval_s`` after ``now`` (polls aligned to interval boundaries)."""
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp((epoch // interval_s + 1) * interval_s, dt.UTC)


def poll_forever(
    exchange: Exchange,
    lake: Path,
    *,
    interval_s: int = 300,
    cycles: int | None = None,
    options: PollOptions | None = None,
    report: Callable[[PollStats], None] | None = None,
) -> None:
    """Poll at every interval boundary; ``cycles`` bounds the number of polls (None: until interrupted).

    A poll that overruns its slot makes the loop skip to the next free boundary (the
    missed slots become gaps, which hygiene shows explicitly).
    """
    done = 0
    while cycles is None or done < cycles:
        slot = next_slot(dt.datetime.now(dt.UTC), interval_s)
        time.sleep(max(0.0, (slot - dt.datetime.now(dt.UTC)).total_seconds()))
        stats = poll_once(exchange, lake, slot, options=options)
        if report is not None:
            report(stats)
        done += 1
