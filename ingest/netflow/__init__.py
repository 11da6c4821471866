"""IPFIX (RFC 7011) and NetFlow v9 (RFC 3954) decoding with a persistent template cache.

``NetflowDecoder(cache).decode(datagram, exporter, received_at_ns)`` returns FLOWS rows
(see ``peerpool.lake.FLOWS``); ``decode_into(batch, ...)`` puts the same records into a
``columnar.ColumnarBatch`` instead, read column-wise with numpy (what the pipeline uses; the row
path is the reference). ``TemplateCache.save``/``load`` keep templates, sampling state and pending
data across restarts. NetFlow v5 is out of scope.
"""

from ingest.netflow.decoder import DecoderStats, NetflowDecodeError, NetflowDecoder
from ingest.netflow.templates import Template, TemplateCache, TemplateField

__all__ = [
    "DecoderStats",
    "NetflowDecodeError",
    "NetflowDecoder",
    "Template",
    "TemplateCache",
    "TemplateField",
]
