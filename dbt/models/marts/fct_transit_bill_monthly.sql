-- One row per transit contract and billing month (calendar month in the contract's time zone):
-- the billed percentile under the contract's own rules, commit, overage and total cost.
-- Percentiles are nearest rank over the billable intervals' byte counts; Mbps and money are
-- DECIMAL(18,4) computed exactly (half up): commit cost = commit_mbps x price; overage =
-- max(billed - commit, 0) x burst price; effective price = total / billed Mbps.
with

contracts as (
    select * from {{ ref('stg_reference__transit_contracts') }}
),

usage as (
    select usage.*, contracts.percentile
    from {{ ref('fct_transit_usage_5min') }} as usage
    inner join contracts using (contract_id)
),

percentiles as (
    select
        contract_id,
        billing_month,
        count(*) filter (where is_billable) as intervals_used,
        count(*) filter (where not is_complete) as intervals_incomplete,
        {{ billing_percentile('in_bytes', 'percentile', where='is_billable') }} as in_percentile_bytes,
        {{ billing_percentile('out_bytes', 'percentile', where='is_billable') }} as out_percentile_bytes,
        {{ billing_percentile('in_plus_out_bytes', 'percentile', where='is_billable') }} as sum_percentile_bytes,
        sum(in_bytes) filter (where is_billable) as in_bytes,
        sum(out_bytes) filter (where is_billable) as out_bytes
    from usage
    group by contract_id, billing_month, percentile
),

billed as (
    select
        percentiles.*,
        contracts.provider,
        contracts.currency,
        contracts.percentile,
        contracts.direction_rule,
        contracts.gap_policy,
        contracts.billing_timezone,
        contracts.commit_mbps,
        contracts.price_per_mbps,
        contracts.burst_price_per_mbps,
        cast((epoch(timezone(contracts.billing_timezone, cast(percentiles.billing_month + interval 1 month as timestamp)))
              - epoch(timezone(contracts.billing_timezone, cast(percentiles.billing_month as timestamp)))) / 300 as bigint)
            as intervals_in_month,
        case contracts.direction_rule
            when 'max' then greatest(in_percentile_bytes, out_percentile_bytes)
            when 'sum' then sum_percentile_bytes
            when 'in' then in_percentile_bytes
            when 'out' then out_percentile_bytes
        end as billed_bytes
    from percentiles
    inner join contracts using (contract_id)
),

costed as (
    select
        billed.*,
        {{ bytes_to_mbps('billed_bytes') }} as billed_mbps,
        {{ multiply_money('commit_mbps', 'price_per_mbps') }} as commit_cost
    from billed
),

with_overage as (
    select
        costed.*,
        greatest(coalesce(billed_mbps, 0) - commit_mbps, 0)::decimal(18, 4) as overage_mbps
    from costed
)

select
    contract_id,
    billing_month,
    provider,
    currency,
    percentile,
    direction_rule,
    gap_policy,
    billing_timezone,
    intervals_in_month,
    intervals_used,
    intervals_incomplete,
    in_percentile_bytes * 8.0 / 300 as in_percentile_bps,
    out_percentile_bytes * 8.0 / 300 as out_percentile_bps,
    billed_bytes * 8.0 / 300 as billed_bps,
    billed_mbps,
    commit_mbps,
    price_per_mbps,
    burst_price_per_mbps,
    commit_cost,
    overage_mbps,
    {{ multiply_money('overage_mbps', 'burst_price_per_mbps') }} as overage_cost,
    cast(commit_cost + {{ multiply_money('overage_mbps', 'burst_price_per_mbps') }} as decimal(18, 4)) as total_cost,
    {{ divide_money('commit_cost + ' ~ multiply_money('overage_mbps', 'burst_price_per_mbps'), 'billed_mbps') }}
        as effective_price_per_mbps,
    in_bytes,
    out_bytes
from with_overage
