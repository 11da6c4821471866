-- The purchasing scenarios of the newest tender report (`peerpool tender run`, read by
-- `peerpool build` from EXPORTS/tender/<run id>/report.json): one to three providers, the best
-- split of each combination, cheapest first. Expected costs are the report's estimates over its
-- forecast paths, to the grosz; nothing here is recomputed.
select
    scenario_rank,
    scenario,
    provider_count,
    commits,
    expected_monthly_cost,
    expected_total_cost,
    cost_p95_total,
    effective_price_per_mbps,
    currency,
    site_loads,
    notes,
    plan_start_month,
    horizon_months,
    reference_offer,
    run_id,
    report_sha256
from {{ ref('stg_exports__tender_scenarios') }}
