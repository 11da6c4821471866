-- The pooling dividend per month: the sum of members' own transit 95ths (as fct_member_transit_usage
-- bills them) against the 95th of their summed transit traffic, the greater of the in and out
-- nearest-rank 95th over the month's intervals in the contracts' billing time zone (the tender
-- report's definition, peerpool/economics/pooling.py). Precomputed here because the same query
-- over a year of 5-minute rows took a third of a second per chart fetch (bench/bench_dashboards.py).
with

tz as (
    select coalesce(any_value(billing_timezone), {{ exchange_timezone() }}) as timezone
    from {{ ref('dim_transit_contracts') }}
),

pool as (
    select interval_start, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes
    from {{ ref('fct_member_transit_usage_5min') }}
    group by 1
),

pool_monthly as (
    select
        {{ local_month('pool.interval_start', 'tz.timezone') }} as month,
        count(*) as pool_intervals,
        greatest(quantile_disc(pool.in_bytes, 0.95), quantile_disc(pool.out_bytes, 0.95))
            * 8.0 / 300 / 1e6 as pool_p95_mbps
    from pool
    cross join tz
    group by 1
),

members as (
    select month, count(*) as members_counted, sum(billed_p95_bps) / 1e6 as sum_of_member_p95_mbps
    from {{ ref('fct_member_transit_usage') }}
    group by 1
),

rounded as (
    select
        members.month,
        members.members_counted,
        pool_monthly.pool_intervals,
        cast(members.sum_of_member_p95_mbps as decimal(18, 4)) as sum_of_member_p95_mbps,
        cast(pool_monthly.pool_p95_mbps as decimal(18, 4)) as pool_p95_mbps
    from members
    inner join pool_monthly using (month)
)

-- Mbps to 4 places like every other Mbps figure of the marts; the dividend is the difference of
-- the two rounded figures, so the three columns add up exactly
select *, cast(sum_of_member_p95_mbps - pool_p95_mbps as decimal(18, 4)) as dividend_mbps
from rounded
