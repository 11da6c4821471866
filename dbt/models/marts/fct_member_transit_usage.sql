-- Each member's transit use per month (exchange time zone), with its own 95th percentile. The
-- month's intervals are those in which transit counters scaled the flows; a member without
-- flows in one of them counts 0 there (it used no transit), so n is the same for every member.
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

transit_intervals as (
    select distinct scaling.interval_start, {{ local_month('scaling.interval_start', 'tz.timezone') }} as month
    from {{ ref('int_transit_port_scaling_5min') }} as scaling
    cross join tz
    where scaling.scale_factor is not null
),

usage as (
    select usage.*, {{ local_month('usage.interval_start', 'tz.timezone') }} as month
    from {{ ref('fct_member_transit_usage_5min') }} as usage
    cross join tz
),

members_months as (
    select distinct member_id, month from usage
),

filled as (
    select
        members_months.member_id,
        members_months.month,
        transit_intervals.interval_start,
        coalesce(usage.in_bytes, 0) as in_bytes,
        coalesce(usage.out_bytes, 0) as out_bytes
    from members_months
    inner join transit_intervals using (month)
    left join usage
        on usage.member_id = members_months.member_id and usage.interval_start = transit_intervals.interval_start
),

monthly as (
    select
        member_id,
        month,
        count(*) as intervals_used,
        sum(in_bytes) as in_bytes,
        sum(out_bytes) as out_bytes,
        {{ billing_percentile('in_bytes', 95) }} as in_p95_bytes,
        {{ billing_percentile('out_bytes', 95) }} as out_p95_bytes
    from filled
    group by member_id, month
)

select
    member_id,
    month,
    intervals_used,
    in_bytes,
    out_bytes,
    in_p95_bytes * 8.0 / 300 as in_p95_bps,
    out_p95_bytes * 8.0 / 300 as out_p95_bps,
    greatest(in_p95_bytes, out_p95_bytes) * 8.0 / 300 as billed_p95_bps,
    {{ bytes_to_mbps('round(greatest(in_p95_bytes, out_p95_bytes))') }} as billed_p95_mbps
from monthly
