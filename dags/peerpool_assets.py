"""The data assets peerpool's DAGs produce and consume (data-aware scheduling)."""

from __future__ import annotations

from airflow.sdk import Asset

FLOWS = Asset("peerpool_lake_flows")  # flows + member matrix decoded from spool files
COUNTERS = Asset("peerpool_lake_port_counters")  # raw port counter reads
REFERENCE = Asset("peerpool_reference")  # configuration, IX-F, PeeringDB, ASN database
MARTS = Asset("peerpool_serving_marts")  # the published serving DuckDB file
BILLS = Asset("peerpool_billing_exports")
