"""The tender planner: reads the serving DuckDB file, runs ``peerpool.economics`` and writes
the purchasing group's report (HTML with inline SVG, plus CSV and JSON of every table)."""
