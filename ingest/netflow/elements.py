"""Information element numbers and protocol constants for NetFlow v9 and IPFIX.

Names are the IANA IPFIX registry's names (the registry keeps the NetFlow v9 numbers 1-127 for
compatibility), with the RFC 3954 name in the comment where it differs. Only the elements the
decoder turns into FLOWS columns or sampling state are listed; everything else is skipped by
its length.

* IANA "IP Flow Information Export (IPFIX) Entities":
  https://www.iana.org/assignments/ipfix/ipfix.xhtml
* NetFlow v9 field types, RFC 3954 section 8: https://www.rfc-editor.org/rfc/rfc3954#section-8
* IPFIX protocol, RFC 7011: https://www.rfc-editor.org/rfc/rfc7011
* PSAMP selector elements, RFC 5477: https://www.rfc-editor.org/rfc/rfc5477
"""

from __future__ import annotations

from typing import Final

# --- message and set framing -------------------------------------------------------------------

# RFC 3954 section 5.1: version, count, sysUpTime, unix secs, sequence, source id.
NETFLOW9_VERSION: Final = 9
NETFLOW9_HEADER_LENGTH: Final = 20
# RFC 3954 section 5.2/5.3: FlowSet ID 0 = template, 1 = options template, 2-255 reserved, >= 256 data.
NETFLOW9_TEMPLATE_SET_ID: Final = 0
NETFLOW9_OPTIONS_TEMPLATE_SET_ID: Final = 1

# RFC 7011 section 3.1: version, length, export time, sequence, observation domain id.
IPFIX_VERSION: Final = 10
IPFIX_HEADER_LENGTH: Final = 16
# RFC 7011 section 3.3.2: Set ID 2 = template, 3 = options template, 4-255 reserved, >= 256 data.
IPFIX_TEMPLATE_SET_ID: Final = 2
IPFIX_OPTIONS_TEMPLATE_SET_ID: Final = 3

MIN_DATA_SET_ID: Final = 256
SET_HEADER_LENGTH: Final = 4

# RFC 7011 section 7: a field length of 65535 announces a variable-length field
# (1-byte length, or 255 followed by a 2-byte length).
VARIABLE_LENGTH: Final = 65535
# RFC 7011 section 3.2: bit 15 of the element id says a 4-byte Private Enterprise Number follows.
ENTERPRISE_BIT: Final = 0x8000

# RFC 3954 section 6.1: scope field types of a NetFlow v9 options template (not IANA elements).
NETFLOW9_SCOPE_SYSTEM: Final = 1
NETFLOW9_SCOPE_INTERFACE: Final = 2
NETFLOW9_SCOPE_LINE_CARD: Final = 3
NETFLOW9_SCOPE_CACHE: Final = 4
NETFLOW9_SCOPE_TEMPLATE: Final = 5

# --- information elements (IANA IPFIX registry numbers) ----------------------------------------

