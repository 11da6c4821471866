with

source as (
    {{ lake_source('reference', 'transit_contracts') }}
),

renamed as (
    select
        contract_id,
        provider,
        commit_mbps,
        price_per_mbps,
        burst_price_per_mbps,
        currency,
        percentile,
        direction_rule,
        billing_timezone,
        gap_policy,
        term_start_date,
        term_end_date
    from source
)

select * from renamed
