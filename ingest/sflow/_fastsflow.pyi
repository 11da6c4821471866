"""Type stub of the C extension ingest/sflow/_fastsflow.c (see ingest.sflow.fast)."""

from typing import Any

from ingest.sflow.decode import CounterSample, SflowDatagram, SflowDecodeError

OWN_IPV6_TEXT: int  # 1 when IPv6 text is this module's own formatter (checked against inet_ntop)

def bind(
    flow_sample: type, counter_sample: type, generic: type, ethernet: type, datagram: type, error: type, /
) -> None: ...
def decode_datagram(data: bytes | memoryview, /) -> SflowDatagram: ...
def crc32(data: bytes | memoryview, /) -> int: ...

class FlowBatch:
    def __init__(self, interval_ns: int = ..., matrix: bool = ...) -> None: ...
    def __len__(self) -> int: ...
    def add(
        self, data: bytes | memoryview, received_ns: int = ..., /
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
    def add_spool(
        self, buffer: object, pos: int, end: int, limit: int, /
    ) -> tuple[
        int,
        int,
        list[tuple[int, str, int, int, int, list[tuple[int, int, int, int]], list[CounterSample] | None]],
    ]: ...
    def agents(self) -> list[str]: ...
    def groups(
        self,
    ) -> list[tuple[int, int, int | None, int | None, str | None, str | None, int, int, int]]: ...
    def clear(self) -> None: ...
    def columns(self) -> dict[str, Any]: ...
    def samples(self, start: int = ..., stop: int = ..., /) -> list[object]: ...
