"""The C sFlow decoder (``ingest/sflow/_fastsflow.c``) when it was built, else the pure-Python one.

``ingest.sflow.decode`` stays the reference implementation: readable, and what the C code is checked
against (tests/test_sflow_fast.py compares every field, every error message and offset, and every
partial result on real captures and fuzzed bytes). The C module is compiled by the package build
(``pip install -e .``); when no compiler was there the build skips it, this module logs a note once,
and everything runs on the pure-Python decoder with the same results, only slower.

Two ways to use the C decoder:

* ``decode_datagram(data)``: the same ``SflowDatagram`` objects as the reference (the package-level
  ``ingest.sflow.decode_datagram`` is this one when the C module is available);
* ``FlowBatch``: the flow samples of many datagrams appended to one array of fixed-size C records,
  read out column by column for the pipeline by ``batch_columns`` (the flows table's columns as
  Arrow arrays and the numbers the member lookups group by, built in C in one pass, no Python object
  per sample); the batch also sums the member matrix's raw keys as it decodes
  (``FlowBatch.groups``), so no per-sample Python work is left for the matrix either.

Setting the environment variable ``PEERPOOL_SFLOW_PURE=1`` makes the pipeline and
``ingest.sflow.decode_datagram`` use the pure-Python decoder even when the C module is there
(to compare the two, or to rule the C code out when chasing a problem).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa

from ingest.sflow.decode import (
    CounterSample,
    EthernetCounters,
    FlowSample,
    GenericInterfaceCounters,
    SflowDatagram,
    SflowDecodeError,
)
from ingest.sflow.decode import decode_datagram as decode_datagram_py

if TYPE_CHECKING:
    from ingest.sflow._fastsflow import FlowBatch

log = logging.getLogger(__name__)

PURE_ENV: Final = "PEERPOOL_SFLOW_PURE"


def _load() -> ModuleType | None:
    try:
        _fastsflow = importlib.import_module("ingest.sflow._fastsflow")
    except ImportError as exc:
        log.warning(
            "ingest.sflow: the C decoder is not built (%s); decoding with the pure-Python decoder, "
            "several times slower (reinstall with a C compiler: uv pip install --no-deps -e .)",
            exc,
        )
        return None
    _fastsflow.bind(
        FlowSample, CounterSample, GenericInterfaceCounters, EthernetCounters, SflowDatagram, SflowDecodeError
    )
    return _fastsflow


_C = _load()
AVAILABLE: Final = _C is not None

decode_datagram_c: Callable[[bytes], SflowDatagram] | None = None if _C is None else _C.decode_datagram


def enabled() -> bool:
    """True when the C decoder is built and not switched off with ``PEERPOOL_SFLOW_PURE``."""
    return AVAILABLE and os.environ.get(PURE_ENV, "").strip().lower() not in ("1", "true", "yes")


def decode_datagram(data: bytes) -> SflowDatagram:
    """The C decoder when enabled, else the reference (same results, same errors)."""
    if decode_datagram_c is not None and enabled():
        return decode_datagram_c(data)
    return decode_datagram_py(data)


def new_batch(interval_ns: int = 300_000_000_000, matrix: bool = True) -> FlowBatch:
    """An empty ``FlowBatch`` aggregating the member matrix on ``interval_ns`` bins while it decodes
    (``matrix=False``: decoding alone); only call this when ``AVAILABLE``."""
    if _C is None:
        raise RuntimeError("the C sFlow decoder is not built; check ingest.sflow.fast.AVAILABLE first")
    batch: FlowBatch = _C.FlowBatch(interval_ns, matrix)
    return batch


# the lake's types of the numeric columns FlowBatch.columns() builds (peerpool/lake.py FLOWS)
LAKE_COLUMN_TYPES: Final = {
    "sequence_number": pa.int64(),
    "sampling_rate": pa.int64(),
    "sample_pool": pa.int64(),
    "drops": pa.int64(),
    "input_ifindex": pa.int64(),
    "output_ifindex": pa.int64(),
    "vlan": pa.int32(),
    "ethertype": pa.int32(),
    "ip_version": pa.int8(),
    "ip_protocol": pa.int16(),
    "src_port": pa.int32(),
    "dst_port": pa.int32(),
    "bytes": pa.int64(),
    "estimated_bytes": pa.int64(),
}


@dataclass(frozen=True)
class BatchColumns:
    """The stored samples column by column (``FlowBatch.columns``, one pass in C).

    ``lake``: the flows table's numeric columns as Arrow arrays of the lake's types, built as the
    pure path builds them from the samples; None when a value does not fit its lake column, where the
    pure path raises. The decoders reject such values (``constants.MAX_*``), so this is a guard that
    fails like the pure path rather than truncating, not a case that occurs.
    ``text``: ``src_mac``, ``dst_mac``, ``src_ip``, ``dst_ip`` as Arrow string arrays (the reference's text).
    ``ints``: int64 numpy arrays: ``received_ns`` (given to ``add``), ``agent_code`` (index into
    ``FlowBatch.agents()``), ``sub_agent_id``; for the member lookups ``vlan`` (sampled tag, else
    extended-switch source VLAN, not validated), ``src_mac`` and ``dst_mac`` (48-bit integers),
    each -1 for None.
    """

    lake: dict[str, pa.Array] | None
    text: dict[str, pa.Array]
    ints: dict[str, np.ndarray]


def batch_columns(batch: FlowBatch) -> BatchColumns:
    """Every column the pipeline reads from the stored samples."""
    raw = batch.columns()
    n = len(batch)
    lake = None
    if raw["lake"] is not None:
        lake = {
            name: pa.Array.from_buffers(
                LAKE_COLUMN_TYPES[name],
                n,
                [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)],
                null_count=nulls,
            )
            for name, (validity, values, nulls) in raw["lake"].items()
        }
    text = {
        name: pa.Array.from_buffers(
            pa.string(),
            n,
            [None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)],
            null_count=nulls,
        )
        for name, (validity, offsets, data, nulls) in raw["text"].items()
    }
    ints = {name: np.frombuffer(values, dtype=np.int64) for name, values in raw["int64"].items()}
    return BatchColumns(lake, text, ints)
