"""sFlow version 5 numbers, named as in the specification.

Specification: https://sflow.org/sflow_version_5.txt (InMon, July 2004). Every structure is XDR
(RFC 4506): big-endian 32-bit words, opaque data padded to a multiple of four bytes. A
``data_format`` word packs ``enterprise << 12 | format``; everything here is enterprise 0 (the
standard structures), so the format number equals the data_format word.
"""

from __future__ import annotations

from typing import Final

SFLOW_VERSION_5: Final = 5
PROTOCOL_NAME: Final = "sflow5"  # the lake's flow_protocol value and DecodeError.protocol
SPEC_URL: Final = "https://sflow.org/sflow_version_5.txt"

# address_type (enum address_type)
ADDRESS_TYPE_UNKNOWN: Final = 0
ADDRESS_TYPE_IP_V4: Final = 1
ADDRESS_TYPE_IP_V6: Final = 2

# sample_record data_format, enterprise 0
SAMPLE_FLOW: Final = 1  # flow_sample
SAMPLE_COUNTERS: Final = 2  # counters_sample
SAMPLE_FLOW_EXPANDED: Final = 3  # flow_sample_expanded
SAMPLE_COUNTERS_EXPANDED: Final = 4  # counters_sample_expanded

# flow_record data_format, enterprise 0
FLOW_RAW_PACKET_HEADER: Final = 1  # sampled_header
FLOW_ETHERNET_FRAME: Final = 2  # sampled_ethernet
FLOW_IPV4: Final = 3  # sampled_ipv4
FLOW_IPV6: Final = 4  # sampled_ipv6
FLOW_EXTENDED_SWITCH: Final = 1001  # extended_switch
FLOW_EXTENDED_ROUTER: Final = 1002  # extended_router
FLOW_EXTENDED_GATEWAY: Final = 1003  # extended_gateway
FLOW_EXTENDED_USER: Final = 1004  # extended_user
FLOW_EXTENDED_URL: Final = 1005  # extended_url
FLOW_EXTENDED_MPLS: Final = 1006  # extended_mpls
FLOW_EXTENDED_NAT: Final = 1007  # extended_nat
FLOW_EXTENDED_MPLS_TUNNEL: Final = 1008  # extended_mpls_tunnel
FLOW_EXTENDED_MPLS_VC: Final = 1009  # extended_mpls_vc
FLOW_EXTENDED_MPLS_FEC: Final = 1010  # extended_mpls_FTN
FLOW_EXTENDED_MPLS_LVP_FEC: Final = 1011  # extended_mpls_LDP_FEC
FLOW_EXTENDED_VLAN_TUNNEL: Final = 1012  # extended_vlantunnel

# counter_record data_format, enterprise 0
COUNTERS_GENERIC_INTERFACE: Final = 1  # if_counters
COUNTERS_ETHERNET_INTERFACE: Final = 2  # ethernet_counters
COUNTERS_TOKEN_RING: Final = 3  # tokenring_counters
COUNTERS_100BASEVG: Final = 4  # vg_counters
COUNTERS_VLAN: Final = 5  # vlan_counters
COUNTERS_PROCESSOR: Final = 1001  # processor

# header_protocol (enum header_protocol) of the raw packet header record
HEADER_PROTOCOL_ETHERNET_ISO88023: Final = 1
HEADER_PROTOCOL_ISO88024_TOKENBUS: Final = 2
HEADER_PROTOCOL_ISO88025_TOKENRING: Final = 3
HEADER_PROTOCOL_FDDI: Final = 4
HEADER_PROTOCOL_FRAME_RELAY: Final = 5
HEADER_PROTOCOL_X25: Final = 6
HEADER_PROTOCOL_PPP: Final = 7
HEADER_PROTOCOL_SMDS: Final = 8
HEADER_PROTOCOL_AAL5: Final = 9
HEADER_PROTOCOL_AAL5_IP: Final = 10
HEADER_PROTOCOL_IPV4: Final = 11
HEADER_PROTOCOL_IPV6: Final = 12
HEADER_PROTOCOL_MPLS: Final = 13
HEADER_PROTOCOL_POS: Final = 14

