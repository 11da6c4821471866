{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- The member-to-member matrix per 5-minute interval. Counters give the totals, sFlow the shares:
-- each sending member's sampled estimate is scaled so that, over all its destinations (unknown
-- MACs included), it adds up to the counter ifIn bytes of the member's ports in that interval.
-- The unit is the member, not the single port: a LAG's ports share one router MAC, so samples
-- cannot tell its ports apart (for a member with one port it is that port). The raw sFlow
-- estimate stays beside the scaled figure; without complete trusted counters the scaled
-- figure is null. Scaled bytes are rounded to whole bytes (sums of doubles would otherwise
-- differ in the last bits between runs). A MAC on no configured port shows as member 'unknown' (never scaled).
with

matrix as (
    select *
    from {{ ref('int_member_matrix_aggregated') }}
    where {{ incremental_filter('interval_date') }}
),

member_sflow as (
    select interval_start, src_member_id, sum(estimated_bytes) as sflow_member_bytes
    from matrix
    where src_member_id is not null
    group by all
),

counters as (
    select interval_start, member_id, in_bytes as counter_member_bytes
    from {{ ref('fct_member_traffic_5min') }}
    where is_complete and {{ incremental_filter('interval_date') }}
),

scaled as (
    select
        matrix.*,
        matrix.estimated_bytes * counters.counter_member_bytes * 1.0 / nullif(member_sflow.sflow_member_bytes, 0)
            as scaled_bytes
    from matrix
    left join member_sflow
        on member_sflow.src_member_id = matrix.src_member_id and member_sflow.interval_start = matrix.interval_start
    left join counters
        on counters.member_id = matrix.src_member_id and counters.interval_start = matrix.interval_start
)

select
    interval_start,
    interval_date,
    coalesce(src_member_id, 'unknown') as src_member_id,
    coalesce(dst_member_id, 'unknown') as dst_member_id,
    cast(round(sum(scaled_bytes)) as bigint) as bytes,
    round(sum(scaled_bytes)) * 8.0 / 300 as bps,
    cast(round(sum(scaled_bytes) filter (where ip_version = 4)) as bigint) as ipv4_bytes,
    cast(round(sum(scaled_bytes) filter (where ip_version = 6)) as bigint) as ipv6_bytes,
    sum(estimated_bytes) as sflow_estimated_bytes,
    sum(estimated_packets) as sflow_estimated_packets,
    sum(sample_count) as sample_count,
    bool_and(scaled_bytes is not null) as is_scaled
from scaled
group by interval_start, interval_date, coalesce(src_member_id, 'unknown'), coalesce(dst_member_id, 'unknown')
