"""Economics of pooled transit: the 95th-percentile rule, the pooling dividend, cost sharing,
forecasts and the commit optimiser.

A pure library: numpy arrays and ``Decimal`` in, numbers out; no files, no clock, no
database. ``peerpool.tender`` wires it to the serving DuckDB file and writes the report.
"""
