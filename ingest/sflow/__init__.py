"""sFlow version 5 decoder (pure: bytes in, samples out). See ``ingest.sflow.decode``.

``decode_datagram`` here is the C decoder (``ingest.sflow.fast``) when it is built and not switched off
with ``PEERPOOL_SFLOW_PURE=1``, else the pure-Python reference ``ingest.sflow.decode.decode_datagram``;
both give the same results.
"""

from ingest.sflow import fast
from ingest.sflow.decode import (
    CounterSample,
    EthernetCounters,
    FlowSample,
    GenericInterfaceCounters,
    SflowDatagram,
    SflowDecodeError,
)
from ingest.sflow.decode import decode_datagram as decode_datagram_py

decode_datagram = (
    fast.decode_datagram_c if fast.decode_datagram_c is not None and fast.enabled() else decode_datagram_py
)

__all__ = [
    "CounterSample",
    "EthernetCounters",
    "FlowSample",
    "GenericInterfaceCounters",
    "SflowDatagram",
    "SflowDecodeError",
    "decode_datagram",
    "decode_datagram_py",
]