# interface: the compact ("flow_sample") form packs a 2-bit format and a 30-bit value;
# the expanded form carries them as two words (interface_expanded: format, value).
INTERFACE_FORMAT_IFINDEX: Final = 0  # value is an ifIndex (0 = unknown)
INTERFACE_FORMAT_DISCARDED: Final = 1  # packet discarded; value is the reason code
INTERFACE_FORMAT_MULTIPLE: Final = 2  # sent to several interfaces; value is their count (0 = unknown)
INTERFACE_VALUE_MASK: Final = 0x3FFFFFFF
INTERFACE_INTERNAL: Final = 0x3FFFFFFF  # "the interface is internal to the agent" (format 0)

# if_counters.ifStatus bits (RFC 2233 ifAdminStatus / ifOperStatus reduced to up/down)
IF_STATUS_ADMIN_UP: Final = 0x1
IF_STATUS_OPER_UP: Final = 0x2

# if_counters.ifDirection
IF_DIRECTION_UNKNOWN: Final = 0
IF_DIRECTION_FULL_DUPLEX: Final = 1
IF_DIRECTION_HALF_DUPLEX: Final = 2
IF_DIRECTION_IN: Final = 3
IF_DIRECTION_OUT: Final = 4

# --- value bounds ------------------------------------------------------------------------------
# sFlow carries these fields as 32-bit words, but what they mean is narrower, and the lake stores
# them in narrower columns (peerpool/lake.py FLOWS) or sums their products in int64. A value past
# its bound makes the datagram a decode error (quarantined, with the field, the value and the range
# in the reason) instead of a lake write that fails for the whole input file on every retry. Both
# decoders (decode.py and _fastsflow.c, which exports the same numbers) check them in the same place.
MAX_IP_PROTOCOL: Final = 255  # sampled_ipv4/6 protocol: an 8-bit IP protocol number (lake: int16)
MAX_PORT: Final = 65535  # sampled_ipv4/6 src_port, dst_port: 16-bit TCP/UDP ports (lake: int32)
MAX_ETHERTYPE: Final = 65535  # sampled_ethernet type: a 16-bit EtherType (lake: int32)
# sampled_header frame_length, sampled_ethernet length, sampled_ipv4/6 length (each can become the
# lake's ``bytes``): 16 MiB. Real frames are far smaller: IPv4 packets end at 65,535 bytes, jumbo
# frames at about 9,216, and the largest packets a host agent can see, Linux "BIG TCP" GSO/GRO
# super-packets, at 512 KiB (2**19), 32 times below the bound.
MAX_FRAME_LENGTH: Final = 1 << 24
# The sampling rate is not bounded: any u32 is a legal "1 in N". The arithmetic of the int64 sums:
# * one sample: estimated_bytes = frame_length x rate <= 2**24 x (2**32 - 1) = 2**56 - 2**24, so the
#   flows table's int64 always holds it (128 times over); estimated_packets = rate < 2**32.
# * one member-matrix cell (5-minute interval, agent, VLAN, IP version, MAC pair, one input file):
#   n samples sum to at most n x (2**56 - 2**24), which int64 holds for n <= 128 samples at the
#   bounds (128 x (2**56 - 2**24) = 2**63 - 2**31) and not for 129. No bound on the fields can
#   make a sum of arbitrarily many samples safe, so the sums are exact (Python integers; 128-bit
#   integers in C) and a cell past 2**63 - 1 is written as several rows of the same key whose sums
#   add up exactly (ingest.sflow.limits.split_int64_sums): the matrix is additive already (each
#   input file writes its own rows for a 5-minute cell it shares with the files around it).
# * real traffic: a cell estimates the bytes one pair of ports exchanged in 5 minutes, at most
#   800 Gbit/s x 300 s / 8 = 3.0e13 < 2**45, 2**18 times below the int64 limit; a 30-day month of the
#   whole exchange at 4 Tbit/s is 4e12 / 8 x 2,592,000 s = 1.3e18 < 2**60.2, still 7 times below it.
