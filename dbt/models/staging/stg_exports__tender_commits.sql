-- The optimal commit per offer (the whole pool with one provider) of the newest tender report.
with

source as (
    {{ lake_source('exports', 'tender_commits') }}
),

renamed as (
    select
        run_id,
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
        effective_price_per_mbps
    from source
)

select * from renamed
