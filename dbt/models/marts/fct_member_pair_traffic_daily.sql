{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='traffic_date') }}
-- The member-to-member matrix per day in the exchange's time zone.
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

intervals as (
    select
        pairs.*,
        cast(timezone(tz.timezone, pairs.interval_start) as date) as traffic_date
    from {{ ref('fct_member_pair_traffic_5min') }} as pairs
    cross join tz
    where {{ incremental_filter('pairs.interval_date', date_column='traffic_date', slack_days=2) }}
)

select
    traffic_date,
    src_member_id,
    dst_member_id,
    count(*) as intervals_seen,
    sum(bytes) as bytes,
    sum(ipv4_bytes) as ipv4_bytes,
    sum(ipv6_bytes) as ipv6_bytes,
    max(bytes) * 8.0 / 300 as max_bps,
    sum(sflow_estimated_bytes) as sflow_estimated_bytes,
    sum(sample_count) as sample_count,
    bool_and(is_scaled) as is_scaled
from intervals
where {{ incremental_filter('traffic_date', date_column='traffic_date', slack_days=1) }}
group by traffic_date, src_member_id, dst_member_id
