"""Enrichment: who is behind a MAC, which switch an agent is, which AS originates an address.

Lookups come from the exchange configuration (``Exchange.mac_table()``, switches, border
routers) and a pyasn database. Nothing is dropped for lack of a match: the row keeps a null
member and the MAC is reported in ``unknown_macs``.

VLAN matching: a member port is on one VLAN, and the same router MAC may appear on several
ports (one per VLAN), so (mac, vlan) is the key. A sample that carries no VLAN at all (untagged
frame on an access port and no extended-switch record, or VLAN 0) matches a MAC only when that
MAC is on exactly one port; a tagged sample must match the port's VLAN exactly, because a
mismatch means the configuration or the switch is wrong, which should show, not be guessed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from peerpool.config.model import Exchange, MemberPort, Switch
from peerpool.errors import InputError


class AsnLookup:
    """IP address -> origin AS with pyasn (IPv4 and IPv6 in one database), memoised."""

    def __init__(self, path: Path) -> None:
        import pyasn

        if not path.is_file():
            raise InputError(
                f"{path}: no such asn database; build one with 'peerpool asn build RIB... --out FILE'"
            )
        try:
            self._db: Any = pyasn.pyasn(str(path))
        except Exception as exc:  # pyasn raises bare Exception/RuntimeError on a bad file
            raise InputError(
                f"{path}: not a pyasn ipasn database ({exc}); build one with 'peerpool asn build'"
            ) from None
        self._cache: dict[str, int | None] = {}
        self.path = path

    def lookup(self, address: str | None) -> int | None:
        if address is None:
            return None
        cache = self._cache
        if address in cache:
            return cache[address]
        try:
            origin = self._db.lookup(address)[0]
        except ValueError:
            origin = None
        if len(cache) > 1_000_000:
            cache.clear()
        cache[address] = origin
        return origin if origin is None else int(origin)


class Enricher:
    """Everything the pipeline needs from the configuration and the ASN database, as fast lookups."""

    def __init__(self, exchange: Exchange | None = None, asn: AsnLookup | None = None) -> None:
        self.exchange = exchange
        self.asn = asn
        self._mac_vlan: dict[tuple[str, int], MemberPort] = {}
        self._mac_only: dict[str, MemberPort] = {}
        self._agents: dict[str, Switch] = {}
        self._ifindex_port: dict[tuple[str, int], str] = {}
        self._device: dict[str, str] = {}
        self.sampling_overrides: dict[str, int] = {}
        self.border_exporters: set[str] = set()
        if exchange is None:
            return
        self._mac_vlan = {(mac.lower(), vlan): port for (mac, vlan), port in exchange.mac_table().items()}
        by_mac = Counter(mac for mac, _vlan in self._mac_vlan)
        self._mac_only = {mac: port for (mac, _vlan), port in self._mac_vlan.items() if by_mac[mac] == 1}
        for switch in exchange.switches:
            for address in {
                switch.sflow_agent_address or switch.management_address,
                switch.management_address,
            }:
                if address:
                    self._agents.setdefault(address, switch)
                    self._device.setdefault(address, switch.id)
        for port in exchange.ports:
            self._ifindex_port[(port.switch, port.ifindex)] = port.id
        for router in exchange.border_routers:
            self.border_exporters.add(router.flow_exporter_address)
            for address in (router.flow_exporter_address, router.management_address):
                self._device.setdefault(address, router.id)
            for bport in router.ports:
                self._ifindex_port[(router.id, bport.ifindex)] = bport.id
            if router.sampling_rate_override is not None:
                self.sampling_overrides[router.flow_exporter_address] = router.sampling_rate_override

    @property
    def has_config(self) -> bool:
        return self.exchange is not None

    def switch_for_agent(self, agent: str) -> Switch | None:
        return self._agents.get(agent)

    def is_exchange_agent(self, agent: str) -> bool:
        """sFlow from an exchange switch feeds the member matrix (without a configuration: every agent)."""
        return self.exchange is None or agent in self._agents

    def site_for_agent(self, agent: str) -> str | None:
        switch = self._agents.get(agent)
        return switch.site if switch is not None else None

    def device_id(self, address: str) -> str:
        """The configured switch/router id of an address, or the address itself when unknown."""
        return self._device.get(address, address)

    def port_id_for_ifindex(self, address: str, ifindex: int | None) -> str | None:
        if ifindex is None:
            return None
        device = self._device.get(address)
        if device is None:
            return None
        return self._ifindex_port.get((device, ifindex))

    def port_for_mac(self, mac: str | None, vlan: int | None) -> MemberPort | None:
        if mac is None:
            return None
        if vlan:
            return self._mac_vlan.get((mac, vlan))
        return self._mac_only.get(mac)

    def member_ports(
        self, keys: set[tuple[str | None, int | None]]
    ) -> dict[tuple[str | None, int | None], tuple[str | None, str | None]]:
        """(mac, vlan) -> (member id, port id) for a batch of keys (None, None when unknown)."""
        out: dict[tuple[str | None, int | None], tuple[str | None, str | None]] = {}
        for mac, vlan in keys:
            port = self.port_for_mac(mac, vlan)
            out[(mac, vlan)] = (port.member, port.id) if port is not None else (None, None)
        return out
