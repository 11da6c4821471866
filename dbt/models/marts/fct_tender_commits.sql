-- The optimal commit per offer of the newest tender report (the whole pool with one provider),
-- cheapest expected cost first, with the overage risk at that commit.
select
    offer_rank,
    provider,
    commit_mbps,
    tier_price_per_mbps,
    burst_price_per_mbps,
    months,
    expected_monthly_cost,
    expected_total_cost,
    cost_p95_total,
    overage_probability,
    worst_month_overage_probability,
    expected_overage_cost,
    effective_price_per_mbps,
    run_id
from {{ ref('stg_exports__tender_commits') }}
