{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- The member-to-member matrix per 5-minute interval. Counters give the totals, sFlow the shares:
-- each sending member's sampled estimate is scaled so that, over all its destinations (unknown
-- MACs included), it adds up to the counter ifIn bytes of the member's ports in that interval.
-- The unit is the member, not the single port: a LAG's ports share one router MAC, so samples
-- cannot tell its ports apart (for a member with one port it is that port). The raw sFlow
-- estimate stays beside the scaled figure; without complete trusted counters the scaled
-- figure is null. Scaled bytes are rounded to whole bytes (sums of doubles would otherwise
-- differ in the last bits between runs). A MAC on no configured port shows as member
-- 'unknown' (never scaled).
with

matrix as (
    select *
    from {{ ref('stg_lake__member_matrix') }}
    where {{ incremental_filter('partition_date', slack_days=1) }}
      and {{ incremental_filter('interval_date') }}
),

pairs as (
    select
        interval_start,
        interval_date,
        src_member_id,
        dst_member_id,
        sum(estimated_bytes) as estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 4), 0) as ipv4_estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 6), 0) as ipv6_estimated_bytes,
        sum(sample_count) as sample_count
    from matrix
    group by interval_start, interval_date, src_member_id, dst_member_id
),

-- counter bytes of the sender over its sampled bytes: the same factor for all its destinations
scale as (
    select
        sflow.interval_start,
        sflow.member_id,
        counters.in_bytes * 1.0 / nullif(sflow.estimated_bytes, 0) as scale_factor
    from {{ ref('int_member_sflow_5min') }} as sflow
    inner join {{ ref('fct_member_traffic_5min') }} as counters
        on counters.member_id = sflow.member_id and counters.interval_start = sflow.interval_start
    where sflow.direction = 'in' and counters.is_complete
      and {{ incremental_filter('sflow.interval_date') }}
      and {{ incremental_filter('counters.interval_date') }}
)

select
    pairs.interval_start,
    pairs.interval_date,
    coalesce(pairs.src_member_id, 'unknown') as src_member_id,
    coalesce(pairs.dst_member_id, 'unknown') as dst_member_id,
    cast(round(pairs.estimated_bytes * scale.scale_factor) as bigint) as bytes,
    cast(round(pairs.ipv4_estimated_bytes * scale.scale_factor) as bigint) as ipv4_bytes,
    cast(round(pairs.ipv6_estimated_bytes * scale.scale_factor) as bigint) as ipv6_bytes,
    pairs.estimated_bytes as sflow_estimated_bytes,
    pairs.sample_count,
    scale.scale_factor is not null as is_scaled
from pairs
left join scale
    on scale.member_id = pairs.src_member_id and scale.interval_start = pairs.interval_start
