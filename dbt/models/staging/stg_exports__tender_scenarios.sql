-- The scenarios of the newest tender report (peerpool tender run), cheapest first.
with

source as (
    {{ lake_source('exports', 'tender_scenarios') }}
),

renamed as (
    select
        run_id,
        report_sha256,
        currency,
        reference_offer,
        cast(start_month || '-01' as date) as plan_start_month,
        horizon_months,
        scenario_rank,
        scenario,
        provider_count,
        commits,
        expected_monthly_cost,
        expected_total_cost,
        cost_p95_total,
        effective_price_per_mbps,
        site_loads,
        notes
    from source
)

select * from renamed
