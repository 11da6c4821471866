"""The C sFlow decoder (``ingest/sflow/_fastsflow.c``) when it was built, else the pure-Python one.

``ingest.sflow.decode`` stays the reference implementation: readable, and what the C code is checked
against (tests/test_sflow_fast.py compares every field, every error message and offset, and every
partial result on real captures and fuzzed bytes). The C module is compiled by the package build
(``pip install -e .``); when no compiler was there the build skips it, this module logs a note once,
and everything runs on the pure-Python decoder with the same results, only slower.

Two ways to use the C decoder:

* ``decode_datagram(data)``: the same ``SflowDatagram`` objects as the reference (the package-level
  ``ingest.sflow.decode_datagram`` is this one when the C module is available);
* ``FlowBatch``: the flow samples of many datagrams appended to one array of fixed-size records,
  read with ``flow_records`` as a numpy structured array (``FLOW_DTYPE``) and with
  ``text_array`` as Arrow string arrays (MAC and IP text), for the columnar pipeline path.

Setting the environment variable ``PEERPOOL_SFLOW_PURE=1`` makes the pipeline and
``ingest.sflow.decode_datagram`` use the pure-Python decoder even when the C module is there
(to compare the two, or to rule the C code out when chasing a problem).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
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
TEXT_COLUMNS: Final = {"src_mac": 0, "dst_mac": 1, "src_ip": 2, "dst_ip": 3}


def _load() -> ModuleType | None:
    try:
        from ingest.sflow import _fastsflow
    except ImportError as exc:
        log.warning(
            "ingest.sflow: the C decoder is not built (%s); decoding with the pure-Python decoder, "
            "about 3 times slower (reinstall with a C compiler: uv pip install --no-deps -e .)",
            exc,
        )
        return None
    _fastsflow.bind(
        FlowSample, CounterSample, GenericInterfaceCounters, EthernetCounters, SflowDatagram, SflowDecodeError
    )
    return _fastsflow


_C = _load()
AVAILABLE: Final = _C is not None

if _C is not None:
    FLOW_DTYPE: np.dtype[np.void] = np.dtype(
        {
            "names": [name for name, _fmt, _off in _C.FLOW_FIELDS],
            "formats": [fmt for _name, fmt, _off in _C.FLOW_FIELDS],
            "offsets": [off for _name, _fmt, off in _C.FLOW_FIELDS],
            "itemsize": _C.FLOW_SIZE,
        }
    )
    decode_datagram_c: Callable[[bytes], SflowDatagram] | None = _C.decode_datagram
    # presence bits of the optional fields in FLOW_DTYPE's "present"
    P_HEADER: int = _C.P_HEADER
    P_FLEN: int = _C.P_FLEN
    P_SMAC: int = _C.P_SMAC
    P_DMAC: int = _C.P_DMAC
    P_VLAN: int = _C.P_VLAN
    P_IVLAN: int = _C.P_IVLAN
    P_ETYPE: int = _C.P_ETYPE
    P_IPV: int = _C.P_IPV
    P_SIP: int = _C.P_SIP
    P_DIP: int = _C.P_DIP
    P_PROTO: int = _C.P_PROTO
    P_SPORT: int = _C.P_SPORT
    P_DPORT: int = _C.P_DPORT
    P_TOS: int = _C.P_TOS
    P_IPLEN: int = _C.P_IPLEN
    P_SWITCH: int = _C.P_SWITCH
else:
    FLOW_DTYPE = np.dtype([])
    decode_datagram_c = None
    P_HEADER = P_FLEN = P_SMAC = P_DMAC = P_VLAN = P_IVLAN = P_ETYPE = P_IPV = 0
    P_SIP = P_DIP = P_PROTO = P_SPORT = P_DPORT = P_TOS = P_IPLEN = P_SWITCH = 0


def enabled() -> bool:
    """True when the C decoder is built and not switched off with ``PEERPOOL_SFLOW_PURE``."""
    return AVAILABLE and os.environ.get(PURE_ENV, "").strip().lower() not in ("1", "true", "yes")


def decode_datagram(data: bytes) -> SflowDatagram:
    """The C decoder when enabled, else the reference (same results, same errors)."""
    if decode_datagram_c is not None and enabled():
        return decode_datagram_c(data)
    return decode_datagram_py(data)


def new_batch() -> FlowBatch:
    """An empty ``FlowBatch``; only call this when ``AVAILABLE``."""
    if _C is None:
        raise RuntimeError("the C sFlow decoder is not built; check ingest.sflow.fast.AVAILABLE first")
    batch: FlowBatch = _C.FlowBatch()
    return batch


def flow_records(batch: FlowBatch) -> np.ndarray:
    """The stored samples as a numpy structured array (a copy, ``FLOW_DTYPE``)."""
    return np.frombuffer(batch.records(), dtype=FLOW_DTYPE)


def text_array(batch: FlowBatch, name: str) -> pa.Array:
    """``src_mac``, ``dst_mac``, ``src_ip`` or ``dst_ip`` of every stored sample as an Arrow string array
    (null where the sample has none); the text is what the reference decoder gives."""
    validity, offsets, data, nulls = batch.text_column(TEXT_COLUMNS[name])
    mask = None if validity is None else pa.py_buffer(validity)
    buffers = [mask, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(batch), buffers, null_count=nulls)
