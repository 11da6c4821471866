"""sFlow version 5 encoder: what an exchange switch's agent sends (https://sflow.org/sflow_version_5.txt).

A switch samples packets on ingress of its member edge ports: each flow sample carries the
first bytes of the frame (raw packet header record, at most 128 bytes, FCS stripped) and an
extended switch record with the VLAN; ``input`` is the port the frame came in on (the sending
member's), ``output`` the port it left by (the receiving member's). Counter samples carry the
interface counters (generic interface + Ethernet records).

Sequence numbers follow the spec: one per agent for datagrams, one per data source for flow
samples and another for counter samples; ``sample_pool`` is the packets the source has seen.
Switches at one site (another vendor) use the expanded sample formats.
"""

from __future__ import annotations

import socket
import struct

# sample and record formats (enterprise 0)
FLOW_SAMPLE = 1
COUNTER_SAMPLE = 2
FLOW_SAMPLE_EXPANDED = 3
COUNTER_SAMPLE_EXPANDED = 4
RAW_PACKET_HEADER = 1
EXTENDED_SWITCH = 1001
GENERIC_INTERFACE = 1
ETHERNET_INTERFACE = 2
HEADER_PROTOCOL_ETHERNET = 1
IFTYPE_ETHERNET_CSMACD = 6
MAX_DATAGRAM = 1400
DATAGRAM_HEADER = 28
MOD32 = 1 << 32

_U32X2 = struct.Struct("!II")
_FLOW = struct.Struct("!IIIIIIII")
_FLOW_X = struct.Struct("!IIIIIIIIIII")
_RAW = struct.Struct("!IIIIII")
_SWITCH = struct.Struct("!IIIIII")
_COUNTER = struct.Struct("!III")
_COUNTER_X = struct.Struct("!IIII")
_GENERIC = struct.Struct("!IIIIQIIQIIIIIIQIIIIII")
_ETHERNET = _U32X2.pack(ETHERNET_INTERFACE, 52) + bytes(52)
_DATAGRAM = struct.Struct("!II4sIIII")


class SflowAgent:
    """One switch's sFlow agent: its sequence numbers and encoders."""

    def __init__(self, agent_address: str, sampling_rate: int, expanded: bool, boot_ns: int) -> None:
        self.address = socket.inet_aton(agent_address)
        self.sampling_rate = sampling_rate
        self.expanded = expanded
        self.boot_ns = boot_ns
        self.sequence = 0
        self.flow_sequence: dict[int, int] = {}
        self.counter_sequence: dict[int, int] = {}

    def restart(self, boot_ns: int) -> None:
        """After a reboot every sequence number starts again."""
        self.boot_ns = boot_ns
        self.sequence = 0
        self.flow_sequence.clear()
        self.counter_sequence.clear()

    def flow_sample(
        self, input_ifindex: int, output_ifindex: int, pool: int, frame_length: int, header: bytes, vlan: int
    ) -> bytes:
        seq = (self.flow_sequence.get(input_ifindex, 0) + 1) % MOD32
        self.flow_sequence[input_ifindex] = seq
        pad = (4 - len(header) % 4) % 4
        raw = (
            _RAW.pack(
                RAW_PACKET_HEADER,
                16 + len(header) + pad,
                HEADER_PROTOCOL_ETHERNET,
                frame_length,
                4,
                len(header),
            )
            + header
            + bytes(pad)
        )
        switch = _SWITCH.pack(EXTENDED_SWITCH, 16, vlan, 0, vlan, 0)
        pool %= MOD32
        if self.expanded:
            body = _FLOW_X.pack(
                seq, 0, input_ifindex, self.sampling_rate, pool, 0, 0, input_ifindex, 0, output_ifindex, 2
            )
            fmt = FLOW_SAMPLE_EXPANDED
        else:
            body = _FLOW.pack(
                seq, input_ifindex, self.sampling_rate, pool, 0, input_ifindex, output_ifindex, 2
            )
            fmt = FLOW_SAMPLE
        payload = body + raw + switch
        return _U32X2.pack(fmt, len(payload)) + payload

    def counter_sample(
        self,
        ifindex: int,
        speed_bps: int,
        oper_up: bool,
        in_octets: int,
        in_packets: int,
        out_octets: int,
        out_packets: int,
    ) -> bytes:
        seq = (self.counter_sequence.get(ifindex, 0) + 1) % MOD32
        self.counter_sequence[ifindex] = seq
        status = 3 if oper_up else 1  # bit 0 admin up, bit 1 oper up
        generic = _GENERIC.pack(
            GENERIC_INTERFACE,
            88,
            ifindex,
            IFTYPE_ETHERNET_CSMACD,
            speed_bps,
            1,  # full duplex
            status,
            in_octets % (1 << 64),
            in_packets % MOD32,
            0,
            0,
            0,
            0,
            0,
            out_octets % (1 << 64),
            out_packets % MOD32,
            0,
            0,
            0,
            0,
            0,
        )
        if self.expanded:
            head = _COUNTER_X.pack(seq, 0, ifindex, 2)
            fmt = COUNTER_SAMPLE_EXPANDED
        else:
            head = _COUNTER.pack(seq, ifindex, 2)
            fmt = COUNTER_SAMPLE
        payload = head + generic + _ETHERNET
        return _U32X2.pack(fmt, len(payload)) + payload

    def datagram(self, samples: list[bytes], arrival_ns: int) -> bytes:
        self.sequence = (self.sequence + 1) % MOD32
        uptime_ms = ((arrival_ns - self.boot_ns) // 1_000_000) % MOD32
        head = _DATAGRAM.pack(5, 1, self.address, 0, self.sequence, uptime_ms, len(samples))
        return head + b"".join(samples)
