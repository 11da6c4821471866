"""Numeric IF-MIB / SNMPv2-MIB object identifiers the poller reads.

Debian ships no IF-MIB text, so every OID is written out numerically (no leading dot,
as gufo-snmp wants them). Column OIDs take ``.<ifIndex>`` appended.

References: RFC 2863 (IF-MIB) https://www.rfc-editor.org/rfc/rfc2863 and
RFC 3418 (SNMPv2-MIB) https://www.rfc-editor.org/rfc/rfc3418.
"""

from __future__ import annotations

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # sysUpTime.0, TimeTicks (hundredths of a second)

# ifXTable (1.3.6.1.2.1.31.1.1.1.<column>)
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_IN_UCAST_PKTS = "1.3.6.1.2.1.31.1.1.1.7"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
IF_HC_OUT_UCAST_PKTS = "1.3.6.1.2.1.31.1.1.1.11"
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # Gauge32, Mbit/s
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"

# ifTable (1.3.6.1.2.1.2.2.1.<column>): 32-bit counters and the operational status
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_IN_UCAST_PKTS = "1.3.6.1.2.1.2.2.1.11"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"
IF_OUT_UCAST_PKTS = "1.3.6.1.2.1.2.2.1.17"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"  # up(1) down(2) testing(3) unknown(4) dormant(5) ...

# Which column feeds which field of a port_counters row, by counter width.
COUNTER_COLUMNS: dict[int, dict[str, str]] = {
    64: {
        "in_octets": IF_HC_IN_OCTETS,
        "out_octets": IF_HC_OUT_OCTETS,
        "in_ucast_pkts": IF_HC_IN_UCAST_PKTS,
        "out_ucast_pkts": IF_HC_OUT_UCAST_PKTS,
    },
    32: {
        "in_octets": IF_IN_OCTETS,
        "out_octets": IF_OUT_OCTETS,
        "in_ucast_pkts": IF_IN_UCAST_PKTS,
        "out_ucast_pkts": IF_OUT_UCAST_PKTS,
    },
}
STATUS_COLUMNS: dict[str, str] = {
    "if_high_speed_mbps": IF_HIGH_SPEED,
    "if_oper_status": IF_OPER_STATUS,
    "if_name": IF_NAME,
    "if_alias": IF_ALIAS,
}
# MIB object names for messages ("no such instance: ifHCInOctets.1001")
NAMES: dict[str, str] = {
    IF_NAME: "ifName",
    IF_HC_IN_OCTETS: "ifHCInOctets",
    IF_HC_IN_UCAST_PKTS: "ifHCInUcastPkts",
    IF_HC_OUT_OCTETS: "ifHCOutOctets",
    IF_HC_OUT_UCAST_PKTS: "ifHCOutUcastPkts",
    IF_HIGH_SPEED: "ifHighSpeed",
    IF_ALIAS: "ifAlias",
    IF_IN_OCTETS: "ifInOctets",
    IF_IN_UCAST_PKTS: "ifInUcastPkts",
    IF_OUT_OCTETS: "ifOutOctets",
    IF_OUT_UCAST_PKTS: "ifOutUcastPkts",
    IF_OPER_STATUS: "ifOperStatus",
    SYS_UPTIME: "sysUpTime",
}


def port_oids(ifindex: int, counter_bits: int) -> dict[str, str]:
    """field name -> full OID of one port's varbinds (counters of the right width plus status)."""
    columns = {**COUNTER_COLUMNS[counter_bits], **STATUS_COLUMNS}
    return {field: f"{column}.{ifindex}" for field, column in columns.items()}
