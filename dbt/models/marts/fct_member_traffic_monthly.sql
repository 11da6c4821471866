-- One row per member and calendar month in the exchange's billing time zone: the member's 95th
-- percentile (nearest rank over its complete intervals), in each direction and billed (the max).
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

intervals as (
    select
        traffic.*,
        {{ local_month('traffic.interval_start', 'tz.timezone') }} as month
    from {{ ref('fct_member_traffic_5min') }} as traffic
    cross join tz
),

monthly as (
    select
        member_id,
        month,
        count(*) as intervals_seen,
        count(*) filter (where is_complete) as intervals_used,
        sum(in_bytes) filter (where is_complete) as in_bytes,
        sum(out_bytes) filter (where is_complete) as out_bytes,
        sum(in_bytes) filter (where is_complete) * 8.0 / 300 / nullif(count(*) filter (where is_complete), 0) as in_avg_bps,
        sum(out_bytes) filter (where is_complete) * 8.0 / 300 / nullif(count(*) filter (where is_complete), 0) as out_avg_bps,
        max(in_bps) filter (where is_complete) as in_max_bps,
        max(out_bps) filter (where is_complete) as out_max_bps,
        {{ billing_percentile('in_bytes', 95, where='is_complete') }} as in_p95_bytes,
        {{ billing_percentile('out_bytes', 95, where='is_complete') }} as out_p95_bytes,
        sum(in_ipv4_bytes) filter (where is_complete) as in_ipv4_bytes,
        sum(in_ipv6_bytes) filter (where is_complete) as in_ipv6_bytes,
        sum(out_ipv4_bytes) filter (where is_complete) as out_ipv4_bytes,
        sum(out_ipv6_bytes) filter (where is_complete) as out_ipv6_bytes
    from intervals
    group by member_id, month
)

select
    member_id,
    month,
    intervals_seen,
    intervals_used,
    in_bytes,
    out_bytes,
    in_avg_bps,
    out_avg_bps,
    in_max_bps,
    out_max_bps,
    in_p95_bytes * 8.0 / 300 as in_p95_bps,
    out_p95_bytes * 8.0 / 300 as out_p95_bps,
    greatest(in_p95_bytes, out_p95_bytes) * 8.0 / 300 as billed_p95_bps,
    {{ bytes_to_mbps('greatest(in_p95_bytes, out_p95_bytes)') }} as billed_p95_mbps,
    in_ipv4_bytes,
    in_ipv6_bytes,
    out_ipv4_bytes,
    out_ipv6_bytes
from monthly
