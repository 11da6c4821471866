"""What to poll: every configured port (member ports and border-router ports) grouped by device.

The configuration names SNMP secrets by environment variable; :func:`resolve_credentials`
reads them and refuses to start with a message naming the missing variable, before any
packet is sent (a poller that silently polls with an empty community only produces
timeouts, which look exactly like an unreachable device).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from peerpool.config.model import Exchange, SnmpSettings
from peerpool.errors import ConfigError


@dataclass(frozen=True)
class PortTarget:
    """One port to read: its configuration id, ifIndex, counter width and configured speed."""

    port_id: str
    ifindex: int
    counter_bits: int  # 64 (ifHC*) or 32 (ifIn/OutOctets)
    speed_mbps: int


@dataclass(frozen=True)
class DeviceTarget:
    """One SNMP agent (a switch or a border router) and the ports polled on it."""

    device_id: str
    address: str
    snmp: SnmpSettings
    ports: tuple[PortTarget, ...]


@dataclass(frozen=True)
class Credentials:
    """Secrets of one device, read from the environment (never from the file)."""

    community: str = ""
    auth_key: str = ""
    priv_key: str = ""


def port_is_active(connected: dt.date, disconnected: dt.date | None, day: dt.date) -> bool:
    """A member port is polled from its connection date until (excluding) its disconnection date."""
    return connected <= day and (disconnected is None or day < disconnected)


def device_targets(exchange: Exchange, day: dt.date | None = None) -> list[DeviceTarget]:
    """Every device with at least one port to poll on ``day`` (default: today, UTC).

    Member ports are grouped under their switch; border-router ports under their router.
    Ports disconnected before ``day`` or not yet connected are left out.
    """
    day = day or dt.datetime.now(dt.UTC).date()
    targets: list[DeviceTarget] = []
    for switch in exchange.switches:
        ports = tuple(
            PortTarget(p.id, p.ifindex, p.counter_bits, p.speed_mbps)
            for p in exchange.ports
            if p.switch == switch.id and port_is_active(p.connected, p.disconnected, day)
        )
        if ports:
            targets.append(DeviceTarget(switch.id, switch.management_address, switch.snmp, ports))
    for router in exchange.border_routers:
        ports = tuple(PortTarget(p.id, p.ifindex, 64, p.speed_mbps) for p in router.ports)
        if ports:
            targets.append(DeviceTarget(router.id, router.management_address, router.snmp, ports))
    return targets


def _secret(env: Mapping[str, str], var: str, device_id: str, profile: str, what: str) -> str:
    where = f"device {device_id}" + (f" (snmp profile '{profile}')" if profile else "")
    if not var:
        raise ConfigError(f"{where}: no environment variable is named for the {what}; set {what}_env")
    value = env.get(var, "")
    if not value:
        raise ConfigError(
            f"{where}: environment variable {var} is not set; export it with the {what.replace('_', ' ')}"
        )
    return value


def resolve_credentials(target: DeviceTarget, env: Mapping[str, str] | None = None) -> Credentials:
    """Read the device's SNMP secrets from the environment variables its profile names."""
    env = os.environ if env is None else env
    snmp = target.snmp
    if snmp.version == "2c":
        return Credentials(
            community=_secret(env, snmp.community_env, target.device_id, snmp.profile, "community")
        )
    if not snmp.user:
        raise ConfigError(
            f"device {target.device_id}: snmp version 3 needs a user; set user in its snmp profile"
        )
    auth = priv = ""
    if snmp.auth_protocol:
        auth = _secret(env, snmp.auth_key_env, target.device_id, snmp.profile, "auth_key")
    if snmp.priv_protocol:
        if not snmp.auth_protocol:
            raise ConfigError(
                f"device {target.device_id}: snmp v3 privacy needs authentication; set auth_protocol"
            )
        priv = _secret(env, snmp.priv_key_env, target.device_id, snmp.profile, "priv_key")
    return Credentials(auth_key=auth, priv_key=priv)
