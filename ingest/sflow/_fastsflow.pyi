"""Type stub of the C extension ingest/sflow/_fastsflow.c (see ingest.sflow.fast)."""

from ingest.sflow.decode import CounterSample, SflowDatagram, SflowDecodeError

FLOW_FIELDS: list[tuple[str, str, int]]
FLOW_SIZE: int
P_HEADER: int
P_FLEN: int
P_SMAC: int
P_DMAC: int
P_VLAN: int
P_IVLAN: int
P_ETYPE: int
P_IPV: int
P_SIP: int
P_DIP: int
P_PROTO: int
P_SPORT: int
P_DPORT: int
P_TOS: int
P_IPLEN: int
P_SWITCH: int

def bind(
    flow_sample: type, counter_sample: type, generic: type, ethernet: type, datagram: type, error: type, /
) -> None: ...
def decode_datagram(data: bytes, /) -> SflowDatagram: ...

class FlowBatch:
    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def add(
        self, data: bytes, /
    ) -> tuple[
        int,
        str | None,
        int,
        int,
        int,
        list[tuple[int, int, int, int]] | None,
        list[CounterSample] | None,
        SflowDecodeError | None,
    ]: ...
    def clear(self) -> None: ...
    def records(self) -> bytes: ...
    def samples(self, start: int = ..., stop: int = ..., /) -> list[object]: ...
    def text_column(self, which: int, /) -> tuple[bytes | None, bytes, bytes, int]: ...
