{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='traffic_date') }}
-- One row per member and day in the exchange's time zone (a DST day has 92 or 100 intervals).
-- Statistics use the member's complete intervals only (every port with a trusted rate).
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

intervals as (
    select
        traffic.*,
        cast(timezone(tz.timezone, traffic.interval_start) as date) as traffic_date
    from {{ ref('fct_member_traffic_5min') }} as traffic
    cross join tz
    where {{ incremental_filter('traffic.interval_date', date_column='traffic_date', slack_days=2) }}
)

select
    member_id,
    traffic_date,
    count(*) as intervals_seen,
    count(*) filter (where is_complete) as intervals_used,
    sum(in_bytes) filter (where is_complete) as in_bytes,
    sum(out_bytes) filter (where is_complete) as out_bytes,
    sum(in_bytes) filter (where is_complete) * 8.0 / 300 / nullif(count(*) filter (where is_complete), 0) as in_avg_bps,
    sum(out_bytes) filter (where is_complete) * 8.0 / 300 / nullif(count(*) filter (where is_complete), 0) as out_avg_bps,
    max(in_bps) filter (where is_complete) as in_max_bps,
    max(out_bps) filter (where is_complete) as out_max_bps,
    {{ billing_percentile('in_bytes', 95, where='is_complete') }} * 8.0 / 300 as in_p95_bps,
    {{ billing_percentile('out_bytes', 95, where='is_complete') }} * 8.0 / 300 as out_p95_bps,
    sum(in_ipv4_bytes) filter (where is_complete) as in_ipv4_bytes,
    sum(in_ipv6_bytes) filter (where is_complete) as in_ipv6_bytes,
    sum(out_ipv4_bytes) filter (where is_complete) as out_ipv4_bytes,
    sum(out_ipv6_bytes) filter (where is_complete) as out_ipv6_bytes
from intervals
where {{ incremental_filter('traffic_date', date_column='traffic_date', slack_days=1) }}
group by member_id, traffic_date
