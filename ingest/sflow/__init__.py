"""sFlow version 5 decoder (pure: bytes in, samples out). See ``ingest.sflow.decode``."""

from ingest.sflow.decode import (
    CounterSample,
    EthernetCounters,
    FlowSample,
    GenericInterfaceCounters,
    SflowDatagram,
    SflowDecodeError,
    decode_datagram,
)

__all__ = [
    "CounterSample",
    "EthernetCounters",
    "FlowSample",
    "GenericInterfaceCounters",
    "SflowDatagram",
    "SflowDecodeError",
    "decode_datagram",
]
