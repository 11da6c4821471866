"""Flow and counter ingest: collector, decoders, enrichment, counters."""