OCTET_DELTA_COUNT: Final = 1  # octetDeltaCount (v9 IN_BYTES)
PACKET_DELTA_COUNT: Final = 2  # packetDeltaCount (v9 IN_PKTS)
PROTOCOL_IDENTIFIER: Final = 4  # protocolIdentifier (v9 PROTOCOL)
SOURCE_TRANSPORT_PORT: Final = 7  # sourceTransportPort (v9 L4_SRC_PORT)
SOURCE_IPV4_ADDRESS: Final = 8  # sourceIPv4Address (v9 IPV4_SRC_ADDR)
INGRESS_INTERFACE: Final = 10  # ingressInterface (v9 INPUT_SNMP)
DESTINATION_TRANSPORT_PORT: Final = 11  # destinationTransportPort (v9 L4_DST_PORT)
DESTINATION_IPV4_ADDRESS: Final = 12  # destinationIPv4Address (v9 IPV4_DST_ADDR)
EGRESS_INTERFACE: Final = 14  # egressInterface (v9 OUTPUT_SNMP)
FLOW_END_SYS_UP_TIME: Final = 21  # flowEndSysUpTime (v9 LAST_SWITCHED), ms of exporter uptime
FLOW_START_SYS_UP_TIME: Final = 22  # flowStartSysUpTime (v9 FIRST_SWITCHED)
POST_OCTET_DELTA_COUNT: Final = 23  # postOctetDeltaCount (v9 OUT_BYTES)
POST_PACKET_DELTA_COUNT: Final = 24  # postPacketDeltaCount (v9 OUT_PKTS)
SOURCE_IPV6_ADDRESS: Final = 27  # sourceIPv6Address (v9 IPV6_SRC_ADDR)
DESTINATION_IPV6_ADDRESS: Final = 28  # destinationIPv6Address (v9 IPV6_DST_ADDR)
SAMPLING_INTERVAL: Final = 34  # samplingInterval (v9 SAMPLING_INTERVAL; deprecated in IPFIX)
SAMPLING_ALGORITHM: Final = 35  # samplingAlgorithm (v9 SAMPLING_ALGORITHM: 1 deterministic, 2 random)
SAMPLER_ID: Final = 48  # samplerId (v9 FLOW_SAMPLER_ID)
SAMPLER_MODE: Final = 49  # samplerMode (v9 FLOW_SAMPLER_MODE)
SAMPLER_RANDOM_INTERVAL: Final = 50  # samplerRandomInterval (v9 FLOW_SAMPLER_RANDOM_INTERVAL)
SOURCE_MAC_ADDRESS: Final = 56  # sourceMacAddress (v9 IN_SRC_MAC)
POST_DESTINATION_MAC_ADDRESS: Final = 57  # postDestinationMacAddress (v9 OUT_DST_MAC)
VLAN_ID: Final = 58  # vlanId (v9 SRC_VLAN)
POST_VLAN_ID: Final = 59  # postVlanId (v9 DST_VLAN)
IP_VERSION: Final = 60  # ipVersion (v9 IP_PROTOCOL_VERSION)
DESTINATION_MAC_ADDRESS: Final = 80  # destinationMacAddress (v9 IN_DST_MAC)
POST_SOURCE_MAC_ADDRESS: Final = 81  # postSourceMacAddress (v9 OUT_SRC_MAC)
OCTET_TOTAL_COUNT: Final = 85  # octetTotalCount: running total, NOT a delta (not billed from)
PACKET_TOTAL_COUNT: Final = 86  # packetTotalCount: running total, NOT a delta
FLOW_START_SECONDS: Final = 150  # flowStartSeconds
FLOW_END_SECONDS: Final = 151  # flowEndSeconds
FLOW_START_MILLISECONDS: Final = 152  # flowStartMilliseconds
FLOW_END_MILLISECONDS: Final = 153  # flowEndMilliseconds
FLOW_START_MICROSECONDS: Final = 154  # flowStartMicroseconds (NTP format, RFC 7011 section 6.1.9)
FLOW_END_MICROSECONDS: Final = 155  # flowEndMicroseconds
FLOW_START_NANOSECONDS: Final = 156  # flowStartNanoseconds (NTP format)
FLOW_END_NANOSECONDS: Final = 157  # flowEndNanoseconds
FLOW_START_DELTA_MICROSECONDS: Final = 158  # flowStartDeltaMicroseconds (before export time)
FLOW_END_DELTA_MICROSECONDS: Final = 159  # flowEndDeltaMicroseconds
SYSTEM_INIT_TIME_MILLISECONDS: Final = 160  # systemInitTimeMilliseconds (base of *SysUpTime in IPFIX)
DOT1Q_VLAN_ID: Final = 243  # dot1qVlanId (outer 802.1Q tag)
INGRESS_PHYSICAL_INTERFACE: Final = 252  # ingressPhysicalInterface
EGRESS_PHYSICAL_INTERFACE: Final = 253  # egressPhysicalInterface
ETHERNET_TYPE: Final = 256  # ethernetType
SELECTOR_ID: Final = 302  # selectorId (PSAMP, RFC 5477)
SELECTOR_ALGORITHM: Final = 304  # selectorAlgorithm (IANA "Packet Sampling (PSAMP) Parameters")
SAMPLING_PACKET_INTERVAL: Final = 305  # samplingPacketInterval: packets selected in a row
SAMPLING_PACKET_SPACE: Final = 306  # samplingPacketSpace: packets skipped in a row
SAMPLING_SIZE: Final = 309  # samplingSize: n of "n out of N"
SAMPLING_POPULATION: Final = 310  # samplingPopulation: N of "n out of N"

# IANA PSAMP selectorAlgorithm values (https://www.iana.org/assignments/psamp-parameters).
SELECTOR_SYSTEMATIC_COUNT: Final = 1  # systematic count-based: interval / space
SELECTOR_RANDOM_N_OUT_OF_N: Final = 3  # random n-out-of-N: size / population

# NTP era offset: seconds from 1900-01-01 to 1970-01-01 (RFC 7011 section 6.1.9 uses NTP time).
NTP_UNIX_OFFSET_S: Final = 2_208_988_800
